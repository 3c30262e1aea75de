/**
 * 呼叫分析报告: per tenant and day or month (in the tenant's timezone), from the CDRs that started
 * in the period: calls, answered, busy, no answer, blocked, capped, voicemail and the other
 * outcomes; total and average talk time (billsec of answered calls); by caller province and city;
 * by hour of day; by destination number (who answered) and access number; by call type, with the
 * local vs long-distance share; cost. Stored in call_reports / call_report_rows (a re-run replaces
 * the period, never adds to it) and written as CSV (UTF-8 with BOM) under REPORTS_DIR as
 * tenant-<id>/day-YYYY-MM-DD.csv and tenant-<id>/month-YYYY-MM.csv.
 *
 * Aggregation is pure (ReportBuilder, fed CDRs one by one, so a month of a large tenant streams
 * through in pages); loading, storing and writing are around it.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { fromDbTimestamp, toDbTimestamp } from '../db/connect';
import { withLockRetry } from '../db/lock-retry';
import { startedAtKey, startedAtPage, type StartedAtKey } from '../db/started-at-pages';
import { writesClear } from '../db/write-gate';
import { dialledNationalNumber, nationalNumber } from '../domain/access-number';
import { callType as classifyCall, geocode, homeAreaCodeOf, isGeoDataLoaded, loadGeoData, type CallType } from '../domain/geo';
import { clampMoney, formatMoney, money, parseMoney, type Money } from '../domain/money';
import { lastCompletePeriod, LocalHours, periodByStart, periodLabel, previousPeriod, tenantZone, type Period, type PeriodKind } from '../domain/periods';
import { OUTCOMES, type Outcome } from '../metrics';
import { toCsv, type Cell } from './csv';
import { clearLateMark, purgeOrphanLateMarks, readLateMarks, REPORT_SETTLE_MS, type LateMark } from './late-cdrs';
import { moneySql } from './usage';
import type { TenantZones } from '../snapshot/zones';
import { nextTurn } from '../next-turn';
import { pagesById } from '../db/id-pages';

export const CALL_TYPES: readonly CallType[] = ['local', 'long_distance', 'mobile', 'international'];
export const DIMENSIONS = ['outcome', 'call_type', 'province', 'city', 'hour', 'destination', 'access_number'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
export const UNKNOWN_REGION = '未知';

export interface Counts {
  calls: number;
  answered: number;
  busy: number;
  no_answer: number;
  blocked: number;
  capped: number;
  voicemail: number;
  talkSeconds: number;
  cost: Money;
}

export interface ReportCdr {
  outcome: string;
  startedAt: Date;
  billsec: number;
  cost: Money;
  answeredBy: string | null;
  accessNumber: string | null;
  callType: CallType | null;
  province: string;
  city: string;
}

export interface ReportData {
  tenantId: number;
  tenantName: string;
  period: Period;
  total: Counts;
  outcomes: Record<Outcome, number>;
  callTypes: Record<CallType, number>;
  /** Breakdown rows, ordered for display. */
  rows: Array<{ dimension: Dimension; item: string; counts: Counts }>;
}

function zero(): Counts {
  return { calls: 0, answered: 0, busy: 0, no_answer: 0, blocked: 0, capped: 0, voicemail: 0, talkSeconds: 0, cost: money(0) };
}

function add(c: Counts, cdr: ReportCdr): void {
  c.calls++;
  if (cdr.outcome === 'answered') {
    c.answered++;
    c.talkSeconds += Math.max(0, cdr.billsec);
  } else if (cdr.outcome === 'busy') c.busy++;
  else if (cdr.outcome === 'no_answer') c.no_answer++;
  else if (cdr.outcome === 'blocked') c.blocked++;
  else if (cdr.outcome === 'capped') c.capped++;
  else if (cdr.outcome === 'voicemail') c.voicemail++;
  // A sum beyond DECIMAL(14,4) (call_reports.cost) is cut there, not refused by the database.
  c.cost = clampMoney(c.cost + cdr.cost).value;
}

