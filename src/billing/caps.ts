/**
 * The caps job (every minute, once across the cluster):
 *  1. recounts every tenant's calls and spend for its current day and month (tenant's zone) from
 *     the CDRs, the source of truth, plus the calls still in flight (live_calls, published by
 *     every daemon);
 *  2. corrects tenant_usage where it drifted, without ever undoing an increment made meanwhile
 *     (each correction is an UPDATE guarded by the values read before the recount);
 *  3. marks tenants over a cap or out of balance in capped_tenants and reopens them when the
 *     reason is gone (a new day or month in their zone, a raised cap, a top-up).
 *
 * Which CDRs count as calls: those admitted (cdrs.admitted = 1); for CDRs that do not say,
 * every outcome except `capped` (refused by the cap itself) and `blocked` (refused by screening).
 *
 * Calls in flight: admission counts a call when it starts, its CDR arrives when it ends. The
 * recount adds the live calls daemons published; one another daemon admitted since its last
 * publication (≤ 1 minute ago) is not there yet, so a count above the recount is only taken down
 * by calls that were missing at the previous run too (tenant_usage.excess_calls) and that no call
 * admitted since can stand for (tenant_usage.calls_at_recount): those died with a daemon and will
 * never have a CDR (correctedCalls).
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { dbKind, fromDbTimestamp, toDbTimestamp } from '../db/connect';
import { clampMoney, money, parseMoney, parseMoneyCapped, formatMoney, type Money } from '../domain/money';
import { periodOf, tenantZone, type Period, type PeriodKind } from '../domain/periods';
import type { RateTerms } from '../domain/rating';
import { liveCost } from './live-calls';
import { liveAmount, moneySql } from './usage';
import { LIVE_VALUES, liveIntOrNull, type LiveValues } from './live-values';
import { pagesById } from '../db/id-pages';
import { inReadTransaction, readerRows, type SqliteReader } from '../db/sqlite-reader';
import type { TenantZones } from '../snapshot/zones';
import { nextTurn } from '../next-turn';

export const CAP_REASONS = ['calls_day', 'calls_month', 'spend_day', 'spend_month', 'balance'] as const;
export type CapReason = (typeof CAP_REASONS)[number];

/** Live calls whose daemon has not published them for this long are ignored (daemon gone). */
export const LIVE_CALL_STALE_MS = 3 * 60_000;
/** … and deleted after this long. */
const LIVE_CALL_PURGE_MS = 10 * 60_000;

export interface TenantLimits {
  id: number;
  status: string;
  zone: string;
  balance: Money | null;
  maxCallsDay: number | null;
  maxCallsMonth: number | null;
  maxSpendDay: Money | null;
  maxSpendMonth: Money | null;
}

export interface TenantUsageNow {
  callsDay: number;
  callsMonth: number;
  spendDay: Money;
  spendMonth: Money;
  /** What the tenant's answered live calls have cost so far. */
  liveCost: Money;
}

export interface CapFinding {
  reason: CapReason;
  detail: string;
}

/**
 * Which caps a tenant is over (pure). Over a calls cap when the count has reached it (the next
 * call would exceed it); over a spend cap when spend plus live cost has reached it; out of
 * balance when balance minus live cost is zero or less. Only active tenants are capped.
 */
export function capsReached(t: TenantLimits, u: TenantUsageNow): CapFinding[] {
  if (t.status !== 'active') return [];
  const out: CapFinding[] = [];
  if (t.maxCallsDay !== null && u.callsDay >= t.maxCallsDay) out.push({ reason: 'calls_day', detail: `${u.callsDay} calls of ${t.maxCallsDay} today` });
  if (t.maxCallsMonth !== null && u.callsMonth >= t.maxCallsMonth) out.push({ reason: 'calls_month', detail: `${u.callsMonth} calls of ${t.maxCallsMonth} this month` });
  const spendDay = u.spendDay + u.liveCost;
  const spendMonth = u.spendMonth + u.liveCost;
  if (t.maxSpendDay !== null && spendDay >= t.maxSpendDay) out.push({ reason: 'spend_day', detail: `spent ${formatMoney(money(spendDay))} of ${formatMoney(t.maxSpendDay)} today` });
  if (t.maxSpendMonth !== null && spendMonth >= t.maxSpendMonth) out.push({ reason: 'spend_month', detail: `spent ${formatMoney(money(spendMonth))} of ${formatMoney(t.maxSpendMonth)} this month` });
  if (t.balance !== null && t.balance - u.liveCost <= 0) out.push({ reason: 'balance', detail: `balance ${formatMoney(t.balance)}, live calls ${formatMoney(u.liveCost)}` });
  return out;
}

