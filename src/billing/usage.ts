/**
 * tenant_usage and tenants.balance in the database: atomic increments that never lose one when
 * several daemons write at once (`SET spend = spend + ?` on a row upserted first), and the
 * charging of new CDRs inside the CDR writer's transaction (exactly once per call).
 *
 * Money goes to MySQL as DECIMAL text cast to DECIMAL(14,4) (exact), to SQLite as a number and
 * every sum is ROUNDed to 4 places there, because SQLite keeps DECIMAL columns as floats.
 *
 * Every write saturates at what DECIMAL(14,4) holds (spend at most 9999999999.9999, balance at
 * least -9999999999.9999) instead of overflowing. An overflow is a data error that rolls back the
 * CDR's own insert: the CDR went to quarantine, and so did every later CDR of the tenant, since
 * its spend stayed at the maximum (issue 10). A charge cut this way is reported to the caller
 * (CappedCharge), which logs and counts it.
 */
import type { Knex } from 'knex';
import { dbKind, fromDbTimestamp } from '../db/connect';
import { clampMoney, formatMoney, MAX_MONEY, MIN_MONEY, money, parseMoney, parseMoneyCapped, type Money } from '../domain/money';
import type { CappedColumn } from '../metrics';
import { LIVE_VALUES, type LiveValues } from './live-values';
import type { Tenant } from '../snapshot/types';
import { liveTenantZone } from '../snapshot/zones';
import { periodOf, periodStartOf, tenantZone, type Period, type PeriodKind } from '../domain/periods';

export type Db = Knex | Knex.Transaction;

/** A money value as a bound SQL expression of the right type for the database. */
export function moneySql(db: Db, m: Money): Knex.Raw {
  return dbKind(db as Knex) === 'mysql' ? db.raw('CAST(? AS DECIMAL(14,4))', [formatMoney(m)]) : db.raw('?', [m / 10_000]);
}

/** Reads a DECIMAL as either driver returns it; NULL stays null. */
export function moneyOrNull(value: unknown): Money | null {
  return value === null || value === undefined ? null : parseMoney(value);
}

export interface UsageDelta {
  calls?: number;
  spend?: Money;
}

/** A charge cut to what DECIMAL(14,4) holds. */
export interface CappedCharge {
  readonly tenantId: number | null;
  readonly column: CappedColumn;
  /** What was cut, for the log line. */
  readonly detail: string;
}

const MAX_SQL = formatMoney(MAX_MONEY);
const MIN_SQL = formatMoney(MIN_MONEY);

/**
 * Adds calls and/or spend to one tenant's period row, creating it when missing, in one atomic
 * statement. Safe under any concurrency (the unique key serialises writers on the row). Spend
 * stops at MAX_MONEY (see the header).
 */
export async function addUsage(db: Db, tenantId: number, period: Pick<Period, 'kind' | 'start'>, delta: UsageDelta): Promise<void> {
  const calls = delta.calls ?? 0;
  const spend = clampMoney(delta.spend ?? 0).value;
  if (calls === 0 && spend === 0) return;
  if (dbKind(db as Knex) === 'mysql') {
    const s = formatMoney(spend);
    // spend + x is computed as DECIMAL(15,4): no overflow before LEAST() brings it back in range.
    await db.raw(
      'INSERT INTO tenant_usage (tenant_id, period_kind, period_start, calls, spend) VALUES (?, ?, ?, ?, CAST(? AS DECIMAL(14,4))) ' +
        `ON DUPLICATE KEY UPDATE calls = calls + ?, spend = LEAST(spend + CAST(? AS DECIMAL(14,4)), ${MAX_SQL})`,
      [tenantId, period.kind, period.start, calls, s, calls, s],
    );
  } else {
    await db.raw(
      'INSERT INTO tenant_usage (tenant_id, period_kind, period_start, calls, spend) VALUES (?, ?, ?, ?, ?) ' +
        `ON CONFLICT (tenant_id, period_kind, period_start) DO UPDATE SET calls = calls + excluded.calls, spend = MIN(ROUND(spend + excluded.spend, 4), ${MAX_SQL})`,
      [tenantId, period.kind, period.start, calls, spend / 10_000],
    );
  }
}

/**
 * Takes `amount` off a prepaid balance (postpaid tenants, balance NULL, are left alone), down to
 * MIN_MONEY at most. updated_at stays as it was: this is not a configuration change (see migration 26).
 */
export async function debitBalance(db: Db, tenantId: number, amount: Money): Promise<void> {
  const debit = clampMoney(amount).value;
  if (debit === 0) return;
  if (dbKind(db as Knex) === 'mysql') {
    await db.raw(`UPDATE tenants SET balance = GREATEST(balance - CAST(? AS DECIMAL(14,4)), ${MIN_SQL}), updated_at = updated_at WHERE id = ? AND balance IS NOT NULL`, [formatMoney(debit), tenantId]);
  } else {
    await db.raw(`UPDATE tenants SET balance = MAX(ROUND(balance - ?, 4), ${MIN_SQL}) WHERE id = ? AND balance IS NOT NULL`, [debit / 10_000, tenantId]);
  }
}