/** Streams CDRs into a report. */
export class ReportBuilder {
  private readonly total = zero();
  private readonly by = new Map<Dimension, Map<string, Counts>>(DIMENSIONS.map((d) => [d, new Map<string, Counts>()]));
  private readonly hours: LocalHours;

  constructor(
    private readonly tenantId: number,
    private readonly tenantName: string,
    private readonly period: Period,
  ) {
    this.hours = new LocalHours(period.zone);
  }

  add(cdr: ReportCdr): void {
    add(this.total, cdr);
    const hour = String(this.hours.of(cdr.startedAt)).padStart(2, '0');
    const items: Array<[Dimension, string | null]> = [
      ['outcome', cdr.outcome],
      ['call_type', cdr.callType],
      ['province', cdr.province],
      ['city', cdr.city],
      ['hour', hour],
      ['destination', cdr.answeredBy],
      ['access_number', cdr.accessNumber],
    ];
    for (const [dimension, raw] of items) {
      if (raw === null || raw === '') continue;
      const item = raw.slice(0, 64);
      const map = this.by.get(dimension)!;
      let c = map.get(item);
      if (!c) map.set(item, (c = zero()));
      add(c, cdr);
    }
  }

  finish(): ReportData {
    const get = (d: Dimension, item: string): Counts => this.by.get(d)!.get(item) ?? zero();
    const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, get('outcome', o).calls])) as Record<Outcome, number>;
    const callTypes = Object.fromEntries(CALL_TYPES.map((t) => [t, get('call_type', t).calls])) as Record<CallType, number>;
    const byCalls = (d: Dimension): Array<[string, Counts]> =>
      [...this.by.get(d)!.entries()].sort((a, b) => b[1].calls - a[1].calls || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const rows: ReportData['rows'] = [];
    // Fixed lists first, every item present (zeros included) so that columns line up in Excel.
    for (const o of OUTCOMES) rows.push({ dimension: 'outcome', item: o, counts: get('outcome', o) });
    for (const t of CALL_TYPES) rows.push({ dimension: 'call_type', item: t, counts: get('call_type', t) });
    for (const d of ['province', 'city'] as const) for (const [item, counts] of byCalls(d)) rows.push({ dimension: d, item, counts });
    for (let h = 0; h < 24; h++) {
      const item = String(h).padStart(2, '0');
      rows.push({ dimension: 'hour', item, counts: get('hour', item) });
    }
    for (const d of ['destination', 'access_number'] as const) for (const [item, counts] of byCalls(d)) rows.push({ dimension: d, item, counts });
    return { tenantId: this.tenantId, tenantName: this.tenantName, period: this.period, total: { ...this.total }, outcomes, callTypes, rows };
  }
}

/** a / b as a percentage with two decimals, rounded half up; 0 when b is 0. */
export function percent(a: number, b: number): string {
  if (b <= 0) return '0.00';
  const bp = Math.floor((a * 10000 * 2 + b) / (2 * b)); // round(a/b·10000)
  return `${Math.floor(bp / 100)}.${String(bp % 100).padStart(2, '0')}`;
}

/** Average talk time in seconds, two decimals, rounded half up. */
export function averageTalk(c: Pick<Counts, 'talkSeconds' | 'answered'>): string {
  return percent(c.talkSeconds, c.answered * 100);
}

/** Local share of the calls rated local or long distance (the 本地/长途 split), in percent. */
export function localShare(r: Pick<ReportData, 'callTypes'>): string {
  return percent(r.callTypes.local, r.callTypes.local + r.callTypes.long_distance);
}

export const CSV_HEADER = [
  'tenant_id', 'tenant', 'period', 'section', 'item', 'calls', 'answered', 'busy', 'no_answer', 'blocked', 'capped',
  'voicemail', 'talk_seconds', 'avg_talk_seconds', 'share_percent', 'cost',
] as const;

