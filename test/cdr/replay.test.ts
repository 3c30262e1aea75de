// A spool backlog replayed in batches (src/cdr/batch.ts, CdrWriter.replay) on real SQLite and
// MariaDB: the same rows, usage and balances as writing the CDRs one by one; a replay cut off by
// an outage and then repeated from the start charges each call once; a bad record in the middle
// of a batch is quarantined alone (the batch halved, not written row by row); charges beyond
// DECIMAL(14,4) are still capped; statements stay within each database's limits.
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import t, { type Test } from 'tap';
import { insertAndCharge, statementLimits, SQLITE_MAX_VARIABLES } from '../../src/cdr/batch';
import { fitColumns, type CdrRecord } from '../../src/cdr/record';
import { asciiJson, CdrSpool, countLines, isBlankLine } from '../../src/cdr/spool';
import { CdrWriter, writeCdrs } from '../../src/cdr/writer';
import { toDbTimestamp } from '../../src/db/connect';
import { STATEMENT_CACHE_MAX_SQL } from '../../src/db/sqlite-statements';
import { formatMoney, money, parseMoney } from '../../src/domain/money';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import type { Tenant } from '../../src/snapshot/types';
import { addTenant, balance, setUsage, usage } from '../billing/helpers';
import { dbTargets, type TargetName, type TestDb } from '../helpers/db';
import { cdr, counter, quarantined, segments, spoolDir } from './records';

const log = createLogger('silent');
const MAX = '9999999999.9999';

interface Ctx {
  knex: Knex;
  target: TargetName;
  /** Another fresh database of the same kind (the row-by-row reference). */
  another(): Promise<Knex>;
}

function eachDb(t: Test, name: string, fn: (t: Test, ctx: Ctx) => Promise<void>): void {
  void t.test(name, async (t) => {
    for (const target of dbTargets()) {
      await t.test(target.name, async (t) => {
        const dbs: TestDb[] = [await target.create()];
        t.teardown(async () => {
          for (const db of dbs) await db.destroy();
        });
        await fn(t, {
          knex: dbs[0].knex,
          target: target.name,
          another: async () => {
            const db = await target.create();
            dbs.push(db);
            return db.knex;
          },
        });
      });
    }
  });
}

/** A writer that flushes only when told, with `batchRows` records per transaction. */
function writerFor(t: Test, knex: Knex, dir: string, opts: { batchRows: number; tenants?: () => ReadonlyMap<number, Tenant>; metrics?: Metrics; batchesInFlight?: number }): { writer: CdrWriter; spool: CdrSpool; metrics: Metrics } {
  const metrics = opts.metrics ?? new Metrics();
  const spool = new CdrSpool(dir);
  const writer = new CdrWriter(knex, spool, { flushIntervalMs: 60_000, retryIntervalMs: 0, batchRows: opts.batchRows, tenants: opts.tenants, batchesInFlight: opts.batchesInFlight }, log, metrics);
  t.teardown(() => writer.stop());
  return { writer, spool, metrics };
}

/** Spools `groups` as one segment each (closed, so the writer will replay them). */
async function spoolSegments(writer: CdrWriter, spool: CdrSpool, groups: CdrRecord[][]): Promise<void> {
  await spool.open();
  for (const g of groups) {
    await Promise.all(g.map((r) => writer.record(r)));
    await spool.rotate();
  }
}

async function dbErrors(metrics: Metrics): Promise<number> {
  return (await metrics.dbErrors.get()).values.find((v) => v.labels.operation === 'cdr_insert')?.value ?? 0;
}

async function insertsTried(metrics: Metrics): Promise<number> {
  return (await metrics.dbQuerySeconds.get()).values.filter((v) => v.labels.operation === 'cdr_insert' && v.metricName?.endsWith('_count')).reduce((s, v) => s + v.value, 0);
}

