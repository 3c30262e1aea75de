/**
 * The few things a call must share with every other daemon, kept in the database: admission
 * against caps and prepaid balance (atomic, so N simultaneous calls never overshoot a cap), PIN
 * lockouts, the round-robin position of a group, and caller memory. Each query is bounded by
 * `timeoutMs`; what happens when the database does not answer in time is the caller's policy.
 */
import type { Knex } from 'knex';
import { fromDbTimestamp, toDbTimestamp } from '../db/connect';
import { formatMoney, parseMoney } from '../domain/money';
import { periodOf } from '../domain/periods';
import type { Tenant } from '../snapshot/types';

export class CallStateTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no answer from the database within ${ms} ms`);
    this.name = 'CallStateTimeout';
  }
}

/**
 * Runs a short transaction, retrying when InnoDB picks it as a deadlock victim. The rows it
 * needs are created beforehand, outside the transaction (INSERT IGNORE takes gap locks that
 * would make concurrent transactions deadlock on the following UPDATE).
 */
async function transact<T>(knex: Knex, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await knex.transaction(work);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= 5 || (code !== 'ER_LOCK_DEADLOCK' && code !== 'ER_LOCK_WAIT_TIMEOUT')) throw err;
    }
  }
}

export function withTimeout<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CallStateTimeout(what, ms)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** The day and month a moment belongs to in the tenant's time zone ('YYYY-MM-DD' starts). */
export function usagePeriods(at: Date, timeZone: string): { day: string; month: string } {
  return { day: periodOf('day', at, timeZone).start, month: periodOf('month', at, timeZone).start };
}

export type Admission =
  | { admitted: true; counted: boolean }
  | { admitted: false; reason: 'balance' | 'calls_day' | 'calls_month' | 'spend_day' | 'spend_month' };

class Refused extends Error {
  constructor(readonly reason: Exclude<Admission, { admitted: true }>['reason']) {
    super(reason);
  }
}

/** Whether a tenant needs the database at all to admit a call. */
export function hasLimits(tenant: Tenant): boolean {
  return tenant.balance !== null || tenant.maxCallsDay !== null || tenant.maxCallsMonth !== null || tenant.maxSpendDay !== null || tenant.maxSpendMonth !== null;
}

/**
 * Admits one call: the live prepaid balance must be above zero, and the day and month rows of
 * tenant_usage are incremented only where calls and spend are still under the caps — a
 * conditional UPDATE inside one transaction, so concurrent daemons cannot both take the last
 * slot. Tenants without caps or balance are not counted here (the caps job counts from CDRs).
 */
export async function admitCall(knex: Knex, tenant: Tenant, at: Date): Promise<Admission> {
  if (!hasLimits(tenant)) return { admitted: true, counted: false };
  const { day, month } = usagePeriods(at, tenant.timezone);
  const periods = [
    { kind: 'day', start: day, maxCalls: tenant.maxCallsDay, maxSpend: tenant.maxSpendDay },
    { kind: 'month', start: month, maxCalls: tenant.maxCallsMonth, maxSpend: tenant.maxSpendMonth },
  ] as const;
  for (const p of periods) {
    await knex('tenant_usage').insert({ tenant_id: tenant.id, period_kind: p.kind, period_start: p.start, calls: 0, spend: '0' }).onConflict(['tenant_id', 'period_kind', 'period_start']).ignore();
  }
  try {
    await transact(knex, async (trx) => {
      if (tenant.balance !== null) {
        const row: { balance: unknown } | undefined = await trx('tenants').where({ id: tenant.id }).first('balance');
        if (row && row.balance !== null && parseMoney(row.balance) <= 0) throw new Refused('balance');
      }
      // Day before month, always: concurrent transactions lock the rows in the same order.
      for (const p of periods) {
        const key = { tenant_id: tenant.id, period_kind: p.kind, period_start: p.start };
        const update = trx('tenant_usage').where(key);
        if (p.maxCalls !== null) update.andWhere('calls', '<', p.maxCalls);
        if (p.maxSpend !== null) update.andWhere('spend', '<', formatMoney(p.maxSpend));
        const changed = await update.increment('calls', 1);
        if (changed === 0) {
          const row: { calls: number | string } | undefined = await trx('tenant_usage').where(key).first('calls');
          const callsFull = p.maxCalls !== null && Number(row?.calls) >= p.maxCalls;
          throw new Refused(`${callsFull ? 'calls' : 'spend'}_${p.kind}`);
        }
      }
    });
    return { admitted: true, counted: true };
  } catch (err) {
    if (err instanceof Refused) return { admitted: false, reason: err.reason };
    throw err;
  }
}

/** Until when this caller is locked out of the tenant's PIN prompt, or null. */
export async function pinLockedUntil(knex: Knex, tenantId: number, caller: string, at: Date): Promise<Date | null> {
  const row: { locked_until: unknown } | undefined = await knex('pin_lockouts').where({ tenant_id: tenantId, caller }).first('locked_until');
  const until = row ? fromDbTimestamp(row.locked_until as string | Date | null) : null;
  return until && until > at ? until : null;
}

/**
 * Counts a failed PIN call; at the tenant's threshold the caller is locked out for its lockout
 * time and the count starts again. Returns the lockout end when this failure caused one.
 */
export async function recordPinFailure(knex: Knex, tenant: Tenant, caller: string, at: Date): Promise<Date | null> {
  const key = { tenant_id: tenant.id, caller };
  await knex('pin_lockouts').insert({ ...key, failures: 0 }).onConflict(['tenant_id', 'caller']).ignore();
  return transact(knex, async (trx) => {
    await trx('pin_lockouts').where(key).increment('failures', 1);
    const row: { failures: number | string } | undefined = await trx('pin_lockouts').where(key).first('failures');
    if (tenant.pinLockoutFailures === 0 || Number(row?.failures) < tenant.pinLockoutFailures) return null;
    const until = new Date(at.getTime() + tenant.pinLockoutMinutes * 60_000);
    await trx('pin_lockouts').where(key).update({ failures: 0, locked_until: toDbTimestamp(until) });
    return until;
  });
}

/** A right PIN forgives earlier failures. */
export async function clearPinFailures(knex: Knex, tenantId: number, caller: string): Promise<void> {
  await knex('pin_lockouts').where({ tenant_id: tenantId, caller }).andWhere('failures', '>', 0).update({ failures: 0 });
}

/** The position a round-robin group hands out next, shared by every daemon (then advanced). */
export async function takeRotation(knex: Knex, groupId: number): Promise<number> {
  await knex('group_rotation').insert({ group_id: groupId, next_index: 0 }).onConflict(['group_id']).ignore();
  return transact(knex, async (trx) => {
    await trx('group_rotation').where({ group_id: groupId }).increment('next_index', 1);
    const row: { next_index: number | string } | undefined = await trx('group_rotation').where({ group_id: groupId }).first('next_index');
    return Number(row?.next_index) - 1;
  });
}

/** Caller memory: who answered this caller for this tenant most recently within the window. */
export async function lastAnsweredBy(knex: Knex, tenantId: number, caller: string, since: Date): Promise<string | null> {
  const row: { answered_by: string } | undefined = await knex('cdrs')
    .where({ tenant_id: tenantId, caller })
    .andWhere('answered_at', '>=', toDbTimestamp(since))
    .whereNotNull('answered_by')
    .orderBy('answered_at', 'desc')
    .first('answered_by');
  return row?.answered_by ?? null;
}