/**
 * New calls value after a recount (pure): raise at once to the recount. Lower only by calls that
 * cannot be in flight: of the excess over the recount, the calls admitted since this job last wrote
 * the row (`stored - callsAtRecount`: only admissions add to the count in between) may be in flight
 * on a daemon that has not published them yet, so at most the rest is taken off, and no more than
 * was already missing then (`excessSeenBefore`). A row the job never wrote (`callsAtRecount` null)
 * is only noted. Before, any excess two runs in a row was taken off, though a call admitted after
 * the last publication could stand for one published since: the count fell below the calls in
 * progress and a calls cap was overshot. The price: calls admitted since that are already visible
 * hold a dead call up too (remove ≤ callsAtRecount − recount), so under steady traffic it comes off
 * only at the tenant's first quiet minute (counting visible calls by their start would lift that).
 */
export function correctedCalls(stored: number, recount: number, excessSeenBefore: number, callsAtRecount: number | null): { calls: number; excess: number } {
  if (stored <= recount) return { calls: recount, excess: 0 };
  const excess = stored - recount;
  const admittedSince = callsAtRecount === null ? excess : Math.max(0, stored - callsAtRecount);
  const remove = Math.min(Math.max(0, excessSeenBefore), Math.max(0, excess - admittedSince));
  return { calls: stored - remove, excess: excess - remove };
}

/** A whole number the daemon wrote (live_calls.increment_s); null when it is not one. */
function intOrNull(v: unknown): number | null {
  const read = liveIntOrNull(v);
  return read.kind === 'ok' ? read.value : null;
}

/** Tenants, usage rows a page (pagesById) in the caps job's reads of every tenant. */
export const CAPS_PAGE_ROWS = 500;

/**
 * `zoneOf`: the tenants' zones in the snapshot (zones.ts); the daemon and the CLIs pass it.
 * Every tenant (no `ids`) is read in pages with the event loop turning between them (pagesById).
 */
export async function loadTenantLimits(db: Knex, ids?: readonly number[], opts: { live?: LiveValues; zoneOf?: TenantZones } = {}): Promise<TenantLimits[]> {
  const query = (): Knex.QueryBuilder =>
    db('tenants')
      .modify((q) => void (ids ? q.whereIn('id', ids) : q.whereNot('status', 'closed')))
      .select('id', 'status', 'timezone', 'balance', 'max_calls_day', 'max_calls_month', 'max_spend_day', 'max_spend_month');
  if (ids) return ((await query()) as Array<Record<string, unknown>>).map((r) => tenantLimits(r, opts));
  const out: TenantLimits[] = [];
  for await (const rows of pagesById(query, { pageRows: CAPS_PAGE_ROWS })) for (const r of rows) out.push(tenantLimits(r, opts));
  return out;
}

function tenantLimits(r: Record<string, unknown>, opts: { live?: LiveValues; zoneOf?: TenantZones }): TenantLimits {
  const live = opts.live ?? LIVE_VALUES;
  const id = Number(r.id);
  return {
    id,
    status: typeof r.status === 'string' ? r.status.trim().toLowerCase() : '',
    zone: opts.zoneOf ? opts.zoneOf(id) : tenantZone(r.timezone as string | null),
    balance: live.balance(id, r.balance),
    maxCallsDay: live.count(id, 'max_calls_day', r.max_calls_day),
    maxCallsMonth: live.count(id, 'max_calls_month', r.max_calls_month),
    maxSpendDay: live.cap(id, 'max_spend_day', r.max_spend_day),
    maxSpendMonth: live.cap(id, 'max_spend_month', r.max_spend_month),
  };
}