/** Everything charging and writing leave behind, in a form two databases of one kind can be compared by. */
async function state(knex: Knex): Promise<{ cdrs: unknown[]; usage: unknown[]; balances: unknown[] }> {
  const cdrs = ((await knex('cdrs').select('*').orderBy('call_uuid')) as Array<Record<string, unknown>>).map((r) => {
    const { id, write_batch, created_at, updated_at, ...rest } = r;
    void [id, write_batch, created_at, updated_at];
    return rest;
  });
  const usageRows = await knex('tenant_usage').select('tenant_id', 'period_kind', 'period_start', 'calls', 'spend', 'excess_calls').orderBy(['tenant_id', 'period_kind', 'period_start']);
  const balances = await knex('tenants').select('id', 'balance').orderBy('id');
  return { cdrs: JSON.parse(JSON.stringify(cdrs)) as unknown[], usage: usageRows as unknown[], balances: balances as unknown[] };
}

async function tenantsFor(knex: Knex): Promise<{ sh: number; ny: number; ktm: number }> {
  return {
    sh: await addTenant(knex, { balance: '100000.0000' }),
    ny: await addTenant(knex, { balance: '50.0000', timezone: 'America/New_York' }),
    ktm: await addTenant(knex, { balance: null, timezone: 'Asia/Kathmandu' }),
  };
}

/**
 * A backlog of `n` calls over four days around New York's DST end and a month end, for three
 * tenants and calls of no tenant, with every kind of record the writer meets: unrated (cost
 * left to the column default), free, click-to-call (more columns), and each 97th call spooled
 * twice in different segments.
 */
function backlog(n: number, ids: { sh: number; ny: number; ktm: number }): CdrRecord[] {
  const base = Date.parse('2026-10-30T20:00:00.000Z');
  const tenants = [ids.sh, ids.ny, ids.ktm, null];
  const out: CdrRecord[] = [];
  for (let i = 0; i < n; i++) {
    const started = new Date(base + i * Math.floor((4 * 86_400_000) / n));
    const r = cdr(i, { tenant_id: tenants[i % 4] ?? null, started_at: toDbTimestamp(started), cost: formatMoney(money(1 + ((i * 7919) % 50_000))) });
    if (i % 11 === 0) out.push({ ...r, cost: null, outcome: 'busy', answered_at: null, billsec: 0 });
    else if (i % 13 === 0) out.push({ ...r, cost: '0.0000' });
    else if (i % 17 === 0) out.push({ ...r, origin: 'click_to_call', widget_id: 3, visitor_ring_s: 4, visitor_cost: '0.0100' });
    else out.push(r);
    if (i % 97 === 50) out.push(out[out.length - 1]);
  }
  return out;
}

/** Cuts `records` into segments of uneven sizes (1, 700, 1300, 3, 2500, … repeating). */
function cut(records: CdrRecord[]): CdrRecord[][] {
  const sizes = [1, 700, 1300, 3, 2500];
  const out: CdrRecord[][] = [];
  for (let i = 0, k = 0; i < records.length; k++) {
    const size = sizes[k % sizes.length] ?? 1;
    out.push(records.slice(i, i + size));
    i += size;
  }
  return out;
}

eachDb(t, 'a large backlog replayed in batches leaves what writing it row by row leaves', async (t, ctx) => {
  const { knex, target } = ctx;
  const another = (): Promise<Knex> => ctx.another();
  const reference = await another();
  const ids = await tenantsFor(knex);
  t.same(await tenantsFor(reference), ids, 'the same tenant ids in both databases');
  // Row by row is the slow part (a transaction per call): 2,000 calls keep the test short.
  const n = 2000;
  const records = backlog(n, ids);
  // Calls another daemon wrote before the outage: in both databases already, charged there.
  const before = records.filter((_, i) => i % 250 === 7);
  for (const r of before) {
    await writeCdrs(knex, [fitColumns(r)]);
    await writeCdrs(reference, [fitColumns(r)]);
  }

  const started = Date.now();
  for (const r of records) await writeCdrs(reference, [fitColumns(r)]);
  const oneByOneMs = Date.now() - started;

  const dir = spoolDir(t);
  const { writer, spool, metrics } = writerFor(t, knex, dir, { batchRows: 1000 });
  await spoolSegments(writer, spool, cut(records));
  const spooled = segments(dir).length;
  const replayStarted = Date.now();
  await writer.flush();
  const batchMs = Date.now() - replayStarted;
  t.comment(`${target}: ${records.length} records in ${spooled} segments; one by one ${oneByOneMs} ms, in batches ${batchMs} ms (${(await insertsTried(metrics)).toFixed(0)} transactions)`);

  t.same(segments(dir), [], 'every segment replayed and removed');
  t.same(quarantined(dir), [], 'nothing quarantined');
  t.equal(await dbErrors(metrics), 0, 'no batch refused (rows with different columns share a batch)');
  const distinct = new Set(records.map((r) => r.call_uuid)).size;
  t.equal(await counter(metrics.cdrsWritten), distinct - before.length, 'hotline_cdrs_written_total: the calls that were new');
  const [got, want] = [await state(knex), await state(reference)];
  t.equal(got.cdrs.length, distinct, `${distinct} rows`);
  t.same(got.cdrs, want.cdrs, 'the same cdrs rows, column by column');
  t.ok(want.usage.length >= 20, `${want.usage.length} tenant_usage rows (days and months of three zones)`);
  t.same(got.usage, want.usage, 'the same tenant_usage');
  t.same(got.balances, want.balances, 'the same balances');
});

