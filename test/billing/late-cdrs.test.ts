/**
 * CDRs that reach the database after their report was made (a spool replayed after an outage) are
 * not missed by reports, on SQLite and MariaDB: the CDR batch marks their report periods in its own
 * transaction (report_late_cdrs), reading the tenants once per batch and adding no query per row;
 * the reports job makes those reports again and clears the marks; marks of deleted tenants go.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import t, { type Test } from 'tap';
import { clearLateMark, lateReportPeriods, readLateMarks, REPORT_SETTLE_MS } from '../../src/billing/late-cdrs';
import { runReports } from '../../src/billing/reports';
import { insertAndCharge } from '../../src/cdr/batch';
import type { CdrRecord } from '../../src/cdr/record';
import { createLogger } from '../../src/log';
import type { Tenant } from '../../src/snapshot/types';
import { cdr } from '../cdr/records';
import { addTenant, eachDb } from './helpers';

const log = createLogger('silent');

function reportsDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'late-reports-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** One batch as the CDR writer writes it, at `now`. */
async function batch(knex: Knex, records: CdrRecord[], now: Date): Promise<number> {
  return (await knex.transaction((trx) => insertAndCharge(trx, records, undefined, undefined, now))).fresh;
}

async function marks(knex: Knex): Promise<string[]> {
  return (await readLateMarks(knex, 1000)).map((m) => `${m.tenantId}:${m.kind}:${m.start}:${m.cdrs}`).sort();
}

async function reportCalls(knex: Knex, tenant: number, kind: string, start: string): Promise<number | null> {
  const row: { calls: unknown } | undefined = await knex('call_reports').where({ tenant_id: tenant, period_kind: kind, period_start: start }).first('calls');
  return row ? Number(row.calls) : null;
}

let n = 0;
const at = (tenant: number, iso: string, extra: Partial<CdrRecord> = {}): CdrRecord => cdr(n++, { tenant_id: tenant, started_at: iso.replace('T', ' ').replace('Z', ''), ...extra });

void t.test('which periods a batch reaches late (pure)', async (t) => {
  const zones = new Map([[1, 'Asia/Shanghai'], [2, 'America/New_York']]);
  // 2026-11-22T02:00Z: 10:00 on Nov 22 in Shanghai, 21:00 on Nov 21 in New York.
  const now = new Date('2026-11-22T02:00:00Z');
  const rows = [
    { tenant_id: 1, started_at: '2026-11-21 03:00:00.000' }, // Shanghai Nov 21: that day is over
    { tenant_id: 1, started_at: '2026-11-21 04:00:00.000' },
    { tenant_id: 1, started_at: '2026-11-22 01:00:00.000' }, // Shanghai Nov 22: today
    { tenant_id: 2, started_at: '2026-11-21 03:00:00.000' }, // New York Nov 20 (22:00): over
    { tenant_id: 2, started_at: '2026-11-21 06:00:00.000' }, // New York Nov 21: today
    { tenant_id: 1, started_at: '2026-10-31 15:00:00.000' }, // Shanghai Oct 31 23:00: day and month over
    { tenant_id: null, started_at: '2026-10-01 00:00:00.000' },
    { tenant_id: 1, started_at: 'not a time' },
  ];
  t.same(lateReportPeriods(rows, zones, now), [
    { tenantId: 1, kind: 'day', start: '2026-10-31', cdrs: 1 },
    { tenantId: 1, kind: 'day', start: '2026-11-21', cdrs: 2 },
    { tenantId: 1, kind: 'month', start: '2026-10-01', cdrs: 1 },
    { tenantId: 2, kind: 'day', start: '2026-11-20', cdrs: 1 },
  ]);
  // Within REPORT_SETTLE_MS of midnight the day's report is not made yet: nothing is late.
  const justAfter = new Date(Date.parse('2026-11-21T16:00:00Z') + REPORT_SETTLE_MS - 1);
  t.same(lateReportPeriods([{ tenant_id: 1, started_at: '2026-11-21 15:59:00.000' }], zones, justAfter), []);
  t.same(lateReportPeriods([{ tenant_id: 1, started_at: '2026-11-21 15:59:00.000' }], zones, new Date(justAfter.getTime() + 1)), [{ tenantId: 1, kind: 'day', start: '2026-11-21', cdrs: 1 }]);
});