/** SUM of a money column, exact on both databases (SQLite sums integers, not floats). */
export function sumMoneySql(db: Knex, column: string): Knex.Raw {
  return dbKind(db) === 'mysql' ? db.raw(`COALESCE(SUM(${column}), 0)`) : db.raw(`COALESCE(SUM(CAST(ROUND(${column} * 10000) AS INTEGER)), 0)`);
}

/** A SUM read back; a sum beyond DECIMAL(14,4) is cut to what tenant_usage.spend can hold. */
export function sumMoneyValue(db: Knex, v: unknown): Money {
  return dbKind(db) === 'mysql' ? parseMoneyCapped(v ?? 0).value : clampMoney(Number(v ?? 0)).value;
}

/** A CDR counts as a call against the caps (see the header). */
export const COUNTED_CALL_SQL = "CASE WHEN admitted = 1 OR (admitted IS NULL AND outcome NOT IN ('capped', 'blocked')) THEN 1 ELSE 0 END";

/**
 * CDRs one recount statement reads at most on SQLite with a snapshot reader (cdrTotals).
 * better-sqlite3 runs a statement on the event loop: the caps job's month recount of 100,000 CDRs
 * was one 34-36 ms statement every minute (a million: about 0.35 s), and every call waited for it.
 * In slices of this many rows, with a turn of the event loop between them, the longest wait was
 * 3.1-5.4 ms (bench/PROFILE.md, release 29).
 */
export const SQLITE_RECOUNT_SLICE_ROWS = 5000;

/**
 * Calls and spend per tenant from the CDRs that started in [from, to). With `reader` (a read-only
 * connection to the SQLite file, in a read transaction the caller holds: one snapshot for every
 * slice, runCaps) in slices of the started_at index, the event loop turning between them; without,
 * one statement on `db` (MariaDB, where the server does the work; tools).
 */
export async function cdrTotals(db: Knex, from: Date, to: Date, tenantIds?: readonly number[], reader?: SqliteReader | null): Promise<Map<number, { calls: number; spend: Money }>> {
  const [start, end] = [toDbTimestamp(from), toDbTimestamp(to)];
  // Outside a transaction each slice would be a snapshot of its own (runCaps' comment says why that loses calls).
  if (reader && !reader.inTransaction) throw new Error('cdrTotals: the reader must be in a read transaction, so that its slices are one snapshot');
  if (!reader) {
    const rows = await rowsOf(sumCdrs(db, start, end, tenantIds), null);
    return new Map(rows.map((r) => [Number(r.tenant_id), { calls: Number(r.calls ?? 0), spend: sumMoneyValue(db, r.spend) }]));
  }
  const sums = new Map<number, { calls: number; units: number }>();
  for (let sliceStart = start; ; ) {
    const sliceEnd = await recountSliceEnd(db, reader, sliceStart, end);
    for (const r of await rowsOf(sumCdrs(db, sliceStart, sliceEnd, tenantIds), reader)) {
      const id = Number(r.tenant_id);
      const sum = sums.get(id) ?? { calls: 0, units: 0 };
      sum.calls += Number(r.calls ?? 0);
      sum.units += Number(r.spend ?? 0);
      sums.set(id, sum);
    }
    if (sliceEnd >= end) break;
    sliceStart = sliceEnd;
    await nextTurn();
  }
  return new Map([...sums].map(([id, s]) => [id, { calls: s.calls, spend: sumMoneyValue(db, s.units) }]));
}

function sumCdrs(db: Knex, start: string, end: string, tenantIds?: readonly number[]): Knex.QueryBuilder {
  return db('cdrs')
    .where('started_at', '>=', start)
    .andWhere('started_at', '<', end)
    .whereNotNull('tenant_id')
    .modify((q) => void (tenantIds ? q.whereIn('tenant_id', tenantIds) : q))
    .groupBy('tenant_id')
    .select('tenant_id', db.raw(`SUM(${COUNTED_CALL_SQL}) AS calls`), sumMoneySql(db, 'cost').wrap('', ' AS spend'));
}