eachDb(t, 'a replay cut off by an outage and repeated from the start charges each call once', async (t, { knex, target }) => {
  const ids = await tenantsFor(knex);
  const records = backlog(2600, ids).slice(0, 2600);
  const dir = spoolDir(t);
  // The outage strikes inside the third transaction (after its inserts, before its charges and
  // commit: the batch reads the snapshot's tenants once, there) and lasts: the writer's final
  // flush at stop() fails too.
  let transactions = 0;
  // The snapshot's tenants, with the zones their rows have (the batch counts periods in these).
  const zoneRows: Array<{ id: number; timezone: string }> = await knex('tenants').whereIn('id', Object.values(ids)).select('id', 'timezone');
  const inForce = new Map(zoneRows.map((r) => [Number(r.id), { id: Number(r.id), timezone: r.timezone, missedCallNotify: null } as unknown as Tenant]));
  // One batch in flight: the outage is "the third transaction", counted by calls of tenants();
  // with two in flight a lock-conflict retry of batch 2 could be that call (seen once in five
  // full runs). Concurrent batches are proven equal to row by row in the test above.
  const failing = writerFor(t, knex, dir, {
    batchRows: 1000,
    batchesInFlight: 1,
    tenants: () => {
      if (++transactions >= 3) throw Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST' });
      return inForce;
    },
  });
  await spoolSegments(failing.writer, failing.spool, [records.slice(0, 1200), records.slice(1200, 2600)]);
  const copies = segments(dir).map((n) => [n, fs.readFileSync(path.join(dir, n))] as const);
  await failing.writer.flush();
  const written = Number(((await knex('cdrs').count('* as n').first()) as { n: unknown }).n);
  const committed = new Set(records.slice(0, 2000).map((r) => r.call_uuid)).size;
  t.equal(written, committed, 'two batches committed, the third rolled back');
  t.equal(segments(dir).length, 1, 'the first segment (all its records committed) removed, the second kept');
  await failing.writer.stop();

  // The crash came before the first segment's unlink: every segment is replayed from the start.
  for (const [name, bytes] of copies) fs.writeFileSync(path.join(dir, name), bytes);
  const again = writerFor(t, knex, dir, { batchRows: 1000 });
  await again.writer.start();
  await again.writer.flush();
  const distinct = new Map(records.map((r) => [r.call_uuid, r]));
  t.equal(Number(((await knex('cdrs').count('* as n').first()) as { n: unknown }).n), distinct.size, `${distinct.size} rows, none twice`);
  t.equal(await counter(again.metrics.cdrsWritten), distinct.size - committed, 'the second writer counts only the calls the first had not committed');
  t.same(segments(dir), []);
  t.same(quarantined(dir), []);

  // Spend and balance: each call once, whichever writer wrote it.
  const spend = new Map<string, number>();
  const debit = new Map<number, number>();
  for (const r of distinct.values()) {
    if (r.tenant_id === null || r.cost === null) continue;
    const c = parseMoney(r.cost);
    const zone = r.tenant_id === ids.ny ? 'America/New_York' : r.tenant_id === ids.ktm ? 'Asia/Kathmandu' : 'Asia/Shanghai';
    const day = new Date(`${r.started_at.replace(' ', 'T')}Z`).toLocaleDateString('sv-SE', { timeZone: zone });
    spend.set(`${r.tenant_id}/${day}`, (spend.get(`${r.tenant_id}/${day}`) ?? 0) + c);
    debit.set(r.tenant_id, (debit.get(r.tenant_id) ?? 0) + c);
  }
  for (const [key, units] of spend) {
    const [tenant, day] = key.split('/');
    t.equal((await usage(knex, Number(tenant), 'day', day ?? ''))?.spend, formatMoney(money(units)), `${target}: spend of tenant ${tenant} on ${day}`);
  }
  t.equal(await balance(knex, ids.sh), formatMoney(money(1_000_000_000 - (debit.get(ids.sh) ?? 0))), 'Shanghai tenant debited once');
  t.equal(await balance(knex, ids.ny), formatMoney(money(500_000 - (debit.get(ids.ny) ?? 0))), 'New York tenant debited once');
});

