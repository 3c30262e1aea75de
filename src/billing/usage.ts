/**
 * tenant_usage and tenants.balance in the database: atomic increments that never lose one when
 * several daemons write at once (`SET spend = spend + ?` on a row upserted first), and the
 * charging of new CDRs inside the CDR writer's transaction (exactly once per call).
 *
 * Money goes to MySQL as DECIMAL text cast to DECIMAL(14,4) (exact), to SQLite as a number and
 * every sum is ROUNDed to 4 places there, because SQLite keeps DECIMAL columns as floats.
 */
import type { Knex } from 'knex';
import { dbKind, fromDbTimestamp } from '../db/connect';
import { formatMoney, money, parseMoney, type Money } from '../domain/money';
import { periodOf, tenantZone, type Period, type PeriodKind } from '../domain/periods';

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

/**
 * Adds calls and/or spend to one tenant's period row, creating it when missing, in one atomic
 * statement. Safe under any concurrency (the unique key serialises writers on the row).
 */
export async function addUsage(db: Db, tenantId: number, period: Pick<Period, 'kind' | 'start'>, delta: UsageDelta): Promise<void> {
  const calls = delta.calls ?? 0;
  const spend = delta.spend ?? money(0);
  if (calls === 0 && spend === 0) return;
  if (dbKind(db as Knex) === 'mysql') {
    const s = formatMoney(spend);
    await db.raw(
      'INSERT INTO tenant_usage (tenant_id, period_kind, period_start, calls, spend) VALUES (?, ?, ?, ?, CAST(? AS DECIMAL(14,4))) ' +
        'ON DUPLICATE KEY UPDATE calls = calls + ?, spend = spend + CAST(? AS DECIMAL(14,4))',
      [tenantId, period.kind, period.start, calls, s, calls, s],
    );
  } else {
    await db.raw(
      'INSERT INTO tenant_usage (tenant_id, period_kind, period_start, calls, spend) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (tenant_id, period_kind, period_start) DO UPDATE SET calls = calls + excluded.calls, spend = ROUND(spend + excluded.spend, 4)',
      [tenantId, period.kind, period.start, calls, spend / 10_000],
    );
  }
}

/**
 * Takes `amount` off a prepaid balance (postpaid tenants, balance NULL, are left alone).
 * updated_at stays as it was: this is not a configuration change (see migration 26).
 */
export async function debitBalance(db: Db, tenantId: number, amount: Money): Promise<void> {
  if (amount === 0) return;
  if (dbKind(db as Knex) === 'mysql') {
    await db.raw('UPDATE tenants SET balance = balance - CAST(? AS DECIMAL(14,4)), updated_at = updated_at WHERE id = ? AND balance IS NOT NULL', [formatMoney(amount), tenantId]);
  } else {
    await db.raw('UPDATE tenants SET balance = ROUND(balance - ?, 4) WHERE id = ? AND balance IS NOT NULL', [amount / 10_000, tenantId]);
  }
}

/** The fields of a new CDR that charging needs. */
export interface Chargeable {
  tenant_id: number | null;
  started_at: string;
  cost?: string | number | null;
}

/**
 * Charges newly inserted CDRs, inside the transaction that inserted them: per tenant, spend of
 * the day and the month (in the tenant's zone, by started_at) goes up and the balance down by the
 * sum of their costs. Tenants and rows are visited in a fixed order, so concurrent writers take
 * row locks in the same order. Returns the number of tenants charged.
 */