/** The fields of a new CDR that charging needs. */
export interface Chargeable {
  tenant_id: number | null;
  started_at: string;
  cost?: string | number | null;
}

/**
 * A CDR's cost as cdrs.cost can hold it: beyond DECIMAL(14,4) it is cut to MAX_MONEY (rating
 * already caps a call's cost there; a cost at that maximum is reported as capped, since no real
 * call costs exactly that). Junk is left for the database to refuse.
 */
export function fitCost<T extends Chargeable>(cdr: T): { cdr: T; capped: CappedCharge | null } {
  if (cdr.cost === null || cdr.cost === undefined) return { cdr, capped: null };
  let parsed: { value: Money; capped: boolean };
  try {
    parsed = parseMoneyCapped(cdr.cost);
  } catch {
    return { cdr, capped: null };
  }
  if (parsed.value < MAX_MONEY) return { cdr, capped: null };
  return {
    cdr: { ...cdr, cost: MAX_SQL },
    capped: { tenantId: cdr.tenant_id, column: 'cost', detail: `cdrs.cost ${String(cdr.cost)} ${parsed.capped ? 'cut' : 'is'} at ${MAX_SQL}, the most DECIMAL(14,4) holds` },
  };
}

/** A CDR's cost as charged (cut to what DECIMAL(14,4) holds); 0 without one. */
export function costOf(c: Pick<Chargeable, 'cost'>): Money {
  return c.cost === null || c.cost === undefined ? money(0) : parseMoneyCapped(c.cost).value;
}

/**
 * The day and month (their starts, in `zone`) a CDR that started at `startedAt` (cdrs.started_at)
 * is charged to: the tenant_usage rows chargeNewCdrs adds its cost to, the caps a spend guard
 * counts it against until then (CdrWriter.uncharged), and the rows admission counts a call that
 * starts then in (call-state.ts, explain, click-to-call's dialer): one function, so a call is
 * admitted against the periods its CDR is charged to.
 */
export function chargedPeriodStarts(startedAt: Date, zone: string): { day: string; month: string } {
  return { day: periodStartOf('day', startedAt, zone), month: periodStartOf('month', startedAt, zone) };
}

/** The CDRs a batch charges: a tenant's, with a cost other than 0. */
export function costedCdrs<T extends Chargeable>(cdrs: readonly T[]): Array<T & { tenant_id: number }> {
  return cdrs.filter((c): c is T & { tenant_id: number } => c.tenant_id !== null && costOf(c) !== 0);
}

/** What a CDR batch needs of its tenants: the zone (periods) and the prepaid balance (null: postpaid). */
export interface BatchTenant {
  zone: string;
  balance: Money | null;
}

/**
 * The batch's tenants in one read (the CDR writer shares it between charging and late-report marks).
 * With the snapshot in force (`inForce`) the zone is liveTenantZone's, as every other reader's
 * (zones.ts: a typo keeps the last good zone, a tenant not in the snapshot counts in the default
 * one), so charging and the caps job count the same periods; without one (tools, tests), the row's.
 */
export async function readBatchTenants(trx: Knex.Transaction, tenantIds: readonly number[], inForce?: ReadonlyMap<number, Pick<Tenant, 'timezone'>>): Promise<Map<number, BatchTenant>> {
  const out = new Map<number, BatchTenant>();
  if (tenantIds.length === 0) return out;
  const rows: Array<{ id: number; timezone: string | null; balance: unknown }> = await trx('tenants').whereIn('id', [...tenantIds]).select('id', 'timezone', 'balance');
  for (const r of rows) {
    const id = Number(r.id);
    // A balance a DBA typed junk into is read by the live-values rule (the last good one, else
    // none), never thrown: a throw here would hold every tenant's CDRs behind this batch.
    out.set(id, { zone: inForce ? liveTenantZone(inForce, id) : tenantZone(r.timezone), balance: LIVE_VALUES.balance(id, r.balance) });
  }
  return out;
}

/**
 * Charges newly inserted CDRs, inside the transaction that inserted them: per tenant, spend of
 * the day and the month (in the tenant's zone, by started_at) goes up and the balance down by the
 * sum of their costs. Tenants and rows are visited in a fixed order, so concurrent writers take
 * row locks in the same order. Returns the number of tenants charged and the charges that were
 * cut to what the columns hold. `batchTenants`: the batch's tenants, when already read (readBatchTenants).
 */