eachDb(t, 'a bad record in the middle of a batch is quarantined alone; the batch is halved, not written row by row', async (t, { knex, target }) => {
  const tenant = await addTenant(knex, { balance: '1000.0000' });
  const good = Array.from({ length: 2000 }, (_, i) => cdr(i, { tenant_id: tenant, cost: '0.0100', started_at: '2026-11-21 02:00:00.000' }));
  const bad = cdr(5000, { tenant_id: tenant, cost: '7.0000', outcome: null as unknown as 'answered' });
  const dir = spoolDir(t);
  const { writer, spool, metrics } = writerFor(t, knex, dir, { batchRows: 4000 });
  await spoolSegments(writer, spool, [good.slice(0, 1234), [bad], good.slice(1234)]);
  await writer.flush();

  const q = quarantined(dir);
  t.equal(q.length, 1, 'one record quarantined');
  t.equal((JSON.parse(q[0]?.line ?? '{}') as { call_uuid?: string }).call_uuid, bad.call_uuid, 'the bad one');
  t.match(q[0]?.reason ?? '', /SQLITE_CONSTRAINT|ER_BAD_NULL/, `with the database's reason (${q[0]?.reason.slice(0, 60)})`);
  t.equal(Number(((await knex('cdrs').count('* as n').first()) as { n: unknown }).n), 2000, 'the other 2,000 written');
  t.equal((await usage(knex, tenant, 'day', '2026-11-21'))?.spend, '20.0000', 'and charged: 2,000 × 0.01, not the bad 7.00');
  t.equal(await balance(knex, tenant), '980.0000');
  const refused = await dbErrors(metrics);
  const tried = await insertsTried(metrics);
  t.comment(`${target}: ${tried} transactions, ${refused} refused, for 2,001 records with one bad`);
  t.ok(refused >= 1 && refused <= 12, 'refused once per halving: 2,001 → 1,000 → … → 1 (at most 12 levels)');
  t.ok(tried <= 2 * 12, `${tried} transactions (row by row would take 2,001)`);
  t.same(segments(dir), []);
  t.equal(await counter(metrics.cdrsQuarantined), 1);
});

eachDb(t, 'records that cannot be rows are quarantined before the database sees them', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '10.0000' });
  const dir = spoolDir(t);
  const { writer, spool, metrics } = writerFor(t, knex, dir, { batchRows: 1000 });
  await spool.open();
  const good = [cdr(1, { tenant_id: tenant, cost: '1.0000' }), cdr(2, { tenant_id: tenant, cost: '2.0000' })];
  await writer.record(good[0]);
  await spool.rotate();
  const [segment] = segments(dir);
  const junk = ['null', '[1,2]', '{"call_uuid":5}', JSON.stringify({ ...good[1], call_uuid: 'x-junk-cost', cost: 'abc' }), JSON.stringify({ ...good[1], call_uuid: 'x-obj', caller: { a: 1 } }), JSON.stringify({ ...good[1], call_uuid: 'x-col', 'x`; DROP TABLE cdrs; --': 1 })];
  fs.appendFileSync(path.join(dir, segment ?? ''), `${junk.join('\n')}\n`);
  await writer.record(good[1]);
  await writer.flush();
  t.same(quarantined(dir).map((q) => q.line), junk, 'each junk line quarantined verbatim');
  t.match(quarantined(dir).map((q) => q.reason), [/CDR_NOT_AN_OBJECT/, /CDR_NOT_AN_OBJECT/, /CDR_BAD_CALL_UUID/, /CDR_BAD_COST/, /CDR_BAD_VALUE/, /CDR_BAD_COLUMN/]);
  t.equal(await dbErrors(metrics), 0, 'the database never saw them');
  t.equal(await balance(knex, tenant), '7.0000', 'the good records charged');
  t.same(segments(dir), []);
});

