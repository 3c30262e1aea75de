// Reports from a CDR history with known answers, on SQLite and MariaDB: a Shanghai day and month
// cut at local midnight, a New York DST day; re-running replaces; the CSV opens in Excel with its
// Chinese text (UTF-8 with BOM); the job makes each report once after midnight, and again once
// every call of the period must have ended.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Knex } from 'knex';
import t, { type Test } from 'tap';
import { parseCsv, toCsv, csvCell } from '../../src/billing/csv';
import { buildReport, generateReport, percent, REPORT_TENANTS_PAGE, runReports, tenantPages } from '../../src/billing/reports';
import { fromDbTimestamp } from '../../src/db/connect';
import { periodByStart } from '../../src/domain/periods';
import { turnsDuring } from '../helpers/wait';
import { createLogger } from '../../src/log';
import { dbTargets } from '../helpers/db';
import { addCdrs, addTenant, eachDb, type CdrSpec } from './helpers';

const log = createLogger('silent');
const TENANT_NAME = '北京某某科技有限公司';

function reportsDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-reports-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Local 2026-11-20 hh:mm:ss in Shanghai as a UTC instant. */
const sh = (hh: number, mm = 0, ss = 0): Date => new Date(Date.UTC(2026, 10, 19, 16 + hh, mm, ss));

async function history(knex: Knex): Promise<{ tenant: number; other: number }> {
  const tenant = await addTenant(knex, { name: TENANT_NAME });
  const other = await addTenant(knex, { name: '别家' });
  await knex('access_numbers').insert([
    { number: '4001012345', tenant_id: tenant, kind: 'hotline', enabled: 1 },
    { number: '01088886666', tenant_id: tenant, kind: 'switchboard', enabled: 1, home_area_code: '010' },
  ]);
  const c = (started: Date, caller: string, outcome: string, extra: Partial<CdrSpec> = {}): CdrSpec => ({ tenant_id: tenant, started_at: started, caller, outcome, access_number: '4001012345', ...extra });
  await addCdrs(knex, [
    c(sh(0, 5), '13912345678', 'answered', { billsec: 65, cost: '0.3000', answered_by: '13900000001' }),
    c(sh(9, 30), '01062345678', 'answered', { billsec: 120, cost: '0.2000', answered_by: '13900000002', access_number: '01088886666' }),
    c(sh(9, 45), '02112345678', 'busy'),
    c(sh(10), '+12025550123', 'no_answer'),
    c(sh(23, 59, 59), '13912345678', 'answered', { billsec: 30, cost: '0.1500', answered_by: '13900000002' }),
    c(sh(12), '075512345678', 'blocked'),
    c(sh(12, 30), '075512345678', 'capped'),
    c(sh(13), 'anonymous', 'voicemail', { billsec: 20, cost: '0.0500' }),
    c(sh(14), '13912345678', 'answered', { billsec: 10, cost: '0.1000', answered_by: '13900000001', call_type: 'local' }), // rated local: kept
    // Outside the day: 23:59:59 the day before (same month), Dec 1 00:00, Oct 31.
    c(new Date('2026-11-19T15:59:59.000Z'), '13912345678', 'answered', { billsec: 60, cost: '1.0000' }),
    c(new Date('2026-11-30T16:00:00.000Z'), '13912345678', 'answered', { billsec: 60, cost: '1.0000' }),
    c(new Date('2026-10-31T15:59:59.000Z'), '13912345678', 'answered', { billsec: 60, cost: '1.0000' }),
    { tenant_id: other, started_at: sh(11), caller: '13912345678', outcome: 'answered', cost: '5.0000' },
  ]);
  return { tenant, other };
}

function section(rows: string[][], name: string): Record<string, string[]> {
  return Object.fromEntries(rows.filter((r) => r[3] === name).map((r) => [r[4], r]));
}