/** The report as CSV text (with BOM): one row per summary, outcome, call type, region, hour, number. */
export function reportCsv(r: ReportData): string {
  const label = periodLabel(r.period);
  const line = (section: string, item: string, c: Counts, share: string): Cell[] => [
    r.tenantId, r.tenantName, label, section, item, c.calls, c.answered, c.busy, c.no_answer, c.blocked, c.capped,
    c.voicemail, c.talkSeconds, averageTalk(c), share, formatMoney(c.cost),
  ];
  const out: Cell[][] = [[...CSV_HEADER]];
  out.push(line('summary', 'all', r.total, r.total.calls > 0 ? '100.00' : '0.00'));
  const ld = r.callTypes.local + r.callTypes.long_distance;
  for (const row of r.rows) out.push(line(row.dimension, row.item, row.counts, percent(row.counts.calls, r.total.calls)));
  // 本地 vs 长途: shares of the fixed-line calls only.
  const lines = new Map(r.rows.filter((x) => x.dimension === 'call_type').map((x) => [x.item, x.counts]));
  out.push(line('local_vs_long_distance', 'local', lines.get('local') ?? zero(), percent(r.callTypes.local, ld)));
  out.push(line('local_vs_long_distance', 'long_distance', lines.get('long_distance') ?? zero(), percent(r.callTypes.long_distance, ld)));
  return toCsv(out);
}

// ---------------------------------------------------------------------------------------------
// Database and files

export interface ReportTenant {
  id: number;
  name: string;
  zone: string;
}

/** `zoneOf`: the tenants' zones in the snapshot (zones.ts); the job and `npm run report` pass it. */
export async function loadReportTenant(db: Knex, tenantId: number, zoneOf?: TenantZones): Promise<ReportTenant | null> {
  const row: { id: number; name: string | null; timezone: string | null } | undefined = await db('tenants').where({ id: tenantId }).first('id', 'name', 'timezone');
  return row ? { id: Number(row.id), name: row.name ?? '', zone: zoneOf ? zoneOf(Number(row.id)) : tenantZone(row.timezone) } : null;
}

/**
 * CDRs a report reads at a time. A page is read, turned into objects and added to the report in
 * one go, and through knex a page on SQLite (better-sqlite3, synchronous) resolves without the
 * event loop turning: the report turns it between pages (buildReport). A month of 180,000 CDRs
 * of one tenant had held the loop 2.5 s at once on SQLite and up to 81 ms at a time on MariaDB;
 * in pages of 500 with turns between them, at most 22 and 18 ms (bench/PROFILE.md, release 30).
 */
export const REPORT_PAGE_ROWS = 500;

/**
 * Reads the period's CDRs into a builder, page by page in (started_at, id) order
 * (db/started-at-pages.ts), with a turn of the event loop between pages: the calls' events and
 * statements go on while a month of a large tenant is read. `pageRows`: tests.
 */