export async function chargeNewCdrs(trx: Knex.Transaction, cdrs: readonly Chargeable[]): Promise<number> {
  const costed = cdrs
    .map((c) => ({ tenantId: c.tenant_id, startedAt: c.started_at, cost: c.cost === null || c.cost === undefined ? money(0) : parseMoney(c.cost) }))
    .filter((c): c is { tenantId: number; startedAt: string; cost: Money } => c.tenantId !== null && c.cost !== 0);
  if (costed.length === 0) return 0;
  const tenantIds = [...new Set(costed.map((c) => c.tenantId))].sort((a, b) => a - b);
  const zones = new Map<number, string>();
  const rows: Array<{ id: number; timezone: string | null }> = await trx('tenants').whereIn('id', tenantIds).select('id', 'timezone');
  for (const r of rows) zones.set(Number(r.id), tenantZone(r.timezone));

  const usage = new Map<string, { tenantId: number; kind: PeriodKind; start: string; spend: number }>();
  const debits = new Map<number, number>();
  for (const c of costed) {
    const zone = zones.get(c.tenantId) ?? tenantZone(null);
    const at = fromDbTimestamp(c.startedAt) ?? new Date();
    for (const kind of ['day', 'month'] as const) {
      const p = periodOf(kind, at, zone);
      const key = `${String(c.tenantId).padStart(12, '0')}/${kind}/${p.start}`;
      const entry = usage.get(key) ?? { tenantId: c.tenantId, kind, start: p.start, spend: 0 };
      entry.spend += c.cost;
      usage.set(key, entry);
    }
    debits.set(c.tenantId, (debits.get(c.tenantId) ?? 0) + c.cost);
  }
  for (const key of [...usage.keys()].sort()) {
    const u = usage.get(key)!;
    await addUsage(trx, u.tenantId, u, { spend: money(u.spend) });
  }
  for (const tenantId of tenantIds) await debitBalance(trx, tenantId, money(debits.get(tenantId) ?? 0));
  return tenantIds.length;
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

/** What a tenant may still spend: the least of balance and the spend caps left (null = no limit). */
export function headroomOf(limits: Pick<SpendLimits, 'balance' | 'maxSpendDay' | 'maxSpendMonth' | 'spendDay' | 'spendMonth'>): Money | null {
  const candidates: number[] = [];
  if (limits.balance !== null) candidates.push(limits.balance);
  if (limits.maxSpendDay !== null) candidates.push(limits.maxSpendDay - limits.spendDay);
  if (limits.maxSpendMonth !== null) candidates.push(limits.maxSpendMonth - limits.spendMonth);
  return candidates.length === 0 ? null : money(Math.min(...candidates));
}

/**
 * Reads, live from the database (not the snapshot, which does not follow balance debits), a
 * tenant's balance, spend caps and this day's and month's spend. null when the tenant is gone.
 */
export async function readSpendLimits(db: Db, tenantId: number, now: Date): Promise<SpendLimits | null> {
  const t: { timezone: string | null; balance: unknown; max_spend_day: unknown; max_spend_month: unknown } | undefined = await db('tenants')
    .where({ id: tenantId })
    .first('timezone', 'balance', 'max_spend_day', 'max_spend_month');
  if (!t) return null;
  const zone = tenantZone(t.timezone);
  const day = periodOf('day', now, zone);
  const month = periodOf('month', now, zone);
  const rows: Array<{ period_kind: string; spend: unknown }> = await db('tenant_usage')
    .where({ tenant_id: tenantId })
    .andWhere((q) => void q.where({ period_kind: 'day', period_start: day.start }).orWhere({ period_kind: 'month', period_start: month.start }))
    .select('period_kind', 'spend');
  const spend = (kind: string): Money => moneyOrNull(rows.find((r) => r.period_kind === kind)?.spend) ?? money(0);
  return {
    balance: moneyOrNull(t.balance),
    maxSpendDay: moneyOrNull(t.max_spend_day),
    maxSpendMonth: moneyOrNull(t.max_spend_month),
    spendDay: spend('day'),
    spendMonth: spend('month'),
    day,
    month,
  };
}

/** readSpendLimits → headroomOf; for the call session when a call is answered. */
export async function readSpendHeadroom(db: Db, tenantId: number, now: Date): Promise<Money | null> {
  const limits = await readSpendLimits(db, tenantId, now);
  return limits === null ? null : headroomOf(limits);
}