eachDb(t, 'charges beyond DECIMAL(14,4) are capped once per batch; a replay of the batch charges nothing', async (t, { knex }) => {
  const full = await addTenant(knex, { balance: '-9999999998.0000' });
  const other = await addTenant(knex, { balance: '100.0000' });
  await setUsage(knex, full, 'day', '2026-11-21', 0, '9999999999.0000');
  await setUsage(knex, full, 'month', '2026-11-01', 0, '9999999999.0000');
  const at = '2026-11-21 02:00:00.000';
  const records = Array.from({ length: 1500 }, (_, i) => cdr(i, { tenant_id: i % 3 === 0 ? other : full, cost: '0.0100', started_at: at }));
  const dir = spoolDir(t);
  const { writer, spool, metrics } = writerFor(t, knex, dir, { batchRows: 2000 });
  await spoolSegments(writer, spool, [records]);
  const copies = segments(dir).map((n) => [n, fs.readFileSync(path.join(dir, n))] as const);
  await writer.flush();
  t.same(quarantined(dir), [], 'nothing quarantined');
  t.equal((await usage(knex, full, 'day', '2026-11-21'))?.spend, MAX, 'spend stops at the maximum');
  t.equal((await usage(knex, full, 'month', '2026-11-01'))?.spend, MAX);
  t.equal(await balance(knex, full), '-9999999999.9999', 'the balance at the minimum');
  t.equal((await usage(knex, other, 'day', '2026-11-21'))?.spend, '5.0000', 'the other tenant of the batch charged in full: 500 × 0.01');
  t.equal(await balance(knex, other), '95.0000');
  const capped = async (column: string): Promise<number> => (await metrics.chargesCapped.get()).values.find((v) => v.labels.column === column)?.value ?? 0;
  t.equal(await capped('spend'), 2, 'one capped spend per period row of the batch (day, month), not per CDR');
  t.equal(await capped('balance'), 1, 'one capped balance per tenant of the batch');

  for (const [name, bytes] of copies) fs.writeFileSync(path.join(dir, name), bytes);
  await writer.flush();
  t.equal(await capped('spend'), 2, 'the replay charges nothing, so caps nothing');
  t.equal(await balance(knex, other), '95.0000', 'and debits nothing');
  t.equal(Number(((await knex('cdrs').count('* as n').first()) as { n: unknown }).n), 1500);
});