/** A query built on `db`, run on `reader` when there is one (its SQL and bindings as knex makes them), else through knex. */
async function rowsOf(query: Knex.QueryBuilder, reader: SqliteReader | null): Promise<Array<Record<string, unknown>>> {
  return reader ? readerRows(reader, query) : ((await query) as Array<Record<string, unknown>>);
}

/**
 * Where the slice that begins at `start` ends: the started_at SQLITE_RECOUNT_SLICE_ROWS rows on
 * (that row begins the next slice), or `end`. More rows than that with the very same started_at
 * (a replayed batch) are one slice: it ends at the first later started_at, so each slice moves on.
 */
async function recountSliceEnd(db: Knex, reader: SqliteReader, start: string, end: string): Promise<string> {
  const inRange = (): Knex.QueryBuilder => db('cdrs').where('started_at', '>=', start).andWhere('started_at', '<', end);
  const [row] = await rowsOf(inRange().orderBy('started_at').limit(1).offset(SQLITE_RECOUNT_SLICE_ROWS).select('started_at'), reader);
  if (row === undefined) return end;
  const at = String(row.started_at);
  if (at > start) return at;
  const [later] = await rowsOf(inRange().andWhere('started_at', '>', start).min({ at: 'started_at' }), reader);
  return typeof later?.at === 'string' ? later.at : end;
}

interface LiveRow {
  tenantId: number;
  startedAt: Date;
  answeredAt: Date | null;
  admitted: boolean;
  rate: RateTerms | null;
  /** Legs paid at the rate (2: a click-to-call). */
  legs: 1 | 2;
}

/**
 * Live calls read at a time on SQLite (publishedLiveCalls). At 10,000 live calls one statement
 * held the event loop 105-132 ms there, rows read and turned into objects at once; in pages of
 * 500, at most 11-13 ms at a time (bench/PROFILE.md, release 30). MariaDB's answer is read as it
 * arrives (mysql2 turns rows into objects a packet at a time): one statement waited at most
 * 1-11 ms, and pages made it no shorter (11-17 ms).
 */
export const LIVE_CALLS_PAGE_ROWS = 500;

export interface LiveCallsRead {
  /** Rows not published for this long are left out (their daemon is gone). */
  staleMs?: number;
  /** An SQLite reader in a read transaction (runCaps): the pages read there, one snapshot. */
  reader?: SqliteReader | null;
  /**
   * Pages with turns of the event loop between them; by default on SQLite only (above). false:
   * one statement, no turn: runCaps on knex's SQLite connection (tools, an in-memory database)
   * reads so, so that nothing this process commits falls between its reads.
   */
  paged?: boolean;
}

/**
 * Live calls every daemon published recently and whose CDR is not written yet; on SQLite in
 * pages of LIVE_CALLS_PAGE_ROWS by id, the event loop turning between them. Without a snapshot
 * (the guard, the usage CLI) a call published between two pages is in a later page or not yet,
 * never twice: an upsert keeps its row's id.
 */
export async function publishedLiveCalls(db: Knex, now: Date, read: LiveCallsRead = {}): Promise<Array<LiveRow & { uuid: string; node: string }>> {
  const { staleMs = LIVE_CALL_STALE_MS, reader = null, paged = dbKind(db) !== 'mysql' } = read;
  const query = (): Knex.QueryBuilder =>
    db('live_calls as l')
      .where('l.seen_at', '>=', toDbTimestamp(new Date(now.getTime() - staleMs)))
      .whereNotExists(db('cdrs as c').whereRaw('c.call_uuid = l.call_uuid').select(db.raw('1')))
      .select('l.id', 'l.call_uuid', 'l.node', 'l.tenant_id', 'l.started_at', 'l.answered_at', 'l.admitted', 'l.per_minute', 'l.increment_s', 'l.connect_fee', 'l.legs');
  if (!paged) return (await rowsOf(query(), reader)).map((r) => liveRow(r, now));
  const out: Array<LiveRow & { uuid: string; node: string }> = [];
  for await (const rows of pagesById(query, { pageRows: LIVE_CALLS_PAGE_ROWS, idColumn: 'l.id', run: (q) => rowsOf(q, reader) })) {
    for (const r of rows) out.push(liveRow(r, now));
  }
  return out;
}