export async function buildReport(db: Knex, tenant: ReportTenant, period: Period, signal?: AbortSignal, pageRows = REPORT_PAGE_ROWS): Promise<ReportData> {
  if (!isGeoDataLoaded()) await loadGeoData().catch(() => undefined);
  // Keyed by national number (access-number.ts): the table may spell a number +86 400-101-2345
  // and a CDR holds it as dialled (+864001012345, 2088886666 for 020 8888 6666).
  const homeAreas = new Map<string, string | null>();
  const numbers: Array<{ number: string; kind: string | null; home_area_code: string | null }> = await db('access_numbers').where({ tenant_id: tenant.id }).select('number', 'kind', 'home_area_code');
  for (const r of numbers) {
    const key = nationalNumber(String(r.number));
    if (key !== null) homeAreas.set(key, homeAreaCodeOf(r.home_area_code === null ? null : String(r.home_area_code), String(r.kind ?? ''), key));
  }
  const geoCache = new Map<string, { province: string; city: string; geo: ReturnType<typeof geocode> | null }>();
  const where = (caller: string, region: string | null): { province: string; city: string; geo: ReturnType<typeof geocode> | null } => {
    const key = `${caller}|${region ?? ''}`;
    let hit = geoCache.get(key);
    if (hit) return hit;
    const geo = isGeoDataLoaded() ? geocode(caller) : null;
    if (geo?.province) hit = { province: geo.province, city: `${geo.province}${geo.city ?? ''}`, geo };
    else if (geo?.country && geo.country !== 'CN') hit = { province: geo.country, city: geo.country, geo };
    else hit = { province: region?.trim() || UNKNOWN_REGION, city: region?.trim() || UNKNOWN_REGION, geo };
    if (geoCache.size < 100_000) geoCache.set(key, hit);
    return hit;
  };
  const builder = new ReportBuilder(tenant.id, tenant.name, period);
  let after: StartedAtKey | null = null;
  for (;;) {
    if (signal?.aborted) throw new Error('report aborted: the daemon is stopping');
    const page: Array<Record<string, unknown>> = await db('cdrs')
      .where({ tenant_id: tenant.id })
      .modify((q) => void startedAtPage(q, { from: toDbTimestamp(period.from), to: toDbTimestamp(period.to), after }))
      .limit(pageRows)
      .select('id', 'caller', 'caller_region', 'access_number', 'started_at', 'billsec', 'outcome', 'answered_by', 'cost', 'call_type');
    for (const r of page) {
      const caller = typeof r.caller === 'string' ? r.caller : '';
      const place = where(caller, (r.caller_region as string | null) ?? null);
      const stored = typeof r.call_type === 'string' && (CALL_TYPES as readonly string[]).includes(r.call_type) ? (r.call_type as CallType) : null;
      const access = (r.access_number as string | null) ?? null;
      builder.add({
        outcome: String(r.outcome),
        startedAt: fromDbTimestamp(r.started_at as string)!,
        billsec: Number(r.billsec ?? 0),
        cost: parseMoney(r.cost ?? 0),
        answeredBy: (r.answered_by as string | null) ?? null,
        accessNumber: access,
        callType: stored ?? (place.geo ? classifyCall(place.geo, homeAreas.get(dialledNationalNumber(access ?? '') ?? '') ?? null) : null),
        province: place.province,
        city: place.city,
      });
    }
    if (page.length < pageRows) break;
    after = startedAtKey(page[page.length - 1] as { started_at: unknown; id: unknown });
    await nextTurn();
  }
  return builder.finish();
}

/** Replaces the period's report in the tables (one transaction). Returns rows written. */
export async function storeReport(db: Knex, r: ReportData, csvPath: string | null, now: Date): Promise<number> {
  const summary = {
    tenant_id: r.tenantId,
    period_kind: r.period.kind,
    period_start: r.period.start,
    timezone: r.period.zone,
    calls: r.total.calls,
    answered: r.total.answered,
    busy: r.total.busy,
    no_answer: r.total.no_answer,
    blocked: r.total.blocked,
    capped: r.total.capped,
    voicemail: r.total.voicemail,
    pin_failed: r.outcomes.pin_failed,
    announced: r.outcomes.announced,
    abandoned: r.outcomes.abandoned,
    failed: r.outcomes.failed,
    talk_seconds: r.total.talkSeconds,
    avg_talk_seconds: averageTalk(r.total),
    local_calls: r.callTypes.local,
    long_distance_calls: r.callTypes.long_distance,
    mobile_calls: r.callTypes.mobile,
    international_calls: r.callTypes.international,
    local_share_percent: localShare(r),
    generated_at: toDbTimestamp(now),
    csv_path: csvPath,
  };
  // It reads before it writes: on SQLite a CDR batch the writer's thread committed in between, or
  // is committing, refuses its write at once (SQLITE_BUSY_SNAPSHOT or SQLITE_BUSY, lock-retry.ts),
  // and it is run again, each time after the batches out (write-gate.ts; a replay sends them back
  // to back).
  return withLockRetry(async () => {
    await writesClear(db);
    return storeReportOnce(db, r, summary);
  }, { sqliteBusy: true });
}

