/**
 * The few things a call must share with every other daemon, kept in the database: admission
 * against caps and prepaid balance (atomic, so N simultaneous calls never overshoot a cap), PIN
 * lockouts, the round-robin position of a group, and caller memory. Each query is bounded by
 * `timeoutMs`; what happens when the database does not answer in time is the caller's policy.
 */
import type { Knex } from 'knex';
import { dbKind, fromDbTimestamp, rawChanges, rawInsertId, rawRows, toDbTimestamp } from '../db/connect';
import { isLockConflict, withLockRetry } from '../db/lock-retry';
import { writesClear } from '../db/write-gate';
import { formatMoney, parseMoney, type Money } from '../domain/money';
import { LIVE_VALUES } from '../billing/live-values';
import { chargedPeriodStarts } from '../billing/usage';
import type { Tenant } from '../snapshot/types';
import { timerDelay } from '../timer-limit';

export class CallStateTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no answer from the database within ${ms} ms`);
    this.name = 'CallStateTimeout';
  }
}

export function withTimeout<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    // Bounds built from settings (click-to-call: CALL_DB_TIMEOUT_MS × 5) must not overflow setTimeout.
    timer = setTimeout(() => reject(new CallStateTimeout(what, ms)), timerDelay(ms));
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export type Admission =
  | { admitted: true; counted: boolean }
  | { admitted: false; reason: 'balance' | 'calls_day' | 'calls_month' | 'spend_day' | 'spend_month' };

type RefusalReason = Exclude<Admission, { admitted: true }>['reason'];

/** Whether a tenant needs the database at all to admit a call. */
export function hasLimits(tenant: Tenant): boolean {
  return tenant.balance !== null || tenant.maxCallsDay !== null || tenant.maxCallsMonth !== null || tenant.maxSpendDay !== null || tenant.maxSpendMonth !== null;
}

/**
 * Admits one call: the live prepaid balance must be above zero, and the day and month rows of
 * tenant_usage are counted only while calls and spend are under the caps. Tenants without caps
 * or balance are not counted here (the caps job counts from CDRs).
 *
 * One statement decides and counts (`countCall`): both rows are incremented together, or
 * neither, by a conditional UPDATE that holds their row locks for that statement only. N
 * simultaneous calls (on any number of daemons) cannot overshoot a cap. A prepaid tenant's
 * balance is read just before, without a lock (`balanceRunOut`), as it was. It was a transaction
 * of two UPDATEs after two INSERT IGNOREs: six round trips per call, the day and month rows locked
 * across three of them, so every call of one tenant waited for the one before; a capped tenant
 * took half the calls per second of an uncapped one (bench/PROFILE.md). The rows of the current
 * periods are created once per process (`ensurePeriodRows`); only when the UPDATE counts nothing
 * is the reason looked up, and a row that went away since (a DBA, retention) is created again.
 */
export function admitCall(knex: Knex, tenant: Tenant, at: Date): Promise<Admission> {
  if (!hasLimits(tenant)) return Promise.resolve({ admitted: true, counted: false });
  const { day, month } = chargedPeriodStarts(at, tenant.timezone);
  const periods: readonly Period[] = [
    { kind: 'day', start: day, maxCalls: tenant.maxCallsDay, maxSpend: tenant.maxSpendDay },
    { kind: 'month', start: month, maxCalls: tenant.maxCallsMonth, maxSpend: tenant.maxSpendMonth },
  ];
  return new Promise((resolve, reject) => queueAdmission(knex, tenant, periods, { resolve, reject }));
}

interface AdmissionWaiter {
  readonly resolve: (admission: Admission) => void;
  readonly reject: (err: unknown) => void;
}

interface AdmissionGroup {
  readonly tenant: Tenant;
  readonly periods: readonly Period[];
  readonly waiters: AdmissionWaiter[];
}

/** Admissions waiting for the next turn of the event loop, per database, by tenant and caps. */
const admissionQueues = new WeakMap<Knex, Map<string, AdmissionGroup>>();

/**
 * Group commit: the calls of one tenant asked in the same turn of the event loop (a burst, a hot
 * number under load) are counted by one statement that adds them all, when all of them fit under
 * the caps; otherwise (the last slots of a cap, a balance run out) each is decided on its own, as
 * one call alone always is. Under load a capped tenant then pays one statement, one commit and one
 * hold of its two row locks per group instead of per call.
 */
function queueAdmission(knex: Knex, tenant: Tenant, periods: readonly Period[], waiter: AdmissionWaiter): void {
  let groups = admissionQueues.get(knex);
  if (!groups) {
    admissionQueues.set(knex, (groups = new Map<string, AdmissionGroup>()));
    setImmediate(() => {
      admissionQueues.delete(knex);
      for (const group of groups!.values()) void admitGroup(knex, group);
    });
  }
  // Calls decided against different caps (a snapshot reloaded between them) are not mixed.
  const key = JSON.stringify([tenant.id, tenant.balance !== null, periods]);
  let group = groups.get(key);
  if (!group) groups.set(key, (group = { tenant, periods, waiters: [] }));
  group.waiters.push(waiter);
}

async function admitGroup(knex: Knex, group: AdmissionGroup): Promise<void> {
  const { tenant, periods, waiters } = group;
  try {
    if (await balanceRunOut(knex, tenant)) {
      for (const w of waiters) w.resolve({ admitted: false, reason: 'balance' });
      return;
    }
    if (waiters.length > 1) {
      await ensurePeriodRows(knex, tenant.id, periods);
      // Still refused for locks after the retries: each call on its own, below. Any other error
      // is the database's answer for all of them (after a lost connection the statement may have
      // counted them: counting them again one by one would refuse calls early).
      const counted = await withLockRetry(() => countCall(knex, tenant, periods, waiters.length)).catch((err: unknown) => {
        if (isLockConflict(err)) return false;
        throw err;
      });
      if (counted) {
        for (const w of waiters) w.resolve({ admitted: true, counted: true });
        return;
      }
    }
  } catch (err) {
    for (const w of waiters) w.reject(err);
    return;
  }
  await Promise.all(waiters.map((w) => admitOne(knex, tenant, periods).then(w.resolve, w.reject)));
}

/**
 * A prepaid tenant whose live balance is zero or below (postpaid, or the row gone: false). Read
 * on its own, without a lock, as the transaction before this release did: inside the counting
 * UPDATE the read would share-lock the tenants row before the usage rows, the reverse of the CDR
 * charge (usage rows, then the balance), and the two deadlocked under load.
 */
async function balanceRunOut(knex: Knex, tenant: Tenant): Promise<boolean> {
  if (tenant.balance === null) return false;
  const row: { balance: unknown } | undefined = await knex('tenants').where({ id: tenant.id }).first('balance');
  if (row === undefined) return false;
  // A balance that cannot be read: the last good one, else not run out (live-values.ts).
  const balance = LIVE_VALUES.balance(tenant.id, row.balance);
  return balance !== null && balance <= 0;
}

/** One call: counted, or refused with the reason. */
async function admitOne(knex: Knex, tenant: Tenant, periods: readonly Period[]): Promise<Admission> {
  for (let attempt = 1; ; attempt++) {
    await ensurePeriodRows(knex, tenant.id, periods);
    if (await withLockRetry(() => countCall(knex, tenant, periods, 1))) return { admitted: true, counted: true };
    const found = await refusalReason(knex, tenant, periods);
    if (found.reason !== null) return { admitted: false, reason: found.reason };
    // Nothing refuses it: a row had gone (created again next round) or a count went down between
    // the two statements (the caps job reconciling). Bounded: after that it is the policy's call.
    for (const p of found.missing) knownRows(knex).delete(rowKey(tenant.id, p));
    if (attempt >= 3) throw new Error(`admission: tenant ${tenant.id} neither counted nor refused in 3 attempts`);
  }
}

interface Period {
  readonly kind: 'day' | 'month';
  readonly start: string;
  readonly maxCalls: number | null;
  readonly maxSpend: Money | null;
}

/** tenant_usage rows this process has seen exist, per database (keys `tenant/kind/start`). */
const periodRowsSeen = new WeakMap<Knex, Set<string>>();
/** Forgotten all at once beyond this many (a new day starts new keys; old ones are never asked again). */
const PERIOD_ROWS_KEPT = 10_000;

function knownRows(knex: Knex): Set<string> {
  let set = periodRowsSeen.get(knex);
  if (!set) periodRowsSeen.set(knex, (set = new Set()));
  return set;
}

function rowKey(tenantId: number, p: Period): string {
  return `${tenantId}/${p.kind}/${p.start}`;
}

/**
 * Creates the period rows the UPDATE counts in, once per process and period. Outside any
 * transaction: INSERT IGNORE takes gap locks that would make concurrent statements deadlock.
 */
async function ensurePeriodRows(knex: Knex, tenantId: number, periods: readonly Period[]): Promise<void> {
  const seen = knownRows(knex);
  for (const p of periods) {
    const key = rowKey(tenantId, p);
    if (seen.has(key)) continue;
    await knex('tenant_usage').insert({ tenant_id: tenantId, period_kind: p.kind, period_start: p.start, calls: 0, spend: '0' }).onConflict(['tenant_id', 'period_kind', 'period_start']).ignore();
    if (seen.size >= PERIOD_ROWS_KEPT) seen.clear();
    seen.add(key);
  }
}

/** The caps of one period as SQL conditions on the row alias `r` for `n` more calls, with their bindings. */
function capConditions(r: string, p: Period, n: number): { sql: string; bindings: Knex.RawBinding[] } {
  let sql = '';
  const bindings: Knex.RawBinding[] = [];
  if (p.maxCalls !== null) {
    sql += ` AND ${r}.calls <= ?`;
    bindings.push(p.maxCalls - n);
  }
  if (p.maxSpend !== null) {
    sql += ` AND ${r}.spend < ?`;
    bindings.push(formatMoney(p.maxSpend));
  }
  return { sql, bindings };
}

/**
 * One statement: both period rows + `n` calls if both have room for `n` more under their caps,
 * else neither. True when counted. (The balance is read before, by balanceRunOut.)
 * - MariaDB/MySQL: a multi-table UPDATE of the day row joined to the month row; STRAIGHT_JOIN
 *   locks the day row first, as the CDR charge does (chargeNewCdrs, src/billing/usage.ts: day,
 *   month, then the balance), so the two take their common locks in one order.
 * - SQLite: an UPDATE of both rows whose condition counts the qualifying rows first (one writer;
 *   the uncorrelated subquery sees the rows before the update).
 */
async function countCall(knex: Knex, tenant: Tenant, periods: readonly Period[], n: number): Promise<boolean> {
  const [day, month] = periods as [Period, Period];
  if (dbKind(knex) === 'mysql') {
    const d = capConditions('d', day, n);
    const m = capConditions('m', month, n);
    const result: unknown = await knex.raw(
      'UPDATE tenant_usage AS d STRAIGHT_JOIN tenant_usage AS m SET d.calls = d.calls + ?, m.calls = m.calls + ? ' +
        "WHERE d.tenant_id = ? AND d.period_kind = 'day' AND d.period_start = ? AND m.tenant_id = ? AND m.period_kind = 'month' AND m.period_start = ?" +
        `${d.sql}${m.sql}`,
      [n, n, tenant.id, day.start, tenant.id, month.start, ...d.bindings, ...m.bindings],
    );
    return rawChanges(result) === 2;
  }
  const d = capConditions('u', day, n);
  const m = capConditions('u', month, n);
  await writesClear(knex);
  const result: unknown = await knex.raw(
    "UPDATE tenant_usage SET calls = calls + ? WHERE tenant_id = ? AND ((period_kind = 'day' AND period_start = ?) OR (period_kind = 'month' AND period_start = ?))" +
      ` AND (SELECT COUNT(*) FROM tenant_usage u WHERE u.tenant_id = ? AND ((u.period_kind = 'day' AND u.period_start = ?${d.sql}) OR (u.period_kind = 'month' AND u.period_start = ?${m.sql}))) = 2`,
    [n, tenant.id, day.start, month.start, tenant.id, day.start, ...d.bindings, month.start, ...m.bindings],
  );
  return rawChanges(result) === 2;
}

/**
 * Why a call was not counted: the balance, then the day, then the month (calls before spend);
 * null with the periods whose row is missing when nothing refuses it.
 */
async function refusalReason(knex: Knex, tenant: Tenant, periods: readonly Period[]): Promise<{ reason: RefusalReason | null; missing: Period[] }> {
  if (await balanceRunOut(knex, tenant)) return { reason: 'balance', missing: [] };
  const rows: Array<{ period_kind: string; calls: number | string; spend: unknown }> = await knex('tenant_usage')
    .where({ tenant_id: tenant.id })
    .andWhere((q) => {
      for (const p of periods) q.orWhere({ period_kind: p.kind, period_start: p.start });
    })
    .select('period_kind', 'calls', 'spend');
  const missing: Period[] = [];
  for (const p of periods) {
    const row = rows.find((r) => r.period_kind === p.kind);
    if (!row) {
      missing.push(p);
      continue;
    }
    if (p.maxCalls !== null && Number(row.calls) >= p.maxCalls) return { reason: `calls_${p.kind}`, missing: [] };
    if (p.maxSpend !== null && parseMoney(row.spend) >= p.maxSpend) return { reason: `spend_${p.kind}`, missing: [] };
  }
  return { reason: null, missing };
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
 *
 * One auto-committed statement once the caller's row exists (it was five round trips: the row
 * created if missing, then a transaction of UPDATE, SELECT and UPDATE, the row locked across
 * three of them while the caller waited for "wrong PIN, goodbye"). The new count tells whether
 * this failure locked: it is 0 only then. MariaDB hands it back in the UPDATE's own OK packet
 * (LAST_INSERT_ID(expr), per connection), SQLite with RETURNING. `locked_until` is assigned
 * before `failures`, so it reads the old count whether the server assigns left to right (MariaDB's
 * default, MySQL) or all at once (SQLite, MariaDB's SIMULTANEOUS_ASSIGNMENT).
 */
export async function recordPinFailure(knex: Knex, tenant: Tenant, caller: string, at: Date): Promise<Date | null> {
  const until = new Date(at.getTime() + tenant.pinLockoutMinutes * 60_000);
  const failures = await onRow(
    `pin_lockouts has no row for tenant ${tenant.id}`,
    () => countPinFailure(knex, tenant, caller, until),
    () => knex('pin_lockouts').insert({ tenant_id: tenant.id, caller, failures: 0 }).onConflict(['tenant_id', 'caller']).ignore(),
  );
  return failures === 0 ? until : null;
}

/** Counts one failure in the caller's row (locking at the threshold); the new count, null when there is no row. */
async function countPinFailure(knex: Knex, tenant: Tenant, caller: string, until: Date): Promise<number | null> {
  // pin_lockout_failures 0: never locked, failures only counted. A count a DBA set below zero
  // counts from 0 (GREATEST / MAX): -1 + 1 would read as "this failure locked", and on MariaDB a
  // negative LAST_INSERT_ID comes back unsigned and cannot be written to the column.
  const threshold = tenant.pinLockoutFailures > 0 ? tenant.pinLockoutFailures : null;
  const bindings = [threshold, toDbTimestamp(until), threshold, tenant.id, caller];
  const mysql = dbKind(knex) === 'mysql';
  const counted = `${mysql ? 'GREATEST' : 'MAX'}(failures, 0) + 1`;
  const newCount = `CASE WHEN ${counted} >= ? THEN 0 ELSE ${counted} END`;
  const update =
    `UPDATE pin_lockouts SET locked_until = CASE WHEN ${counted} >= ? THEN ? ELSE locked_until END, ` +
    `failures = ${mysql ? `LAST_INSERT_ID(${newCount})` : newCount} WHERE tenant_id = ? AND caller = ?`;
  if (mysql) {
    const result: unknown = await withLockRetry(() => knex.raw(update, bindings));
    return rawChanges(result) === 0 ? null : rawInsertId(result);
  }
  await writesClear(knex);
  const rows = await rawRows<{ failures: number | string }>(knex, `${update} RETURNING failures`, bindings);
  return rows.length === 0 ? null : Number(rows[0].failures);
}

/** A right PIN forgives earlier failures. */
export async function clearPinFailures(knex: Knex, tenantId: number, caller: string): Promise<void> {
  await writesClear(knex);
  await knex('pin_lockouts').where({ tenant_id: tenantId, caller }).andWhere('failures', '>', 0).update({ failures: 0 });
}

/**
 * The position a round-robin group hands out next, shared by every daemon (then advanced). One
 * auto-committed statement once the group's row exists: it was five round trips (the row created
 * if missing, then a transaction of UPDATE and SELECT), the row locked across three of them while
 * the caller heard silence after the greeting. MariaDB hands the new value back in the UPDATE's own
 * OK packet (LAST_INSERT_ID(expr), per connection); SQLite with RETURNING.
 */
export async function takeRotation(knex: Knex, groupId: number): Promise<number> {
  return onRow(
    `group_rotation has no row for group ${groupId}`,
    () => advanceRotation(knex, groupId),
    () => knex('group_rotation').insert({ group_id: groupId, next_index: 0 }).onConflict(['group_id']).ignore(),
  );
}

/**
 * One statement on a row that nearly always exists (`update`, null when it found none). On the
 * first use of a key, or after a DBA deleted the row, the row is created (`create`: INSERT IGNORE,
 * so a concurrent creator is harmless) and the statement runs once more.
 */
async function onRow<T>(missing: string, update: () => Promise<T | null>, create: () => Promise<unknown>): Promise<T> {
  const first = await update();
  if (first !== null) return first;
  await create();
  const again = await update();
  if (again === null) throw new Error(`${missing} right after it was created`);
  return again;
}

/** Advances the group's row and returns the position it held; null when there is no row. */
async function advanceRotation(knex: Knex, groupId: number): Promise<number | null> {
  if (dbKind(knex) === 'mysql') {
    const result: unknown = await withLockRetry(() => knex.raw('UPDATE group_rotation SET next_index = LAST_INSERT_ID(next_index + 1) WHERE group_id = ?', [groupId]));
    if (rawChanges(result) === 0) return null;
    return rawInsertId(result) - 1;
  }
  await writesClear(knex);
  const rows = await rawRows<{ next_index: number | string }>(knex, 'UPDATE group_rotation SET next_index = next_index + 1 WHERE group_id = ? RETURNING next_index', [groupId]);
  return rows.length === 0 ? null : Number(rows[0].next_index) - 1;
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