function liveRow(r: Record<string, unknown>, now: Date): LiveRow & { uuid: string; node: string } {
  const perMinute = liveAmount(r.per_minute);
  const incrementS = intOrNull(r.increment_s);
  return {
    uuid: String(r.call_uuid),
    node: String(r.node),
    tenantId: Number(r.tenant_id),
    startedAt: fromDbTimestamp(r.started_at as string) ?? now,
    answeredAt: fromDbTimestamp(r.answered_at as string | null),
    admitted: Number(r.admitted) === 1 || r.admitted === true,
    rate: perMinute !== null && incrementS !== null && incrementS > 0 ? { perMinute, incrementS, connectFee: liveAmount(r.connect_fee) ?? money(0) } : null,
    legs: Number(r.legs) === 2 ? 2 : 1,
  };
}

interface StoredUsage {
  calls: number;
  spend: unknown;
  spendUnits: Money;
  excess: number;
  /** `calls` as this job last wrote it; null when it never did. */
  callsAtRecount: number | null;
}

export interface CapsRunResult {
  tenants: number;
  corrected: number;
  capped: number;
  reopened: number;
  cappedTenants: number;
  purgedLiveCalls: number;
}

/**
 * The recount (the CDRs of every zone's day and month, in pieces: recountPieces; then the live
 * calls) is read as one snapshot: a CDR batch deletes a call's live_calls row in the transaction
 * that writes its CDR, so a call whose CDR commits between two of the recount's reads would
 * otherwise be in neither, and a zero-cost one would pass the guarded correction as a call missing.
 * - `reader`: a read-only connection to the SQLite file (openSqliteReader): the CDRs in slices and
 *   the live calls in pages, the event loop turning between them, in one read transaction there.
 * - MariaDB: one statement a piece and the live calls, in a REPEATABLE READ transaction (InnoDB's
 *   snapshot, taken at its first read, whatever the server's default isolation).
 * - SQLite through knex (tools, an in-memory database, a reader that could not be opened): one
 *   statement a piece and the live calls, no turn of the event loop between them, in one read
 *   transaction: on a file the CDR writer's thread commits on a connection of its own.
 * tenant_usage is read before (in pages, turns between them): its values guard the corrections.
 */