/** The period's report written over any earlier one, in one transaction. */
async function storeReportOnce(db: Knex, r: ReportData, summary: Record<string, unknown>): Promise<number> {
  return db.transaction(async (trx) => {
    const existing: { id: number } | undefined = await trx('call_reports').where({ tenant_id: r.tenantId, period_kind: r.period.kind, period_start: r.period.start }).first('id');
    let id: number;
    if (existing) {
      id = Number(existing.id);
      await trx('call_report_rows').where({ report_id: id }).delete();
      await trx('call_reports').where({ id }).update({ ...summary, cost: moneySql(trx, r.total.cost) });
    } else {
      const [inserted]: number[] = await trx('call_reports').insert({ ...summary, cost: moneySql(trx, r.total.cost) });
      id = Number(inserted);
    }
    const rows = r.rows
      .filter((x) => x.counts.calls > 0)
      .map((x) => ({
        report_id: id,
        dimension: x.dimension,
        item: x.item,
        calls: x.counts.calls,
        answered: x.counts.answered,
        busy: x.counts.busy,
        no_answer: x.counts.no_answer,
        blocked: x.counts.blocked,
        capped: x.counts.capped,
        voicemail: x.counts.voicemail,
        talk_seconds: x.counts.talkSeconds,
        cost: formatMoney(x.counts.cost),
      }));
    for (let i = 0; i < rows.length; i += 200) await trx('call_report_rows').insert(rows.slice(i, i + 200));
    return rows.length + 1;
  });
}

export function reportCsvPath(dir: string, r: Pick<ReportData, 'tenantId' | 'period'>): string {
  return path.join(dir, `tenant-${r.tenantId}`, `${r.period.kind}-${periodLabel(r.period)}.csv`);
}

/** Writes the CSV atomically (temp file, then rename): a reader never sees half a report. */
export async function writeReportCsv(dir: string, r: ReportData): Promise<string> {
  const file = reportCsvPath(dir, r);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, reportCsv(r), 'utf8');
  await fsp.rename(tmp, file);
  return file;
}

/** Builds, stores and writes one tenant's report for one period (the job and `npm run report`). */
export async function generateReport(
  db: Knex,
  tenantId: number,
  kind: PeriodKind,
  start: string,
  opts: { reportsDir: string; now: Date; signal?: AbortSignal; zoneOf?: TenantZones },
): Promise<{ report: ReportData; csvPath: string; csv: string }> {
  const tenant = await loadReportTenant(db, tenantId, opts.zoneOf);
  if (!tenant) throw new Error(`no tenant with id ${tenantId}`);
  const period = periodByStart(kind, start, tenant.zone);
  const report = await buildReport(db, tenant, period, opts.signal);
  const csvPath = await writeReportCsv(opts.reportsDir, report);
  await storeReport(db, report, csvPath, opts.now);
  return { report, csvPath, csv: fs.readFileSync(csvPath, 'utf8') };
}

/** At most this many periods of each kind per tenant are due in one run (the latest and the ones missed before it). */
export const REPORT_CATCH_UP = 31;

/**
 * Tenants whose stored reports one statement of the reports job looks up (by seeks of
 * call_reports' unique index), with a turn of the event loop between pages. call_reports gains a
 * row a tenant a day and nothing purges it: read whole (a GROUP BY over the table, and a
 * period_start filter that no index leads with), a year of reports of 2,000 tenants (754,000
 * rows) held the event loop 64 + 76 ms on SQLite at every run, every 15 minutes, growing with the
 * history (bench/PROFILE.md, release 31).
 */
export const REPORT_TENANTS_PAGE = 200;

/** `ids` in ascending order (whatever order they come in), in pages of at most REPORT_TENANTS_PAGE. */
export function tenantPages(ids: readonly number[]): number[][] {
  const sorted = [...ids].sort((a, b) => a - b);
  const out: number[][] = [];
  for (let i = 0; i < sorted.length; i += REPORT_TENANTS_PAGE) out.push(sorted.slice(i, i + REPORT_TENANTS_PAGE));
  return out;
}

export { REPORT_SETTLE_MS };

