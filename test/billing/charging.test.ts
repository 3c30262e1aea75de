// Spend and prepaid balance are charged exactly once per call, in the transaction that inserts its
// CDR: replays from the spool, the same call from two daemons, 50 concurrent writes from two
// writer instances; the tenant's zone decides the day and month; balance debits are not config edits.
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import t, { type Test } from 'tap';
import { CdrSpool } from '../../src/cdr/spool';
import { CdrWriter, writeCdrs } from '../../src/cdr/writer';
import type { CdrRecord } from '../../src/cdr/record';
import { toDbTimestamp } from '../../src/db/connect';
import { leastLeft, readSpendHeadroom, readSpendLimits, sharedSpendLeft, type SpendLeft } from '../../src/billing/usage';

/** The least of what a shared read says is left (the call's headroom). */
const least = async (read: Promise<SpendLeft | null>): Promise<Money | null> => {
  const left = await read;
  return left === null ? null : leastLeft(left);
};
import { formatMoney, money, type Money } from '../../src/domain/money';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { cdr, segments, spoolDir } from '../cdr/records';
import { addTenant, balance, eachDb, usage } from './helpers';

const log = createLogger('silent');
const OPTIONS = { flushIntervalMs: 60_000, retryIntervalMs: 0 };

/** A writer on its own opened spool (no start(): its timer would flush on its own; the tests flush when they mean to). */
async function writerFor(t: Test, knex: Knex, dir: string): Promise<CdrWriter> {
  const spool = new CdrSpool(dir);
  await spool.open();
  const w = new CdrWriter(knex, spool, OPTIONS, log, new Metrics());
  t.teardown(() => w.stop());
  return w;
}

const at = (iso: string): string => toDbTimestamp(new Date(iso));

eachDb(t, 'each CDR is charged once: replayed segments, the same call again, costs summed exactly', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '100.0000' });
  const dir = spoolDir(t);
  const writer = await writerFor(t, knex, dir);
  const costs = ['0.1500', '0.3000', '0.0150', '1.2345', '0.0001', '0.0000', '9.9999'];
  const records = costs.map((c, i) => cdr(i, { tenant_id: tenant, cost: c }));
  for (const r of records) await writer.record(r);
  const saved = segments(dir).map((n) => [n, fs.readFileSync(path.join(dir, n))] as const);
  await writer.flush();
  // The same segment again (a restart after a crash that came before the unlink), twice.
  for (const [name, bytes] of saved) fs.writeFileSync(path.join(dir, name), bytes);
  fs.writeFileSync(path.join(dir, 'segment-1-000000.jsonl'), saved[0][1]);
  await writer.flush();
  // And one call again with another cost: the first write wins, no second charge.
  await writer.record({ ...records[0], cost: '5.0000' });
  await writer.flush();

  // 2026-11-21T02:00Z is 10:00 in Shanghai, on 2026-11-21.
  t.same(await usage(knex, tenant, 'day', '2026-11-21'), { calls: 0, spend: '11.6995', excess: 0 }, 'day spend = Σ costs, once; calls are not counted at CDR time');
  t.same(await usage(knex, tenant, 'month', '2026-11-01'), { calls: 0, spend: '11.6995', excess: 0 });
  t.equal(await balance(knex, tenant), '88.3005', '100 - 11.6995');
  t.equal(Number(((await knex('cdrs').count('* as n').first()) as { n: unknown }).n), costs.length);
});