export async function chargeNewCdrs(trx: Knex.Transaction, cdrs: readonly Chargeable[], batchTenants?: ReadonlyMap<number, BatchTenant>): Promise<{ tenants: number; capped: CappedCharge[] }> {
  const costed = costedCdrs(cdrs).map((c) => ({ tenantId: c.tenant_id, startedAt: c.started_at, cost: costOf(c) }));
  if (costed.length === 0) return { tenants: 0, capped: [] };
  const tenantIds = [...new Set(costed.map((c) => c.tenantId))].sort((a, b) => a - b);
  const tenants = batchTenants ?? (await readBatchTenants(trx, tenantIds));

  // Sums stay within what DECIMAL(14,4) holds (and within exact integers): more is cut anyway.
  const add = (a: number, b: number): number => Math.min(a + b, MAX_MONEY + 1);
  const usage = new Map<string, { tenantId: number; kind: PeriodKind; start: string; spend: number }>();
  const debits = new Map<number, number>();
  for (const c of costed) {
    const periods = chargedPeriodStarts(fromDbTimestamp(c.startedAt) ?? new Date(), tenants.get(c.tenantId)?.zone ?? tenantZone(null));
    for (const kind of ['day', 'month'] as const) {
      const start = periods[kind];
      const key = `${String(c.tenantId).padStart(12, '0')}/${kind}/${start}`;
      const entry = usage.get(key) ?? { tenantId: c.tenantId, kind, start, spend: 0 };
      entry.spend = add(entry.spend, c.cost);
      usage.set(key, entry);
    }
    debits.set(c.tenantId, add(debits.get(c.tenantId) ?? 0, c.cost));
  }
  const capped: CappedCharge[] = [];
  const before = await usageBefore(trx, [...usage.values()]);
  for (const key of [...usage.keys()].sort()) {
    const u = usage.get(key)!;
    const had = before.get(`${u.tenantId}/${u.kind}/${u.start}`) ?? 0;
    if (had + u.spend > MAX_MONEY) {
      capped.push({ tenantId: u.tenantId, column: 'spend', detail: `tenant_usage.spend (${u.kind} ${u.start}) ${formatMoney(money(had))} + ${formatMoney(clampMoney(u.spend).value)} cut at ${MAX_SQL}` });
    }
    await addUsage(trx, u.tenantId, u, { spend: clampMoney(u.spend).value });
  }
  for (const tenantId of tenantIds) {
    const debit = debits.get(tenantId) ?? 0;
    const balance = tenants.get(tenantId)?.balance ?? null;
    if (balance !== null && balance - debit < MIN_MONEY) {
      capped.push({ tenantId, column: 'balance', detail: `tenants.balance ${formatMoney(balance)} - ${formatMoney(clampMoney(debit).value)} cut at ${MIN_SQL}` });
    }
    await debitBalance(trx, tenantId, clampMoney(debit).value);
  }
  return { tenants: tenantIds.length, capped };
}

/** The spend already in the tenant_usage rows about to be charged (0 for a missing row), by "tenant/kind/start". */
async function usageBefore(trx: Knex.Transaction, keys: ReadonlyArray<{ tenantId: number; kind: PeriodKind; start: string }>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const tenantIds = [...new Set(keys.map((k) => k.tenantId))];
  const starts = [...new Set(keys.map((k) => k.start))];
  const rows: Array<{ tenant_id: number; period_kind: string; period_start: string; spend: unknown }> = await trx('tenant_usage')
    .whereIn('tenant_id', tenantIds)
    .whereIn('period_start', starts)
    .select('tenant_id', 'period_kind', 'period_start', 'spend');
  for (const r of rows) out.set(`${Number(r.tenant_id)}/${r.period_kind}/${r.period_start}`, parseMoneyCapped(r.spend ?? 0).value);
  return out;
}

/** How a live read takes what is not in the row: the zone from the snapshot, the last good values. */
export interface LiveReadOptions {
  /** The tenant's zone in the snapshot in force (zones.ts); absent: tools and tests, which read the row's. */
  readonly zone?: string;
  readonly live?: LiveValues;
}

export interface SpendLimits {
  balance: Money | null;
  maxSpendDay: Money | null;
  maxSpendMonth: Money | null;
  spendDay: Money;
  spendMonth: Money;
  day: Period;
  month: Period;
}

/**
 * What is left of each of a tenant's spend limits (null: it has no such limit): its balance, and
 * its day's and month's spend caps less what was spent in them. The balance is the tenant's
 * whatever the day; the caps left are those of one day and one month.
 */
export interface SpendLeft {
  readonly balance: Money | null;
  readonly day: Money | null;
  readonly month: Money | null;
}