export async function runCaps(db: Knex, now: Date, log: Logger, zoneOf?: TenantZones, reader: SqliteReader | null = null): Promise<CapsRunResult> {
  const tenants = await loadTenantLimits(db, undefined, { zoneOf });
  const periods = new Map<number, Record<PeriodKind, Period>>();
  const zones = new Map<string, Record<PeriodKind, Period>>();
  for (const t of tenants) {
    let p = zones.get(t.zone);
    if (!p) {
      p = { day: periodOf('day', now, t.zone), month: periodOf('month', now, t.zone) };
      zones.set(t.zone, p);
    }
    periods.set(t.id, p);
  }

  // 1. What tenant_usage says, read BEFORE the recount (see correct()).
  const stored = new Map<string, StoredUsage>();
  const starts = { day: new Set<string>(), month: new Set<string>() };
  for (const p of zones.values()) {
    starts.day.add(p.day.start);
    starts.month.add(p.month.start);
  }
  // By the tenants' ids, CAPS_PAGE_ROWS at a time with a turn between: lookups in the unique
  // (tenant_id, period_kind, period_start) index. Read by id, the first page walked every day and
  // month of the table's history, which nothing purges (a review: 39 ms at 90 days of 10,000 tenants).
  for (let i = 0; i < tenants.length; i += CAPS_PAGE_ROWS) {
    if (i > 0) await nextTurn();
    const rows: Array<Record<string, unknown>> = await db('tenant_usage')
      .whereIn('tenant_id', tenants.slice(i, i + CAPS_PAGE_ROWS).map((t) => t.id))
      .andWhere((q) => void q.where((d) => void d.where('period_kind', 'day').whereIn('period_start', [...starts.day])).orWhere((m) => void m.where('period_kind', 'month').whereIn('period_start', [...starts.month])))
      .select('tenant_id', 'period_kind', 'period_start', 'calls', 'spend', 'excess_calls', 'calls_at_recount');
    for (const r of rows) {
      stored.set(`${Number(r.tenant_id)}/${String(r.period_kind)}/${String(r.period_start)}`, {
        calls: Number(r.calls),
        spend: r.spend,
        spendUnits: parseMoney(r.spend ?? 0),
        excess: Number(r.excess_calls ?? 0),
        callsAtRecount: r.calls_at_recount === null || r.calls_at_recount === undefined ? null : Number(r.calls_at_recount),
      });
    }
  }

  // 2. The recount: CDRs per period, then calls in flight; one snapshot (above). The CDRs are read
  // once, in the pieces every zone's day and month boundaries cut them into (recountPieces), for
  // every tenant; each tenant's day and month are the sums of the pieces inside them.
  const totals = new Map<string, { calls: number; spend: Money }>();
  const recount = async (q: Knex): Promise<Awaited<ReturnType<typeof publishedLiveCalls>>> => {
    const pieces = recountPieces([...zones.values()].flatMap((p) => [p.day, p.month]));
    const sums: Array<Map<number, { calls: number; spend: Money }>> = [];
    for (const piece of pieces) sums.push(await cdrTotals(q, piece.from, piece.to, undefined, reader));
    // The pieces inside each zone's day and month, found once per period (a zone's tenants share it).
    const inside = new Map<Period, number[]>();
    const piecesOf = (period: Period): number[] => {
      let list = inside.get(period);
      if (!list) inside.set(period, (list = pieces.flatMap((x, j) => (x.from >= period.from && x.to <= period.to ? [j] : []))));
      return list;
    };
    // Turns through the tenants, except on knex's SQLite connection (no turn there: the header).
    const turns = reader !== null || dbKind(db) === 'mysql';
    for (const [i, t] of tenants.entries()) {
      if (turns && i > 0 && i % CAPS_PAGE_ROWS === 0) await nextTurn();
      const p = periods.get(t.id)!;
      for (const kind of ['day', 'month'] as const) {
        let calls = 0;
        let units = 0;
        for (const j of piecesOf(p[kind])) {
          const v = sums[j].get(t.id);
          if (!v) continue;
          calls += v.calls;
          units += v.spend;
        }
        if (calls !== 0 || units !== 0) totals.set(`${t.id}/${kind}/${p[kind].start}`, { calls, spend: clampMoney(units).value });
      }
    }
    // On the reader in pages with turns between them, one snapshot; on knex's SQLite connection
    // in one statement (the header); on MariaDB one statement, read as it arrives.
    return publishedLiveCalls(q, now, { reader, paged: reader !== null });
  };
  let live: Awaited<ReturnType<typeof publishedLiveCalls>>;
  if (reader) {
    live = await inReadTransaction(reader, () => recount(db));
  } else {
    // MariaDB: InnoDB's snapshot from the first read, whatever the server's default isolation.
    // SQLite through knex: no turn of the event loop between the reads, but on a file the CDR
    // writer's thread commits on a connection of its own whenever it likes; the transaction's
    // first read fixes what they all see (WAL).
    live = await db.transaction((trx) => recount(trx), dbKind(db) === 'mysql' ? { isolationLevel: 'repeatable read' } : {});
  }
  const inFlight = new Map<string, number>();
  const runningCost = new Map<number, number>();
  for (const c of live) {
    const p = periods.get(c.tenantId);
    if (!p) continue;
    runningCost.set(c.tenantId, (runningCost.get(c.tenantId) ?? 0) + liveCost(c, now));
    if (!c.admitted) continue;
    for (const kind of ['day', 'month'] as const) {
      if (c.startedAt >= p[kind].from && c.startedAt < p[kind].to) {
        const key = `${c.tenantId}/${kind}/${p[kind].start}`;
        inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
      }
    }
  }

  // 3. Corrections and caps.
  let corrected = 0;
  const findings = new Map<number, Array<CapFinding & { periodStart: string | null }>>();
  for (const [i, t] of tenants.entries()) {
    // A turn of the event loop every CAPS_PAGE_ROWS tenants, as between the pages read above.
    if (i > 0 && i % CAPS_PAGE_ROWS === 0) await nextTurn();
    const p = periods.get(t.id)!;
    const usage: Record<PeriodKind, { calls: number; spend: Money }> = { day: { calls: 0, spend: money(0) }, month: { calls: 0, spend: money(0) } };
    for (const kind of ['day', 'month'] as const) {
      const key = `${t.id}/${kind}/${p[kind].start}`;
      const cdr = totals.get(key) ?? { calls: 0, spend: money(0) };
      const recount = cdr.calls + (inFlight.get(key) ?? 0);
      const before = stored.get(key);
      const next = correctedCalls(before?.calls ?? 0, recount, before?.excess ?? 0, before?.callsAtRecount ?? null);
      usage[kind] = { calls: next.calls, spend: cdr.spend };
      // An excess is written with the count it was seen at, which the next run's correction needs.
      const changed = !before ? next.calls !== 0 || cdr.spend !== 0 : next.calls !== before.calls || cdr.spend !== before.spendUnits || next.excess !== before.excess || (next.excess > 0 && before.callsAtRecount !== next.calls);
      if (!changed) continue;
      if (await correct(db, t.id, p[kind], before, { calls: next.calls, spend: cdr.spend, excess: next.excess })) {
        corrected++;
        if (before && (next.calls !== before.calls || cdr.spend !== before.spendUnits)) {
          log.info({ tenant_id: t.id, period: `${kind} ${p[kind].start}`, calls: [before.calls, next.calls], spend: [formatMoney(before.spendUnits), formatMoney(cdr.spend)] }, 'tenant_usage corrected from the CDRs');
        }
      } else {
        // Written meanwhile (a CDR, an admission): the recount is stale for this row; next run.
        const s = before ?? { calls: 0, spendUnits: money(0) };
        usage[kind] = { calls: Math.max(s.calls, next.calls), spend: money(Math.max(s.spendUnits, cdr.spend)) };
      }
    }
    const f = capsReached(t, { callsDay: usage.day.calls, callsMonth: usage.month.calls, spendDay: usage.day.spend, spendMonth: usage.month.spend, liveCost: money(runningCost.get(t.id) ?? 0) });
    if (f.length > 0) findings.set(t.id, f.map((x) => ({ ...x, periodStart: x.reason.endsWith('_day') ? p.day.start : x.reason.endsWith('_month') ? p.month.start : null })));
  }

  const { capped, reopened } = await syncCapped(db, findings, now, log);
  const cappedTenants = Number(((await db('capped_tenants').countDistinct('tenant_id as n').first()) as { n: unknown } | undefined)?.n ?? 0);
  const purgedLiveCalls = await db('live_calls').where('seen_at', '<', toDbTimestamp(new Date(now.getTime() - LIVE_CALL_PURGE_MS))).delete();
  return { tenants: tenants.length, corrected, capped, reopened, cappedTenants, purgedLiveCalls };
}