eachDb(t, 'the tenant\'s zone decides the day and month; postpaid and unknown tenants', async (t, { knex }) => {
  const sh = await addTenant(knex, { balance: '10' });
  const ny = await addTenant(knex, { balance: '10', timezone: 'America/New_York' });
  const postpaid = await addTenant(knex, { balance: null });
  const dir = spoolDir(t);
  const writer = await writerFor(t, knex, dir);
  const rec = (i: number, tenant: number | null, started: string, cost: string): CdrRecord => cdr(i, { tenant_id: tenant, started_at: at(started), cost });
  const list = [
    rec(1, sh, '2026-11-30T15:59:59.000Z', '1.0000'), // Shanghai: Nov 30, 23:59:59
    rec(2, sh, '2026-11-30T16:00:00.000Z', '2.0000'), // Shanghai: Dec 1, 00:00
    rec(3, ny, '2026-12-01T04:59:00.000Z', '0.5000'), // New York: Nov 30, 23:59
    rec(4, ny, '2026-12-01T05:00:00.000Z', '0.2500'), // New York: Dec 1
    rec(5, ny, '2026-11-01T05:30:00.000Z', '0.1000'), // 01:30 EDT on the 25-hour day
    rec(6, ny, '2026-11-01T06:30:00.000Z', '0.1000'), // 01:30 EST, the same local day
    rec(7, postpaid, '2026-11-20T02:00:00.000Z', '3.0000'),
    rec(8, null, '2026-11-20T02:00:00.000Z', '4.0000'),
    rec(9, 999, '2026-11-20T02:00:00.000Z', '4.0000'), // a tenant deleted meanwhile: default zone, no balance
  ];
  for (const r of list) await writer.record(r);
  await writer.flush();
  t.equal((await usage(knex, sh, 'day', '2026-11-30'))?.spend, '1.0000');
  t.equal((await usage(knex, sh, 'day', '2026-12-01'))?.spend, '2.0000');
  t.equal((await usage(knex, sh, 'month', '2026-11-01'))?.spend, '1.0000');
  t.equal((await usage(knex, sh, 'month', '2026-12-01'))?.spend, '2.0000');
  t.equal((await usage(knex, ny, 'day', '2026-11-30'))?.spend, '0.5000');
  t.equal((await usage(knex, ny, 'day', '2026-12-01'))?.spend, '0.2500');
  t.equal((await usage(knex, ny, 'day', '2026-11-01'))?.spend, '0.2000', 'both 01:30s of the DST day');
  t.equal((await usage(knex, ny, 'month', '2026-11-01'))?.spend, '0.7000');
  t.equal(await balance(knex, sh), '7.0000');
  t.equal(await balance(knex, ny), '9.0500');
  t.equal(await balance(knex, postpaid), null, 'postpaid: no balance to take from');
  t.equal((await usage(knex, postpaid, 'day', '2026-11-20'))?.spend, '3.0000', 'but spend is counted');
  t.equal((await usage(knex, 999, 'day', '2026-11-20'))?.spend, '4.0000');
});

eachDb(t, 'a balance debit is not a configuration edit: updated_at stays; a DBA edit still moves it', async (t, { knex, target }) => {
  const tenant = await addTenant(knex, { balance: '10' });
  await knex('tenants').where({ id: tenant }).update({ updated_at: '2026-01-01 00:00:00.000' });
  const before = (await knex<{ id: number; updated_at: unknown }>('tenants').where({ id: tenant }).first('updated_at'))?.updated_at;
  const dir = spoolDir(t);
  const writer = await writerFor(t, knex, dir);
  await writer.record(cdr(1, { tenant_id: tenant, cost: '1.2500' }));
  await writer.flush();
  t.equal(await balance(knex, tenant), '8.7500');
  const after = (await knex<{ id: number; updated_at: unknown }>('tenants').where({ id: tenant }).first('updated_at'))?.updated_at;
  t.same(after, before, `${target}: updated_at unchanged by the debit (the snapshot does not reload per call)`);
  await knex('tenants').where({ id: tenant }).update({ name: '改名公司' });
  const edited = (await knex<{ id: number; updated_at: unknown }>('tenants').where({ id: tenant }).first('updated_at'))?.updated_at;
  t.not(String(edited), String(before), 'a DBA edit moves updated_at');
  await knex('tenants').where({ id: tenant }).update({ updated_at: '2026-01-01 00:00:00.000' });
  await knex('tenants').where({ id: tenant }).update({ name: '再改名', balance: 50 });
  const both = (await knex<{ id: number; updated_at: unknown }>('tenants').where({ id: tenant }).first('updated_at'))?.updated_at;
  t.not(String(both), String(before), 'an edit of the balance together with another column moves it');
});

eachDb(t, '50 concurrent CDR writes from two writer instances (two daemons), half of them the same calls', async (t, ctx) => {
  const { knex, target } = ctx;
  const tenant = await addTenant(knex, { balance: '1000.0000' });
  const second = target === 'sqlite' ? knex : ctx.other(); // SQLite: single node, one pool (see below)
  const dirA = spoolDir(t);
  const dirB = spoolDir(t);
  const a = await writerFor(t, knex, dirA);
  const b = await writerFor(t, second, dirB);
  // 50 distinct calls; each writer gets 25 of its own and the 25 shared ones are written by both
  // (a call replayed by a daemon that had also spooled it).
  const records = Array.from({ length: 50 }, (_, i) => cdr(i, { tenant_id: tenant, cost: formatMoney(money(1000 + i * 37)) }));
  const shared = records.slice(0, 25);
  const jobs: Array<Promise<void>> = [];
  for (let i = 0; i < 50; i++) {
    const w = i % 2 === 0 ? a : b;
    jobs.push(w.record(records[i]).then(() => w.flush()));
  }
  for (const r of shared) {
    const w = records.indexOf(r) % 2 === 0 ? b : a; // the other writer
    jobs.push(w.record(r).then(() => w.flush()));
  }
  const started = Date.now();
  await Promise.all(jobs);
  await Promise.all([a.flush(), b.flush()]);
  await Promise.all([a.flush(), b.flush()]);
  t.comment(`75 writes of 50 calls through two writers: ${Date.now() - started} ms`);
  const expected = records.reduce((s, r) => s + Math.round(Number(r.cost) * 10000), 0);
  t.equal(Number(((await knex('cdrs').count('* as n').first()) as { n: unknown }).n), 50, '50 rows');
  t.same(await usage(knex, tenant, 'day', '2026-11-21'), { calls: 0, spend: formatMoney(money(expected)), excess: 0 }, 'spend: each call once');
  t.equal(await balance(knex, tenant), formatMoney(money(10_000_000 - expected)), 'balance: each call once');
  t.equal(a.spoolDepth + b.spoolDepth, 0);
});