eachDb(t, 'a Shanghai day with known answers; stored, written as CSV; re-running replaces', async (t, { knex }) => {
  const { tenant } = await history(knex);
  const dir = reportsDir(t);
  const now = new Date('2026-11-21T00:00:00Z');
  const { report, csvPath, csv } = await generateReport(knex, tenant, 'day', '2026-11-20', { reportsDir: dir, now });
  t.same(
    { calls: report.total.calls, answered: report.total.answered, busy: report.total.busy, no_answer: report.total.no_answer, blocked: report.total.blocked, capped: report.total.capped, voicemail: report.total.voicemail, talk: report.total.talkSeconds },
    { calls: 9, answered: 4, busy: 1, no_answer: 1, blocked: 1, capped: 1, voicemail: 1, talk: 225 },
  );
  t.same(report.callTypes, { local: 2, long_distance: 4, mobile: 2, international: 1 });
  t.equal(csvPath, path.join(dir, `tenant-${tenant}`, 'day-2026-11-20.csv'));

  const bytes = fs.readFileSync(csvPath);
  t.same([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 BOM first (Excel)');
  t.ok(bytes.toString('utf8').includes(TENANT_NAME), 'Chinese text intact as UTF-8');
  t.equal(csv, bytes.toString('utf8'));
  t.match(bytes.toString('latin1'), /\r\n$/, 'CRLF line ends');
  const rows = parseCsv(bytes.toString('utf8'));
  t.same(rows[0], ['tenant_id', 'tenant', 'period', 'section', 'item', 'calls', 'answered', 'busy', 'no_answer', 'blocked', 'capped', 'voicemail', 'talk_seconds', 'avg_talk_seconds', 'share_percent', 'cost']);
  t.same(rows[1], [String(tenant), TENANT_NAME, '2026-11-20', 'summary', 'all', '9', '4', '1', '1', '1', '1', '1', '225', '56.25', '100.00', '0.8000']);
  const types = section(rows, 'call_type');
  t.same([types.local[5], types.long_distance[5], types.mobile[5], types.international[5]], ['2', '4', '2', '1']);
  t.equal(types.local[14], '22.22', 'share of all calls');
  const split = section(rows, 'local_vs_long_distance');
  t.same([split.local[14], split.long_distance[14]], ['33.33', '66.67'], 'local vs long distance');
  const prov = section(rows, 'province');
  t.same(Object.fromEntries(Object.entries(prov).map(([k, r]) => [k, r[5]])), { 江苏省: '3', 广东省: '2', 北京市: '1', 上海市: '1', US: '1', 未知: '1' });
  t.equal(prov['江苏省'][6], '3', '3 answered');
  t.equal(prov['江苏省'][15], '0.5500');
  const city = section(rows, 'city');
  t.same(Object.keys(city).sort(), ['US', '上海市', '北京市', '广东省深圳市', '未知', '江苏省常州市'].sort());
  const hours = section(rows, 'hour');
  t.equal(Object.keys(hours).length, 24, 'every hour listed');
  t.same(['00', '09', '10', '12', '13', '14', '23'].map((h) => hours[h][5]), ['1', '2', '1', '2', '1', '1', '1']);
  t.equal(hours['01'][5], '0');
  const dest = section(rows, 'destination');
  t.same([dest['13900000001'][5], dest['13900000001'][12], dest['13900000001'][15]], ['2', '75', '0.4000']);
  t.same([dest['13900000002'][5], dest['13900000002'][12], dest['13900000002'][13]], ['2', '150', '75.00']);
  const access = section(rows, 'access_number');
  t.same([access['4001012345'][5], access['01088886666'][5]], ['8', '1']);
  const outcome = section(rows, 'outcome');
  t.same([outcome.abandoned[5], outcome.answered[5], outcome.voicemail[5]], ['0', '4', '1']);

  const stored = (await knex<Record<string, unknown>>('call_reports').where({ tenant_id: tenant }).first()) ?? {};
  t.match(stored, { period_kind: 'day', period_start: '2026-11-20', timezone: 'Asia/Shanghai', calls: 9, answered: 4, voicemail: 1, local_calls: 2, long_distance_calls: 4 });
  t.equal(Number(stored.talk_seconds), 225);
  t.equal(Number(stored.avg_talk_seconds), 56.25);
  t.equal(Number(stored.local_share_percent), 33.33);
  t.equal(Number(stored.cost), 0.8);
  const rowCount = async (): Promise<number> => Number(((await knex('call_report_rows').count('* as n').first()) as { n: unknown }).n);
  const before = await rowCount();
  t.ok(before > 20);

  // Re-run: replaced, not doubled; a late CDR is included.
  await generateReport(knex, tenant, 'day', '2026-11-20', { reportsDir: dir, now });
  t.equal(await rowCount(), before, 're-run: same rows');
  t.equal((await knex('call_reports')).length, 1);
  await addCdrs(knex, [{ tenant_id: tenant, started_at: sh(15), caller: '13912345678', outcome: 'answered', billsec: 5, cost: '0.1500', answered_by: '13900000001' }]);
  const again = await generateReport(knex, tenant, 'day', '2026-11-20', { reportsDir: dir, now });
  t.equal(again.report.total.calls, 10, 'late CDR included');
  t.equal((await knex('call_reports')).length, 1, 'still one report for the day');
  t.equal(Number((await knex<{ calls: unknown }>('call_reports').first('calls'))?.calls), 10);
  t.same(fs.readdirSync(path.dirname(csvPath)), ['day-2026-11-20.csv'], 'the file replaced, no temp files left');
});

eachDb(t, 'a report reads its CDRs in pages in (started_at, id) order: rows sharing a started_at across pages each counted once, the event loop turning between pages', async (t, { knex, target }) => {
  const tenant = await addTenant(knex, { name: TENANT_NAME });
  const other = await addTenant(knex, { name: '别家' });
  const c = (at: Date, outcome: string): CdrSpec => ({ tenant_id: tenant, started_at: at, caller: '13912345678', outcome });
  await addCdrs(knex, [
    ...Array.from({ length: 7 }, () => c(sh(10), 'answered')),
    { tenant_id: other, started_at: sh(10), caller: '13912345678' },
    c(sh(9), 'busy'),
    ...Array.from({ length: 3 }, () => c(sh(11), 'no_answer')),
    c(sh(10, 0, 1), 'answered'),
  ]);
  if (target === 'sqlite') {
    // A DBA's rows without milliseconds, at the very second of three the daemon wrote with them:
    // as SQLite compares text, '… 02:00:00' comes before '… 02:00:00.000'.
    const ids = (await knex('cdrs').where({ tenant_id: tenant, outcome: 'answered' }).orderBy('id').limit(3).select('id')).map((r: { id: number }) => r.id);
    await knex('cdrs').whereIn('id', ids).update({ started_at: '2026-11-20 02:00:00' });
    t.equal((await knex('cdrs').where({ started_at: '2026-11-20 02:00:00' })).length, 3, 'three rows spelled without milliseconds');
  }
  const period = periodByStart('day', '2026-11-20', 'Asia/Shanghai');
  const { result: report, turns } = await turnsDuring(() => buildReport(knex, { id: tenant, name: TENANT_NAME, zone: 'Asia/Shanghai' }, period, undefined, 2));
  t.equal(report.total.calls, 12, 'every CDR of the tenant once: 12');
  t.same([report.outcomes.answered, report.outcomes.busy, report.outcomes.no_answer], [8, 1, 3]);
  t.ok(turns >= 5, `the event loop turned between the pages of 2 (${turns} turns)`);
  const hour = (h: string): number => report.rows.find((r) => r.dimension === 'hour' && r.item === h)?.counts.calls ?? -1;
  t.same([hour('09'), hour('10'), hour('11')], [1, 8, 3]);
  const whole = await buildReport(knex, { id: tenant, name: TENANT_NAME, zone: 'Asia/Shanghai' }, period);
  t.same(whole, report, 'the same report read in one page');
});

eachDb(t, 'the month: cut at local midnight on the 1st', async (t, { knex }) => {
  const { tenant } = await history(knex);
  const dir = reportsDir(t);
  const { report, csvPath } = await generateReport(knex, tenant, 'month', '2026-11', { reportsDir: dir, now: new Date('2026-12-01T00:00:00Z') });
  t.equal(report.total.calls, 10, 'the day + Nov 19 23:59:59; not Oct 31 23:59:59, not Dec 1 00:00');
  t.equal(report.total.answered, 5);
  t.equal(path.basename(csvPath), 'month-2026-11.csv');
  const rows = parseCsv(fs.readFileSync(csvPath, 'utf8'));
  t.same(rows[1].slice(2, 6), ['2026-11', 'summary', 'all', '10']);
  t.equal(rows[1][15], '1.8000');
});

eachDb(t, 'a New York DST day: 25 hours, both 01:00 hours in one row', async (t, { knex }) => {
  const tenant = await addTenant(knex, { name: 'Acme 纽约', timezone: 'America/New_York' });
  await addCdrs(knex, [
    { tenant_id: tenant, started_at: '2026-11-01T04:00:00Z', caller: '+12025550123' }, // 00:00 EDT
    { tenant_id: tenant, started_at: '2026-11-01T05:30:00Z', caller: '+12025550123' }, // 01:30 EDT
    { tenant_id: tenant, started_at: '2026-11-01T06:30:00Z', caller: '+12025550123' }, // 01:30 EST
    { tenant_id: tenant, started_at: '2026-11-02T04:59:59Z', caller: '+12025550123' }, // 23:59:59 EST
    { tenant_id: tenant, started_at: '2026-11-02T05:00:00Z', caller: '+12025550123' }, // Nov 2
    { tenant_id: tenant, started_at: '2026-11-01T03:59:59Z', caller: '+12025550123' }, // Oct 31
  ]);
  const { report } = await generateReport(knex, tenant, 'day', '2026-11-01', { reportsDir: reportsDir(t), now: new Date('2026-11-03T00:00:00Z') });
  t.equal(report.total.calls, 4);
  const hour = (h: string): number => report.rows.find((r) => r.dimension === 'hour' && r.item === h)?.counts.calls ?? -1;
  t.same([hour('00'), hour('01'), hour('23')], [1, 2, 1]);
  t.equal(report.callTypes.international, 4);
});

eachDb(t, 'the reports job: after midnight in each zone, once, then once more when every call has ended', async (t, { knex }) => {
  const { tenant, other } = await history(knex);
  const ny = await addTenant(knex, { name: 'NY', timezone: 'America/New_York' });
  await addTenant(knex, { name: 'closed', status: 'closed' });
  const dir = reportsDir(t);
  const opts = { reportsDir: dir, maxCallS: 14_400, log };
  const made = async (iso: string): Promise<number> => runReports(knex, new Date(iso), opts);
  const list = async (): Promise<string[]> => (await knex<Record<string, unknown>>('call_reports').orderBy(['tenant_id', 'period_kind', 'period_start']).select('tenant_id', 'period_kind', 'period_start')).map((r) => `${Number(r.tenant_id)}:${String(r.period_kind)}:${String(r.period_start)}`);
  // 00:04 Nov 21 in Shanghai: too early for Nov 20 (calls of 23:59 are still being written).
  t.equal(await made('2026-11-20T16:04:00Z'), 6, 'first run: the last complete day and month of each of 3 tenants');
  t.ok((await list()).includes(`${tenant}:day:2026-11-19`));
  t.equal(await made('2026-11-20T16:06:00Z'), 2, 'Shanghai tenants: Nov 20 now');
  t.ok((await list()).includes(`${tenant}:day:2026-11-20`));
  t.equal(await made('2026-11-20T16:21:00Z'), 0, 'nothing new');
  t.equal(await made('2026-11-20T20:06:00Z'), 2, 'once more when every call that started on Nov 20 has ended (4 h)');
  t.equal(await made('2026-11-20T20:21:00Z'), 0, 'and only once');
  t.equal(await made('2026-11-21T05:06:00Z'), 1, 'New York: its Nov 20 after its midnight');
  t.ok((await list()).includes(`${ny}:day:2026-11-20`));
  t.notOk((await list()).some((x) => x.startsWith(`${other + 2}:`)), 'closed tenants get no reports');
  t.ok(fs.existsSync(path.join(dir, `tenant-${tenant}`, 'day-2026-11-20.csv')));
  t.ok(fs.existsSync(path.join(dir, `tenant-${tenant}`, 'month-2026-10.csv')));
});

eachDb(t, 'the reports job looks up the stored reports a page of tenants at a time, the event loop turning between pages: what is due is found in every page', async (t, { knex, target }) => {
  const rows = Array.from({ length: 2 * REPORT_TENANTS_PAGE + 5 }, (_, i) => ({ name: `租户${i}`, status: 'active', timezone: 'Asia/Shanghai' }));
  for (let i = 0; i < rows.length; i += 200) await knex('tenants').insert(rows.slice(i, i + 200));
  const ids: number[] = (await knex('tenants').orderBy('id').select('id')).map((r: { id: number }) => Number(r.id));
  // Nov 21 04:30 in Shanghai: Nov 20 and October are the last complete periods, and every call of
  // Nov 20 has ended (its reports made before 20:05 UTC are made again).
  const now = new Date('2026-11-20T20:30:00Z');
  const [remade, behind, none] = [ids[3], ids[REPORT_TENANTS_PAGE + 50], ids[ids.length - 1]];
  const report = (tenant: number, kind: string, start: string, generatedAt = '2026-11-20 20:10:00.000'): Record<string, unknown> => ({ tenant_id: tenant, period_kind: kind, period_start: start, timezone: 'Asia/Shanghai', generated_at: generatedAt });
  const stored: Array<Record<string, unknown>> = [];
  for (const id of ids) {
    if (id === none) continue;
    stored.push(report(id, 'month', '2026-10-01'));
    if (id === behind) stored.push(report(id, 'day', '2026-11-17'));
    else stored.push(report(id, 'day', '2026-11-20', id === remade ? '2026-11-20 19:00:00.000' : undefined));
  }
  for (let i = 0; i < stored.length; i += 200) await knex('call_reports').insert(stored.slice(i, i + 200));
  const made = await runReports(knex, now, { reportsDir: reportsDir(t), maxCallS: 14_400, log });
  t.equal(made, 6, 'one made again, three caught up, two for a tenant without any');
  const list = async (tenant: number): Promise<string[]> => (await knex<Record<string, unknown>>('call_reports').where({ tenant_id: tenant }).orderBy(['period_kind', 'period_start']).select('period_kind', 'period_start')).map((r) => `${String(r.period_kind)}:${String(r.period_start)}`);
  t.same(await list(behind), ['day:2026-11-17', 'day:2026-11-18', 'day:2026-11-19', 'day:2026-11-20', 'month:2026-10-01'], 'the middle page\'s tenant: the days missed since its latest report');
  t.same(await list(none), ['day:2026-11-20', 'month:2026-10-01'], 'the last page\'s tenant without any report: the last complete day and month');
  const again: { generated_at: unknown } | undefined = await knex('call_reports').where({ tenant_id: remade, period_kind: 'day', period_start: '2026-11-20' }).first('generated_at');
  t.not(fromDbTimestamp(again?.generated_at as string | Date | undefined)?.getTime(), Date.parse('2026-11-20T19:00:00Z'), 'the first page\'s report made before every call had ended: made again');
  // A run with nothing due is the reads alone: the tenants, then two passes over the pages.
  const { result: none2, turns } = await turnsDuring(() => runReports(knex, now, { reportsDir: reportsDir(t), maxCallS: 14_400, log }));
  t.equal(none2, 0, 'nothing is due a second time');
  // Three pages of tenants, read three times (tenants, latest reports, due reports): a turn
  // between each two. On SQLite the statements themselves take none; MariaDB's network I/O turns
  // the loop anyway, so there the count cannot tell.
  const between = 3 * (Math.ceil(ids.length / REPORT_TENANTS_PAGE) - 1);
  if (target === 'sqlite') t.ok(turns >= between, `the event loop turned between the pages: ${turns} turns, at least ${between}`);
});

void t.test('tenantPages: ascending pages of at most REPORT_TENANTS_PAGE ids', async (t) => {
  t.same(tenantPages([]), []);
  t.same(tenantPages([7]), [[7]]);
  const ids = Array.from({ length: REPORT_TENANTS_PAGE + 1 }, (_, i) => 1000 - i * 3);
  const pages = tenantPages(ids);
  t.same(pages.map((p) => p.length), [REPORT_TENANTS_PAGE, 1], 'the last page holds the rest');
  t.same(pages.flat(), [...ids].sort((a, b) => a - b), 'every id once, in ascending order');
});

void t.test('CSV cells: quoting, formulas, percent rounding', async (t) => {
  t.equal(csvCell('a,b'), '"a,b"');
  t.equal(csvCell('say "hi"'), '"say ""hi"""');
  t.equal(csvCell('line\nbreak'), '"line\nbreak"');
  t.equal(csvCell('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`, 'a formula is neutralised');
  t.equal(csvCell('+8613800138000'), '+8613800138000', 'a number with + stays a number');
  t.equal(csvCell('-cmd'), "'-cmd");
  t.equal(csvCell(null), '');
  t.equal(csvCell(12), '12');
  const text = toCsv([['名称', 'x,y'], ['北京', '"q"']]);
  t.same(parseCsv(text), [['名称', 'x,y'], ['北京', '"q"']]);
  t.same([percent(1, 3), percent(2, 3), percent(1, 8), percent(0, 0), percent(5, 5)], ['33.33', '66.67', '12.50', '0.00', '100.00']);
});

eachDb(t, 'the reports job after the database was away for a whole day: the missed day is made too', async (t, { knex }) => {
  const tenant = await addTenant(knex, { name: TENANT_NAME });
  // One call on each of Nov 18, 19 and 20 (Shanghai).
  await addCdrs(knex, [
    { tenant_id: tenant, started_at: '2026-11-18T02:00:00Z', cost: '0.1000' },
    { tenant_id: tenant, started_at: '2026-11-19T02:00:00Z', cost: '0.2000' },
    { tenant_id: tenant, started_at: '2026-11-20T02:00:00Z', cost: '0.3000' },
  ]);
  const opts = { reportsDir: reportsDir(t), maxCallS: 14_400, log };
  const days = async (): Promise<string[]> => (await knex<Record<string, unknown>>('call_reports').where({ tenant_id: tenant, period_kind: 'day' }).orderBy('period_start').select('period_start')).map((r) => String(r.period_start));
  // Nov 19 00:06 in Shanghai: Nov 18 is reported. Then the database is away from Nov 19 23:50 until Nov 21 00:30.
  await runReports(knex, new Date('2026-11-18T16:06:00Z'), opts);
  t.same(await days(), ['2026-11-18']);
  await runReports(knex, new Date('2026-11-20T16:30:00Z'), opts);
  t.same(await days(), ['2026-11-18', '2026-11-19', '2026-11-20'], 'Nov 19, whose midnight passed while the database was away, is not skipped');
  const nov19: { calls: unknown; cost: unknown } | undefined = await knex('call_reports').where({ tenant_id: tenant, period_kind: 'day', period_start: '2026-11-19' }).first('calls', 'cost');
  t.same([Number(nov19?.calls), Number(nov19?.cost)], [1, 0.2]);
});

/** The call types of Nov 20's report of a new tenant with these access numbers and answered calls (caller → access number as dialled, from 09:00). */
async function callTypesOf(t: Test, knex: Knex, numbers: Array<Record<string, unknown>>, calls: Array<[caller: string, accessNumber: string]>): Promise<Record<string, number>> {
  const tenant = await addTenant(knex, { name: TENANT_NAME });
  await knex('access_numbers').insert(numbers.map((n) => ({ tenant_id: tenant, enabled: 1, ...n })));
  await addCdrs(knex, calls.map(([caller, accessNumber], i) => ({ tenant_id: tenant, started_at: sh(9 + i), caller, outcome: 'answered', access_number: accessNumber })));
  const { report } = await generateReport(knex, tenant, 'day', '2026-11-20', { reportsDir: reportsDir(t), now: new Date('2026-11-21T00:00:00Z') });
  return report.callTypes;
}

// A CDR without a stored call type is typed by its access number's home area, found whatever the
// spelling on either side: the table's as a DBA typed it, the CDR's as the carrier delivered it.
eachDb(t, 'call types: the home area is found across spellings of the access number', async (t, { knex }) => {
  const types = await callTypesOf(t, knex, [{ number: '+86 10-8888-6666', kind: 'switchboard', home_area_code: '010' }], [
    ['01062345678', '+861088886666'],
    ['01062345679', '1088886666'],
    ['02112345678', '01088886666'],
  ]);
  t.same(types, { local: 2, long_distance: 1, mobile: 0, international: 0 }, 'two Beijing callers local, Shanghai long distance');
});

// A switchboard number with no home_area_code is local to its own area code, as the snapshot reads
// it for rating (geo.ts homeAreaCodeOf): before, the report typed its same-city callers long distance.
eachDb(t, 'call types: a switchboard number without home_area_code is local to its own area code', async (t, { knex }) => {
  const types = await callTypesOf(t, knex, [
    { number: '020-8888-6666', kind: 'switchboard', home_area_code: null },
    { number: '4001000009', kind: 'hotline', home_area_code: null },
  ], [
    ['02062345678', '02088886666'],
    ['01062345679', '02088886666'],
    ['02062345670', '4001000009'],
  ]);
  t.same(types, { local: 1, long_distance: 2, mobile: 0, international: 0 }, 'the Guangzhou caller of the Guangzhou switchboard local; the Beijing one and the 400 number\'s caller long distance');
});

void t.test('SQLite: a report whose read another connection\'s commit overtook is run again (SQLITE_BUSY_SNAPSHOT), not lost', async (t) => {
  const db = await dbTargets().find((d) => d.name === 'sqlite')!.create();
  t.teardown(() => db.destroy());
  const { knex } = db;
  const { tenant } = await history(knex);
  // Another connection to the file (the CDR writer's thread) commits right after the report's
  // transaction has read call_reports and before it writes: in WAL mode that write is refused at
  // once, without busy_timeout's wait. Synchronously, before the transaction goes on.
  const other = new Database(db.url.slice('sqlite:'.length));
  t.teardown(() => other.close());
  let reads = 0;
  knex.on('query-response', (_response: unknown, query: { sql?: string }) => {
    if (/from [`"]call_reports[`"]/i.test(query.sql ?? '') && reads++ === 0) other.exec("UPDATE tenants SET name = name || '' WHERE id = " + String(tenant));
  });
  const { report } = await generateReport(knex, tenant, 'day', '2026-11-20', { reportsDir: reportsDir(t), now: new Date('2026-11-21T00:00:00Z') });
  t.equal(reads, 2, 'the first try was refused and the transaction ran again');
  const stored: Array<{ calls: number }> = await knex('call_reports').where({ tenant_id: tenant, period_kind: 'day' }).select('calls');
  t.same(stored.map((r) => Number(r.calls)), [report.total.calls], 'stored once, whole');
});