export function spendLeftOf(limits: Pick<SpendLimits, 'balance' | 'maxSpendDay' | 'maxSpendMonth' | 'spendDay' | 'spendMonth'>): SpendLeft {
  return {
    balance: limits.balance,
    day: limits.maxSpendDay === null ? null : money(limits.maxSpendDay - limits.spendDay),
    month: limits.maxSpendMonth === null ? null : money(limits.maxSpendMonth - limits.spendMonth),
  };
}

/** The least of what is left (null = no limit at all). */
export function leastLeft(left: SpendLeft): Money | null {
  const candidates = [left.balance, left.day, left.month].filter((m): m is Money => m !== null);
  return candidates.length === 0 ? null : money(Math.min(...candidates));
}

/** What a tenant may still spend: the least of balance and the spend caps left (null = no limit). */
export function headroomOf(limits: Pick<SpendLimits, 'balance' | 'maxSpendDay' | 'maxSpendMonth' | 'spendDay' | 'spendMonth'>): Money | null {
  return leastLeft(spendLeftOf(limits));
}

/**
 * Reads, live from the database (not the snapshot, which does not follow balance debits), a
 * tenant's balance, spend caps and this day's and month's spend. null when the tenant is gone.
 * `zone`: the tenant's zone in the snapshot (zones.ts); the daemon always passes it.
 */
export async function readSpendLimits(db: Db, tenantId: number, now: Date, opts: LiveReadOptions = {}): Promise<SpendLimits | null> {
  const live = opts.live ?? LIVE_VALUES;
  const t: { timezone: string | null; balance: unknown; max_spend_day: unknown; max_spend_month: unknown } | undefined = await db('tenants')
    .where({ id: tenantId })
    .first('timezone', 'balance', 'max_spend_day', 'max_spend_month');
  if (!t) return null;
  const zone = opts.zone ?? tenantZone(t.timezone);
  const day = periodOf('day', now, zone);
  const month = periodOf('month', now, zone);
  const rows: Array<{ period_kind: string; spend: unknown }> = await db('tenant_usage')
    .where({ tenant_id: tenantId })
    .andWhere((q) => void q.where({ period_kind: 'day', period_start: day.start }).orWhere({ period_kind: 'month', period_start: month.start }))
    .select('period_kind', 'spend');
  const spend = (kind: string): Money => moneyOrNull(rows.find((r) => r.period_kind === kind)?.spend) ?? money(0);
  return {
    balance: live.balance(tenantId, t.balance),
    maxSpendDay: live.cap(tenantId, 'max_spend_day', t.max_spend_day),
    maxSpendMonth: live.cap(tenantId, 'max_spend_month', t.max_spend_month),
    spendDay: spend('day'),
    spendMonth: spend('month'),
    day,
    month,
  };
}

/**
 * An amount the daemon itself wrote (live_calls' rates); null when it is not one. What a DBA
 * edits (tenants' balance and caps) is read through live-values.ts instead.
 */
export function liveAmount(value: unknown): Money | null {
  try {
    return moneyOrNull(value);
  } catch {
    return null;
  }
}

/** readSpendLimits → spendLeftOf: what is left of each limit, for the day and month of `now`. */
export async function readSpendLeft(db: Db, tenantId: number, now: Date, opts: LiveReadOptions = {}): Promise<SpendLeft | null> {
  const limits = await readSpendLimits(db, tenantId, now, opts);
  return limits === null ? null : spendLeftOf(limits);
}

/** readSpendLimits → headroomOf (tools and tests; the call session reads sharedSpendLeft). */
export async function readSpendHeadroom(db: Db, tenantId: number, now: Date, opts: LiveReadOptions = {}): Promise<Money | null> {
  const left = await readSpendLeft(db, tenantId, now, opts);
  return left === null ? null : leastLeft(left);
}

/** The reads of what is left started in this turn of the event loop, per database, by tenant and day. */
const leftThisTurn = new WeakMap<Db, Map<string, Promise<SpendLeft | null>>>();

/**
 * What is left of a tenant's limits (readSpendLeft) for a call just answered,
 * shared by the calls of one tenant answered in the same turn of the event loop (a burst of
 * answers under load) that are charged to the same day (`now`: the instant whose day and month the
 * call is charged to): one read of the balance and the usage rows serves them all. Reads started
 * in one turn would have run side by side and seen the same committed rows; a call answered in a
 * later turn starts a read of its own.
 */
export function sharedSpendLeft(db: Db, tenantId: number, now: Date, zone?: string): Promise<SpendLeft | null> {
  let turn = leftThisTurn.get(db);
  if (!turn) {
    leftThisTurn.set(db, (turn = new Map<string, Promise<SpendLeft | null>>()));
    setImmediate(() => leftThisTurn.delete(db));
  }
  const key = `${tenantId}/${zone === undefined ? now.toISOString() : periodOf('day', now, zone).start}`;
  let read = turn.get(key);
  if (!read) turn.set(key, (read = readSpendLeft(db, tenantId, now, { zone })));
  return read;
}