eachDb(t, 'one batch stays within the database\'s statement limits', async (t, { knex, target }) => {
  const tenant = await addTenant(knex, { balance: null });
  const records = Array.from({ length: 3000 }, (_, i) => fitColumns(cdr(i, { tenant_id: tenant, cost: '0.0100', recording_path: `/rec/${'x'.repeat(200)}/${i}.wav` })));
  const statements: string[] = [];
  const onQuery = (q: { sql: string }): void => void statements.push(q.sql.slice(0, 20));
  knex.on('query', onQuery);
  t.teardown(() => {
    knex.removeListener('query', onQuery);
  });
  const limits = await statementLimits(knex);
  if (target === 'sqlite') {
    t.equal(limits.variables, SQLITE_MAX_VARIABLES);
    t.ok(3000 * Object.keys(records[0] ?? {}).length > SQLITE_MAX_VARIABLES, 'one statement for the batch would pass the variable limit');
  } else {
    t.ok(limits.bytes > 1 << 20, `half of max_allowed_packet: ${limits.bytes} bytes`);
  }
  // MariaDB's packet (16 MiB by default) is too big to reach in a test without changing the
  // server for every client; a 64 KiB limit exercises the same cut.
  const lim = target === 'sqlite' ? limits : { ...limits, bytes: 64 * 1024 };
  const result = await knex.transaction((trx) => insertAndCharge(trx, records, undefined, lim));
  t.equal(result.fresh, 3000, 'every row new');
  const inserts = statements.filter((s) => /^INSERT INTO .cdrs/i.test(s)).length;
  t.ok(inserts >= (target === 'sqlite' ? 2 : 10), `${inserts} INSERT statements in one transaction`);
  t.equal(Number(((await knex('cdrs').count('* as n').first()) as { n: unknown }).n), 3000);
  t.equal((await usage(knex, tenant, 'day', '2026-11-21'))?.spend, '30.0000', 'charged once for the whole batch');
  const again = await knex.transaction((trx) => insertAndCharge(trx, records, undefined, lim));
  t.equal(again.fresh, 0, 'the same batch again: nothing new (duplicates found across statements)');
  t.equal((await usage(knex, tenant, 'day', '2026-11-21'))?.spend, '30.0000');
});

void t.test('SQLite: batches of any size reuse a handful of INSERT texts, each short enough to stay compiled', async (t) => {
  const target = dbTargets().find((x) => x.name === 'sqlite');
  if (!target) throw new Error('test/helpers/db.ts lists no SQLite target');
  const db = await target.create();
  t.teardown(() => db.destroy());
  const tenant = await addTenant(db.knex, { balance: null });
  const texts = new Set<string>();
  const onQuery = (q: { sql: string }): void => {
    if (/^INSERT INTO .cdrs/i.test(q.sql)) texts.add(q.sql);
  };
  db.knex.on('query', onQuery);
  let n = 0;
  // Every column a CDR can have set: the longest INSERT text there is.
  const full = { call_type: 'mobile', admitted: true, origin: 'click_to_call' as const, widget_id: 7, visitor_ring_s: 3.5, visitor_cost: '0.0200', failure_reason: 'none', recording_path: '/rec/a.wav' };
  for (const size of [1, 7, 40, 63, 64, 65, 130, 281]) {
    const records = Array.from({ length: size }, () => fitColumns(cdr(n++, { tenant_id: tenant, ...full })));
    const result = await db.knex.transaction((trx) => insertAndCharge(trx, records));
    t.equal(result.fresh, size, `a batch of ${size}: every row inserted`);
  }
  db.knex.removeListener('query', onQuery);
  t.equal(Number(((await db.knex('cdrs').count('* as n').first()) as { n: unknown }).n), n, 'every row of every batch there');
  t.ok(texts.size >= 4 && texts.size <= 6, `${texts.size} INSERT texts for 8 batch sizes (one per power of two up to 32)`);
  const longest = Math.max(...[...texts].map((s) => s.length));
  t.ok(longest <= STATEMENT_CACHE_MAX_SQL, `the longest is ${longest} characters: kept by the statement cache (at most ${STATEMENT_CACHE_MAX_SQL})`);
});

void t.test('the spool-depth count (bytes) and the replay (text) agree on what a record line is', async (t) => {
  const texts = ['', '\n', 'a', 'a\n', '{"x":1}\n\n  \n\t\r\n{"y":"广东"}\n{"half', ' \u00a0 \n', '\n\n\n{}\n'];
  for (const text of texts) {
    const byText = text.split('\n').filter((l) => !isBlankLine(l)).length;
    t.equal(countLines(Buffer.from(text, 'utf8')), byText, JSON.stringify(text));
  }
});

void t.test('spool lines are ASCII and parse back to the same record', async (t) => {
  const record = { ...cdr(1), caller_region: '广东省广州市', ivr_path: '1\u007f2', hangup_cause: 'emoji 😀 and a lone \ud800 surrogate', node: 'tab\there "quoted" \\ back' };
  const line = asciiJson(record);
  t.match(line, /^[\x20-\x7e]*$/, 'printable ASCII only');
  t.same(JSON.parse(line), record, 'the same value');
  t.ok(line.includes('\\u5e7f'), 'Chinese as \\u escapes');
});
