// Charges the database cannot store are capped, logged and counted, never quarantined (issue 10:
// with rates.connect_fee = 9999999999.9999 the first call pushed tenant_usage.spend to the
// DECIMAL(14,4) maximum, and every later CDR of the tenant went to quarantine.jsonl, even after
// the rate row was deleted). On SQLite and MariaDB, through a real CdrWriter.
import t from 'tap';
import { runCaps } from '../../src/billing/caps';
import { CdrSpool } from '../../src/cdr/spool';
import { CdrWriter } from '../../src/cdr/writer';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { cdr, quarantined, spoolDir } from '../cdr/records';
import { addCdrs, addTenant, balance, eachDb, setUsage, usage } from './helpers';

const MAX = '9999999999.9999';
// 2026-11-21T02:00Z is 10:00 on 2026-11-21 in Shanghai.
const STARTED = '2026-11-21 02:00:00.000';

eachDb(t, 'a tenant whose spend is at the maximum: later CDRs are written, the charge capped and counted', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: null });
  await setUsage(knex, tenant, 'day', '2026-11-21', 1, MAX);
  await setUsage(knex, tenant, 'month', '2026-11-01', 1, MAX);
  const dir = spoolDir(t);
  const logs: Array<Record<string, unknown>> = [];
  const metrics = new Metrics();
  const spool = new CdrSpool(dir);
  const writer = new CdrWriter(knex, spool, { flushIntervalMs: 60_000, retryIntervalMs: 0 }, createLogger('warn', { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) }), metrics);
  // No start(): its timer would flush on its own; this test flushes when it means to.
  await spool.open();
  t.teardown(() => writer.stop());

  const later = [cdr(1, { tenant_id: tenant, started_at: STARTED, cost: '0.5000' }), cdr(2, { tenant_id: tenant, started_at: STARTED, cost: '1.2000' })];
  for (const r of later) await writer.record(r);
  await writer.flush();
  t.same(quarantined(dir), [], 'nothing quarantined');
  t.equal((await knex('cdrs').whereIn('call_uuid', later.map((r) => r.call_uuid))).length, 2, 'both CDRs written');
  t.equal((await usage(knex, tenant, 'day', '2026-11-21'))?.spend, MAX, 'spend stays at the maximum');
  t.equal((await usage(knex, tenant, 'month', '2026-11-01'))?.spend, MAX);
  const capped = (await metrics.chargesCapped.get()).values.find((v) => v.labels.column === 'spend')?.value;
  t.equal(capped, 2, 'hotline_charges_capped_total{column="spend"}: the day and the month row');
  t.match(logs.find((l) => l.column === 'spend'), { level: 40, tenant_id: tenant, msg: /charge capped to what DECIMAL\(14,4\) holds; the CDR is written/, detail: /tenant_usage\.spend \(day 2026-11-21\) 9999999999\.9999 \+ 1\.7000 cut at 9999999999\.9999/ });
});

eachDb(t, 'a cost beyond DECIMAL(14,4) (an old spool line, a rating bug) is cut to the maximum and written', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '-9999999000.0000' });
  const dir = spoolDir(t);
  const metrics = new Metrics();
  const spool = new CdrSpool(dir);
  const writer = new CdrWriter(knex, spool, { flushIntervalMs: 60_000, retryIntervalMs: 0 }, createLogger('silent'), metrics);
  await spool.open();
  t.teardown(() => writer.stop());
  const huge = cdr(1, { tenant_id: tenant, started_at: STARTED, cost: '99999999999.0000' });
  const atMax = cdr(2, { tenant_id: tenant, started_at: STARTED, cost: MAX });
  await writer.record(huge);
  await writer.record(atMax);
  await writer.flush();
  t.same(quarantined(dir), []);
  const rows = (await knex('cdrs').select('call_uuid', 'cost').orderBy('call_uuid')) as Array<{ call_uuid: string; cost: unknown }>;
  t.same(rows.map((r) => Number(r.cost).toFixed(4)), [MAX, MAX], 'cost cut to the maximum');
  t.equal((await metrics.chargesCapped.get()).values.find((v) => v.labels.column === 'cost')?.value, 2, 'counted as capped costs');
  t.equal((await usage(knex, tenant, 'day', '2026-11-21'))?.spend, MAX, 'spend: two maximums cut to one');
  t.equal(await balance(knex, tenant), '-9999999999.9999', 'the balance goes no lower than DECIMAL(14,4) holds');
  t.equal((await metrics.chargesCapped.get()).values.find((v) => v.labels.column === 'balance')?.value, 1);
});

eachDb(t, 'the caps job recounts spend beyond the maximum without failing', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: null, max_spend_day: '100.0000' });
  const now = new Date('2026-11-21T03:00:00.000Z');
  await addCdrs(knex, [
    { tenant_id: tenant, started_at: '2026-11-21T02:00:00.000Z', cost: MAX },
    { tenant_id: tenant, started_at: '2026-11-21T02:10:00.000Z', cost: MAX },
    { tenant_id: tenant, started_at: '2026-11-21T02:20:00.000Z', cost: '5.0000' },
  ]);
  const r = await runCaps(knex, now, createLogger('silent'));
  t.ok(r.capped >= 1, 'the tenant is capped');
  t.equal((await usage(knex, tenant, 'day', '2026-11-21'))?.spend, MAX, 'the recount is stored as the maximum');
  t.equal((await usage(knex, tenant, 'month', '2026-11-01'))?.spend, MAX);
  t.same(await runCaps(knex, new Date(now.getTime() + 60_000), createLogger('silent')), { ...r, capped: 0, corrected: 0 }, 'and the next run sees no drift');
});