/** At most this many reports marked for late CDRs are remade in one run (the rest at the next). */
export const LATE_REMAKES_PER_RUN = 200;

/**
 * The reports job: for every tenant, the latest day and month that ended (in its zone) at least
 * REPORT_SETTLE_MS ago gets its report if it has none; and once more when every call that started
 * in the period must have ended (maxCallS later), for calls still running at midnight. Periods
 * between a tenant's latest report and that one (up to REPORT_CATCH_UP), missed while no run
 * could make them, are made as well. Then the reports of periods that received CDRs after their
 * report was due (report_late_cdrs, late-cdrs.ts) are made again. Returns the number of reports made.
 */
export async function runReports(db: Knex, now: Date, opts: { reportsDir: string; maxCallS: number; log: Logger; signal?: AbortSignal; zoneOf?: TenantZones }): Promise<number> {
  // Marks are read before any report is made: a report made below read the CDRs of every mark read
  // here (the mark commits with its CDRs), so it need not be made twice.
  await purgeOrphanLateMarks(db);
  const marks = await readLateMarks(db, LATE_REMAKES_PER_RUN);
  const tenants: Array<{ id: number; timezone: string | null }> = [];
  for await (const rows of pagesById(() => db('tenants').whereNot('status', 'closed').select('id', 'timezone'), { pageRows: REPORT_TENANTS_PAGE })) {
    for (const r of rows) tenants.push({ id: Number(r.id), timezone: typeof r.timezone === 'string' ? r.timezone : null });
  }
  const pages = tenantPages(tenants.map((t) => t.id));
  const madeNow = new Set<string>();
  // Each tenant's latest report of each kind: the periods after it that ended while no run could
  // make them (the database or every daemon away past a whole day) are made up for, not skipped.
  // One seek of the unique index per tenant and kind (MAX of its last column), not a scan of
  // every report ever made.
  const latest = new Map<string, string>();
  const lastOf = (kind: PeriodKind): Knex.QueryBuilder => db('call_reports as r').whereRaw('?? = ??', ['r.tenant_id', 't.id']).andWhere('r.period_kind', kind).max('r.period_start').as(`last_${kind}`);
  for (const [i, page] of pages.entries()) {
    if (i > 0) await nextTurn();
    const rows: Array<Record<string, unknown>> = await db('tenants as t').whereIn('t.id', page).select('t.id', lastOf('day'), lastOf('month'));
    for (const r of rows) {
      for (const kind of ['day', 'month'] as const) {
        const last = r[`last_${kind}`];
        if (typeof last === 'string') latest.set(`${Number(r.id)}/${kind}`, last);
      }
    }
  }
  const due: Array<{ tenantId: number; period: Period }> = [];
  // The same for every tenant of a zone: worked out once a zone (luxon), not once a tenant.
  const settled = new Date(now.getTime() - REPORT_SETTLE_MS);
  const lastPeriods = new Map<string, Period>();
  const lastComplete = (kind: PeriodKind, zone: string): Period => {
    const key = `${kind} ${zone}`;
    let period = lastPeriods.get(key);
    if (period === undefined) lastPeriods.set(key, (period = lastCompletePeriod(kind, settled, zone)));
    return period;
  };
  for (const t of tenants) {
    const zone = opts.zoneOf ? opts.zoneOf(Number(t.id)) : tenantZone(t.timezone);
    for (const kind of ['day', 'month'] as const) {
      const last = lastComplete(kind, zone);
      due.push({ tenantId: Number(t.id), period: last });
      // A tenant without any report yet starts from the last complete period, as it always did.
      const reported = latest.get(`${Number(t.id)}/${kind}`);
      // Nothing missed when its latest report is of the last complete period (most runs, most tenants).
      if (reported === undefined || reported >= last.start) continue;
      let p = previousPeriod(last);
      for (let n = 1; n < REPORT_CATCH_UP && p.start > reported; n++, p = previousPeriod(p)) due.push({ tenantId: Number(t.id), period: p });
    }
  }
  const existing = new Map<string, Date | null>();
  const starts = [...new Set(due.map((d) => d.period.start))];
  for (const [p, page] of pages.entries()) {
    if (p > 0) await nextTurn();
    for (let i = 0; i < starts.length; i += 500) {
      // Every column of the unique index constrained: a seek per tenant, kind and period.
      const rows: Array<Record<string, unknown>> = await db('call_reports').whereIn('tenant_id', page).whereIn('period_kind', ['day', 'month']).whereIn('period_start', starts.slice(i, i + 500)).select('tenant_id', 'period_kind', 'period_start', 'generated_at');
      for (const r of rows) existing.set(`${Number(r.tenant_id)}/${String(r.period_kind)}/${String(r.period_start)}`, fromDbTimestamp(r.generated_at as string | Date));
    }
  }
  let made = 0;
  let failed = 0;
  for (const d of due) {
    if (opts.signal?.aborted) break;
    const key = `${d.tenantId}/${d.period.kind}/${d.period.start}`;
    const finalAt = d.period.to.getTime() + opts.maxCallS * 1000 + REPORT_SETTLE_MS;
    const generated = existing.get(key);
    const needed = !existing.has(key) || (now.getTime() >= finalAt && (generated === null || generated === undefined || generated.getTime() < finalAt));
    if (!needed) continue;
    try {
      await generateReport(db, d.tenantId, d.period.kind, d.period.start, { reportsDir: opts.reportsDir, now, signal: opts.signal, zoneOf: opts.zoneOf });
      made++;
      madeNow.add(key);
    } catch (err) {
      // One tenant's failure (a full disk for its file …) must not hold back the others.
      failed++;
      opts.log.error({ err, tenant_id: d.tenantId, period: key }, 'report failed; tried again at the next run');
    }
  }
  const late = await remakeLateReports(db, marks, madeNow, now, opts);
  made += late.made;
  failed += late.failed;
  if (failed > 0) throw new Error(`${failed} report(s) failed (${made} made); they are tried again at the next run`);
  return made;
}