eachDb(t, 'a batch with a bad record: the good ones are charged once, the bad one not at all', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '10' });
  const dir = spoolDir(t);
  const writer = await writerFor(t, knex, dir);
  const good = [cdr(1, { tenant_id: tenant, cost: '1.0000' }), cdr(2, { tenant_id: tenant, cost: '2.0000' })];
  const bad = cdr(3, { tenant_id: tenant, cost: '4.0000', started_at: null as unknown as string });
  for (const r of [good[0], bad, good[1]]) await writer.record(r);
  await writer.flush();
  t.equal((await usage(knex, tenant, 'day', '2026-11-21'))?.spend, '3.0000');
  t.equal(await balance(knex, tenant), '7.0000');
});

eachDb(t, 'the CDR transaction removes the call from live_calls; spend limits read live', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '5', max_spend_day: '2.0000', max_spend_month: '30' });
  const r = cdr(1, { tenant_id: tenant, cost: '0.5000' });
  await knex('live_calls').insert({ call_uuid: r.call_uuid, node: 'n1', tenant_id: tenant, started_at: r.started_at, seen_at: r.started_at });
  const dir = spoolDir(t);
  const writer = await writerFor(t, knex, dir);
  await writer.record(r);
  await writer.flush();
  t.equal((await knex('live_calls').where({ call_uuid: r.call_uuid })).length, 0);
  const now = new Date('2026-11-21T03:00:00Z');
  const limits = await readSpendLimits(knex, tenant, now);
  t.match(limits, { spendDay: 5000, spendMonth: 5000, balance: 45000, maxSpendDay: 20000 });
  t.equal(await readSpendHeadroom(knex, tenant, now), 15000, 'the day cap leaves 1.50, the balance 4.50');
  t.equal(await readSpendHeadroom(knex, 12345, now), null, 'no such tenant');

  // Calls of one tenant answered in one turn share one read; a later turn reads again.
  let statements = 0;
  const count = () => statements++;
  knex.on('query', count);
  const together = await Promise.all([least(sharedSpendLeft(knex, tenant, now)), least(sharedSpendLeft(knex, tenant, now)), least(sharedSpendLeft(knex, tenant, now))]);
  knex.off('query', count);
  t.same(together, [15000, 15000, 15000]);
  t.equal(statements, 2, 'three calls answered together: one read (tenant row, usage rows)');
  await knex('tenants').where({ id: tenant }).update({ balance: '1.0000' });
  await new Promise((r) => setImmediate(r)); // the next turn of the event loop
  t.equal(await least(sharedSpendLeft(knex, tenant, now)), 10000, 'a call answered later sees the balance as it is then');
});

eachDb(t, '50 concurrent CDR transactions from two daemons\' connection pools, overlapping calls: exactly once', async (t, ctx) => {
  const { knex, target } = ctx;
  const tenant = await addTenant(knex, { balance: '500.0000', timezone: 'America/New_York' });
  // SQLite is the single-node database: two pools in one process would block each other's event
  // loop in busy_timeout; there the two "daemons" share the one connection.
  const second = target === 'sqlite' ? knex : ctx.other();
  const records = Array.from({ length: 50 }, (_, i) => cdr(i, { tenant_id: tenant, cost: formatMoney(money(1500 + i)) }));
  // Each call is written twice, once through each pool, all 100 transactions at once.
  const started = Date.now();
  const results = await Promise.all(records.flatMap((r, i) => [writeCdrs(i % 2 ? knex : second, [r]), writeCdrs(i % 2 ? second : knex, [r])]));
  t.comment(`${target}: 100 concurrent single-CDR transactions (50 calls) in ${Date.now() - started} ms`);
  t.equal(results.reduce((a, b) => a + b, 0), 50, 'each call counted new exactly once');
  const expected = records.reduce((s, r) => s + Math.round(Number(r.cost) * 10000), 0);
  t.equal((await usage(knex, tenant, 'day', '2026-11-20'))?.spend, formatMoney(money(expected)), 'day (New York: still Nov 20 at 02:00Z)');
  t.equal((await usage(knex, tenant, 'month', '2026-11-01'))?.spend, formatMoney(money(expected)));
  t.equal(await balance(knex, tenant), formatMoney(money(5_000_000 - expected)));
});