eachDb(t, 'a batch marks late periods in its transaction: one tenants read, one upsert, none per row', async (t, { knex }) => {
  const a = await addTenant(knex, { balance: '100' });
  const b = await addTenant(knex, { balance: null, timezone: 'America/New_York' });
  const now = new Date('2026-11-22T02:00:00Z');
  const statements: string[] = [];
  const onQuery = (q: { sql: string }): void => void statements.push(q.sql);
  knex.on('query', onQuery);
  const records = [
    ...Array.from({ length: 300 }, () => at(a, '2026-11-21T03:00:00Z')),
    ...Array.from({ length: 200 }, () => at(b, '2026-11-21T03:00:00Z', { cost: '0.0000', outcome: 'no_answer', billsec: 0 })),
    at(a, '2026-11-22T01:00:00Z'),
  ];
  t.equal(await batch(knex, records, now), 501);
  knex.removeListener('query', onQuery);
  const tenantsReads = statements.filter((s) => /from [`"]tenants[`"]/i.test(s) && /^select/i.test(s.trim()));
  t.equal(tenantsReads.length, 1, 'the tenants are read once for the batch');
  t.equal(statements.filter((s) => /report_late_cdrs/i.test(s)).length, 1, 'one upsert of the marks');
  t.same(await marks(knex), [`${a}:day:2026-11-21:300`, `${b}:day:2026-11-20:200`]);

  t.equal(await batch(knex, records, now), 0, 'the batch replayed: nothing new');
  t.same(await marks(knex), [`${a}:day:2026-11-21:300`, `${b}:day:2026-11-20:200`], 'and no mark added');
  t.equal(await batch(knex, [at(a, '2026-11-21T05:00:00Z')], now), 1);
  t.same(await marks(knex), [`${a}:day:2026-11-21:301`, `${b}:day:2026-11-20:200`], 'one more late CDR adds to the mark');

  statements.length = 0;
  knex.on('query', onQuery);
  t.equal(await batch(knex, [at(a, '2026-11-22T01:30:00Z')], now), 1);
  knex.removeListener('query', onQuery);
  t.equal(statements.filter((s) => /report_late_cdrs/i.test(s)).length, 0, 'a batch with no late CDR writes no mark');

  // A mark a batch added to after the job read it is not deleted by the job.
  const [read] = await readLateMarks(knex, 1);
  await batch(knex, [at(read.tenantId, read.tenantId === a ? '2026-11-21T06:00:00Z' : '2026-11-21T04:00:00Z')], now);
  t.notOk(await clearLateMark(knex, read), 'a mark that grew since it was read stays');
  t.ok(await clearLateMark(knex, { ...read, cdrs: read.cdrs + 1 }), 'as read now, it goes');
});

eachDb(t, 'with a snapshot in force, a batch reads tenants rows only for the balances it charges; zones are the snapshot\'s', async (t, { knex }) => {
  // The rows say UTC; the snapshot in force says New York for b: the snapshot wins, as for every reader (zones.ts).
  const a = await addTenant(knex, { balance: '100', timezone: 'UTC' });
  const b = await addTenant(knex, { balance: null, timezone: 'UTC' });
  const inForce = new Map<number, Tenant>([
    [a, { id: a, timezone: 'Asia/Shanghai', missedCallNotify: null } as unknown as Tenant],
    [b, { id: b, timezone: 'America/New_York', missedCallNotify: null } as unknown as Tenant],
  ]);
  const now = new Date('2026-11-22T02:00:00Z');
  const statements: string[] = [];
  const onQuery = (q: { sql: string; bindings?: unknown[] }): void => void statements.push(`${q.sql} ${JSON.stringify(q.bindings ?? [])}`);
  const tenantsReads = (): string[] => statements.filter((s) => /from [`"]tenants[`"]/i.test(s) && /^select/i.test(s.trim()));
  const free = { cost: '0.0000', outcome: 'no_answer' as const, billsec: 0 };
  const write = (records: CdrRecord[]): Promise<number> => knex.transaction(async (trx) => (await insertAndCharge(trx, records, () => inForce, undefined, now)).fresh);
  knex.on('query', onQuery);
  t.teardown(() => void knex.removeListener('query', onQuery));

  // 2026-11-21T03:00Z is Nov 21 in Shanghai (a day over at `now`) and Nov 20 in New York.
  t.equal(await write([at(a, '2026-11-21T03:00:00Z', free), at(b, '2026-11-21T03:00:00Z', free), at(9_999_999, '2026-11-21T03:00:00Z', free)]), 3);
  t.same(tenantsReads(), [], 'nothing charged: no tenants read');
  t.same(await marks(knex), [`${9_999_999}:day:2026-11-21:1`, `${a}:day:2026-11-21:1`, `${b}:day:2026-11-20:1`].sort(), 'late marks in the snapshot\'s zones (a tenant not in it: the default zone)');

  statements.length = 0;
  t.equal(await write([at(a, '2026-11-21T04:00:00Z', { cost: '1.5000' }), at(b, '2026-11-21T04:00:00Z', free)]), 2);
  t.equal(tenantsReads().length, 1, 'one read, for the charged tenant');
  t.match(tenantsReads()[0], new RegExp(`\\[${a}\\]$`), 'of the charged tenant only');
  const row: { balance: unknown } = await knex('tenants').where({ id: a }).first('balance');
  t.equal(Number(row.balance), 98.5, 'and its balance charged');
});

eachDb(t, 'the reports job makes a report again when CDRs of its period arrived after it', async (t, { knex }) => {
  const tenant = await addTenant(knex, { name: '迟到公司' });
  const opts = { reportsDir: reportsDir(t), maxCallS: 14_400, log };
  // Nov 21 (Shanghai): one call written in time; the report is made at 00:06 on Nov 22.
  await batch(knex, [at(tenant, '2026-11-21T03:00:00Z')], new Date('2026-11-21T03:01:00Z'));
  t.same(await marks(knex), [], 'written in time: no mark');
  await runReports(knex, new Date('2026-11-21T16:06:00Z'), opts);
  t.equal(await reportCalls(knex, tenant, 'day', '2026-11-21'), 1);
  // The spool of a daemon that was away replays two more calls of Nov 21 at 01:00 on Nov 22.
  const replayedAt = new Date('2026-11-21T17:00:00Z');
  await batch(knex, [at(tenant, '2026-11-21T04:00:00Z'), at(tenant, '2026-11-21T05:00:00Z', { outcome: 'busy', billsec: 0, cost: '0.0000' })], replayedAt);
  t.same(await marks(knex), [`${tenant}:day:2026-11-21:2`]);
  t.equal(await runReports(knex, new Date('2026-11-21T17:15:00Z'), opts), 1, 'the next run makes the day again');
  t.equal(await reportCalls(knex, tenant, 'day', '2026-11-21'), 3, 'with the late calls');
  const csv = fs.readFileSync(path.join(opts.reportsDir, `tenant-${tenant}`, 'day-2026-11-21.csv'), 'utf8');
  t.match(csv, /summary,all,3,/, 'the CSV too');
  t.same(await marks(knex), [], 'the mark is cleared');
  t.equal(await runReports(knex, new Date('2026-11-21T17:30:00Z'), opts), 0, 'and nothing is made twice');

  // A late CDR of a period with no report yet: nothing to remake, the mark goes; the due logic makes it.
  await batch(knex, [at(tenant, '2026-11-20T03:00:00Z')], replayedAt);
  t.same(await marks(knex), [`${tenant}:day:2026-11-20:1`]);
  await runReports(knex, new Date('2026-11-21T17:45:00Z'), opts);
  t.same(await marks(knex), []);
  t.equal(await reportCalls(knex, tenant, 'day', '2026-11-20'), null, 'no report made for a day before the first one');

  // Marks of a tenant deleted from tenants are purged.
  const gone = await addTenant(knex, { name: 'gone' });
  await batch(knex, [at(gone, '2026-11-21T03:00:00Z')], replayedAt);
  t.same(await marks(knex), [`${gone}:day:2026-11-21:1`]);
  await knex('tenants').where({ id: gone }).delete();
  await runReports(knex, new Date('2026-11-21T18:00:00Z'), opts);
  t.same(await marks(knex), [], 'purged');
});

// The zone is the snapshot's (zones.ts), for the report made when due AND for the one made again
// for late CDRs: the tenants row's own column (here the default, Asia/Shanghai) would put the
// New York day of 20 November on Shanghai's, where neither call is, and overwrite a right report.
eachDb(t, 'a report made again for late CDRs counts in the snapshot zone, as when it was made', async (t, { knex }) => {
  const tenant = await addTenant(knex, { name: 'zone typo' });
  const zoneOf = (): string => 'America/New_York';
  const inForce = (): ReadonlyMap<number, Tenant> => new Map([[tenant, { id: tenant, timezone: 'America/New_York' } as unknown as Tenant]]);
  const opts = { reportsDir: reportsDir(t), maxCallS: 14_400, log, zoneOf };
  const inTime = at(tenant, '2026-11-21T03:00:00Z'); // 22:00 on 20 November in New York
  await knex.transaction((trx) => insertAndCharge(trx, [inTime], inForce, undefined, new Date('2026-11-21T03:01:00Z')));
  await runReports(knex, new Date('2026-11-21T05:10:00Z'), opts);
  t.equal(await reportCalls(knex, tenant, 'day', '2026-11-20'), 1, 'New York day of 20 November: one call');
  const late = at(tenant, '2026-11-21T04:00:00Z'); // 23:00 on 20 November in New York
  await knex.transaction((trx) => insertAndCharge(trx, [late], inForce, undefined, new Date('2026-11-21T06:00:00Z')));
  t.same(await marks(knex), [`${tenant}:day:2026-11-20:1`], 'marked in the snapshot zone');
  t.equal(await runReports(knex, new Date('2026-11-21T06:10:00Z'), opts), 1, 'made again');
  t.equal(await reportCalls(knex, tenant, 'day', '2026-11-20'), 2, 'both calls, in the New York day');
});