/**
 * The reports of periods marked for late CDRs: remade where one exists (and was not just made),
 * then the mark deleted, unless a batch added late CDRs to it since it was read (kept for the next
 * run). A period without a report keeps none: the due logic above makes it when it is due.
 */
async function remakeLateReports(db: Knex, marks: readonly LateMark[], madeNow: ReadonlySet<string>, now: Date, opts: { reportsDir: string; log: Logger; signal?: AbortSignal; zoneOf?: TenantZones }): Promise<{ made: number; failed: number }> {
  if (marks.length === 0) return { made: 0, failed: 0 };
  const keyOf = (tenantId: unknown, kind: unknown, start: unknown): string => `${Number(tenantId)}/${String(kind)}/${String(start)}`;
  const reported = new Set<string>();
  const rows: Array<Record<string, unknown>> = await db('call_reports')
    .whereIn('tenant_id', [...new Set(marks.map((m) => m.tenantId))])
    .whereIn('period_start', [...new Set(marks.map((m) => m.start))])
    .select('tenant_id', 'period_kind', 'period_start');
  for (const r of rows) reported.add(keyOf(r.tenant_id, r.period_kind, r.period_start));
  let made = 0;
  let failed = 0;
  for (const m of marks) {
    if (opts.signal?.aborted) break;
    const key = keyOf(m.tenantId, m.kind, m.start);
    try {
      if (reported.has(key) && !madeNow.has(key)) {
        await generateReport(db, m.tenantId, m.kind, m.start, { reportsDir: opts.reportsDir, now, signal: opts.signal, zoneOf: opts.zoneOf });
        made++;
        opts.log.info({ tenant_id: m.tenantId, period: key, late_cdrs: m.cdrs }, 'report made again: CDRs of its period arrived after it was made');
      }
      await clearLateMark(db, m);
    } catch (err) {
      failed++;
      opts.log.error({ err, tenant_id: m.tenantId, period: key }, 'report with late CDRs not made again; tried again at the next run');
    }
  }
  return { made, failed };
}