/**
 * The pieces the recount reads (pure): the span from the earliest period's start to the latest's
 * end, cut at every period's start and end. Each piece is read once for every tenant, and every
 * period is a run of whole pieces: a day inside its month is read once, not twice, and zones with
 * different midnights read each CDR once, not once per zone. Zones that share their boundaries
 * (Asia/Shanghai, Asia/Hong_Kong …) add no piece. No read carries a list of tenant ids: at 32,767
 * tenants or more such a list is more bound variables than SQLite takes, and the caps job failed
 * every minute.
 */
export function recountPieces(periods: Iterable<{ from: Date; to: Date }>): Array<{ from: Date; to: Date }> {
  const cuts = new Set<number>();
  for (const p of periods) {
    cuts.add(p.from.getTime());
    cuts.add(p.to.getTime());
  }
  const sorted = [...cuts].sort((a, b) => a - b);
  return sorted.slice(1).map((to, i) => ({ from: new Date(sorted[i]), to: new Date(to) }));
}

/**
 * Writes the recount into one tenant_usage row, only if the row still holds what was read before
 * the recount (or is still missing): an increment that landed in between wins, and the next run
 * recounts. True when written.
 */
async function correct(db: Knex, tenantId: number, period: Period, before: StoredUsage | undefined, next: { calls: number; spend: Money; excess: number }): Promise<boolean> {
  if (!before) {
    await db('tenant_usage')
      .insert({ tenant_id: tenantId, period_kind: period.kind, period_start: period.start, calls: next.calls, spend: moneySql(db, next.spend), excess_calls: next.excess, calls_at_recount: next.calls })
      .onConflict(['tenant_id', 'period_kind', 'period_start'])
      .ignore();
    // Ignored when a writer created the row meanwhile: then it holds its own value, not ours.
    const check: { calls: number; excess_calls: number } | undefined = await db('tenant_usage').where({ tenant_id: tenantId, period_kind: period.kind, period_start: period.start }).first('calls', 'excess_calls');
    return check !== undefined && Number(check.calls) === next.calls && Number(check.excess_calls) === next.excess;
  }
  const spendMatches = dbKind(db) === 'mysql' ? db.raw('spend = CAST(? AS DECIMAL(14,4))', [formatMoney(before.spendUnits)]) : db.raw('spend = ?', [before.spend as number]);
  const n = await db('tenant_usage')
    .where({ tenant_id: tenantId, period_kind: period.kind, period_start: period.start, calls: before.calls })
    .andWhere(spendMatches)
    .update({ calls: next.calls, spend: moneySql(db, next.spend), excess_calls: next.excess, calls_at_recount: next.calls });
  return n === 1;
}

async function syncCapped(db: Knex, findings: Map<number, Array<CapFinding & { periodStart: string | null }>>, now: Date, log: Logger): Promise<{ capped: number; reopened: number }> {
  const existing: Array<{ id: number; tenant_id: number; reason: string; period_start: string | null }> = await db('capped_tenants').select('id', 'tenant_id', 'reason', 'period_start');
  const have = new Map(existing.map((r) => [`${Number(r.tenant_id)}/${r.reason}`, r]));
  let capped = 0;
  let reopened = 0;
  const want = new Set<string>();
  for (const [tenantId, list] of findings) {
    for (const f of list) {
      const key = `${tenantId}/${f.reason}`;
      want.add(key);
      const row = have.get(key);
      if (row && row.period_start === f.periodStart) continue;
      if (row) await db('capped_tenants').where({ id: row.id }).delete();
      await db('capped_tenants')
        .insert({ tenant_id: tenantId, reason: f.reason, period_start: f.periodStart, capped_at: toDbTimestamp(now), detail: f.detail.slice(0, 255) })
        .onConflict(['tenant_id', 'reason'])
        .ignore();
      capped++;
      log.info({ tenant_id: tenantId, reason: f.reason, detail: f.detail }, 'tenant capped');
    }
  }
  const gone = existing.filter((r) => !want.has(`${Number(r.tenant_id)}/${r.reason}`));
  for (const r of gone) {
    await db('capped_tenants').where({ id: r.id }).delete();
    reopened++;
    log.info({ tenant_id: Number(r.tenant_id), reason: r.reason }, 'tenant reopened');
  }
  return { capped, reopened };
}

/** Capped reasons per tenant, for the admission check and `npm run usage`. */
export async function cappedReasons(db: Knex, tenantId: number): Promise<Array<{ reason: CapReason; periodStart: string | null; detail: string | null }>> {
  const rows: Array<{ reason: CapReason; period_start: string | null; detail: string | null }> = await db('capped_tenants').where({ tenant_id: tenantId }).orderBy('reason').select('reason', 'period_start', 'detail');
  return rows.map((r) => ({ reason: r.reason, periodStart: r.period_start, detail: r.detail }));
}
