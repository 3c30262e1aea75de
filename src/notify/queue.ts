/**
 * Queues a missed-call notification (未接来电提醒) in the `notifications` outbox for a call no
 * person answered. Only an INSERT: delivery is the dispatcher's job, so a call never waits for an
 * SMS gateway or a mail server. Idempotent by (call_uuid, channel) (a unique index): a CDR
 * replayed from the spool never queues a second message.
 */
import type { Knex } from 'knex';
import { DateTime } from 'luxon';
import type { CdrRecord } from '../cdr/record';
import { dbKind, fromDbTimestamp, toDbTimestamp } from '../db/connect';
import type { Outcome } from '../metrics';
import type { Tenant } from '../snapshot/types';
import { type NotifyChannel, notifyTarget } from './target';

export { NOTIFY_CHANNELS, notifyTarget, type NotifyChannel } from './target';

/** What the dispatcher sends; stored as JSON text in notifications.payload. */
export interface MissedCallPayload {
  /** The caller's number, or '' when it was not a plain number (anonymous, junk from the network). */
  readonly caller: string;
  readonly accessNumber: string;
  /** When the call came in, in the tenant's timezone: 'YYYY-MM-DD HH:mm'. */
  readonly time: string;
  readonly timezone: string;
  /** The same instant, UTC ISO 8601. */
  readonly startedAt: string;
  readonly outcome: Outcome;
  /** The message, in Chinese: 未接来电：13912345678 于 2026-11-21 20:05 致电 4001012345（无人接听） */
  readonly text: string;
}

const OUTCOME_TEXT: Partial<Record<Outcome, string>> = {
  no_answer: '无人接听',
  busy: '坐席忙',
  abandoned: '来电者已挂机',
  voicemail: '已留言',
};

/**
 * Not answered by a person: no answer, busy, voicemail, and a caller who hung up while the
 * phones rang or in the queue (abandoned with a group: a caller who hung up during the greeting
 * or the PIN prompt never reached anyone to miss). Blocked, capped, PIN failures, announcements
 * and failures are the platform's doing, not a missed call.
 */
export function isMissedCall(cdr: Pick<CdrRecord, 'outcome' | 'group_id'>): boolean {
  switch (cdr.outcome) {
    case 'no_answer':
    case 'busy':
    case 'voicemail':
      return true;
    case 'abandoned':
      return cdr.group_id !== null;
    default:
      return false;
  }
}

/** The payload for one missed call (pure). */
export function missedCallPayload(tenant: Pick<Tenant, 'timezone'>, cdr: CdrRecord): MissedCallPayload {
  const started = fromDbTimestamp(cdr.started_at) ?? new Date(0);
  let local = DateTime.fromJSDate(started, { zone: tenant.timezone });
  if (!local.isValid) local = DateTime.fromJSDate(started, { zone: 'Asia/Shanghai' });
  const time = local.toFormat('yyyy-MM-dd HH:mm');
  const caller = /^\+?[0-9]{1,32}$/.test(cdr.caller) ? cdr.caller : '';
  const outcome = OUTCOME_TEXT[cdr.outcome];
  const text = `未接来电：${caller || '未知号码'} 于 ${time} 致电 ${cdr.access_number}${outcome ? `（${outcome}）` : ''}`;
  return {
    caller,
    accessNumber: cdr.access_number,
    time,
    timezone: local.zoneName ?? tenant.timezone,
    startedAt: started.toISOString(),
    outcome: cdr.outcome,
    text,
  };
}

export interface MissedCall {
  readonly tenant: Pick<Tenant, 'id' | 'timezone' | 'missedCallNotify'>;
  readonly cdr: CdrRecord;
}

export interface Queued {
  readonly callUuid: string;
  readonly channel: NotifyChannel;
  readonly recipient: string;
}

/**
 * Queues a notification when the call was missed and the tenant has a usable missed_call_notify.
 * Returns what was queued (or would have been, if it already was), null when nothing applies.
 * `knex` may be a transaction: the call path can queue in the transaction that writes the CDR.
 * Due at once (next_attempt_at = the call's end); `now` overrides that.
 */
export async function queueMissedCall(knex: Knex | Knex.Transaction, call: MissedCall & { now?: Date }): Promise<Queued | null> {
  const [queued] = await queueMissedCalls(knex, [call], call.now);
  return queued ?? null;
}

/** queueMissedCall for a batch of CDRs (the CDR writer's batches): one multi-row INSERT. */
export async function queueMissedCalls(knex: Knex | Knex.Transaction, calls: readonly MissedCall[], now?: Date): Promise<Queued[]> {
  const rows: Array<Record<string, unknown>> = [];
  const queued: Queued[] = [];
  const seen = new Set<string>();
  for (const { tenant, cdr } of calls) {
    if (cdr.tenant_id !== tenant.id || !isMissedCall(cdr)) continue;
    const target = notifyTarget(tenant.missedCallNotify);
    if (!target) continue;
    const key = `${cdr.call_uuid}\u0000${target.channel}`;
    if (seen.has(key)) continue; // the same call twice in one batch
    seen.add(key);
    const due = now ?? fromDbTimestamp(cdr.ended_at) ?? new Date(0);
    rows.push({
      tenant_id: tenant.id,
      call_uuid: cdr.call_uuid,
      channel: target.channel,
      recipient: target.recipient,
      payload: JSON.stringify(missedCallPayload(tenant, cdr)),
      status: 'pending',
      attempts: 0,
      next_attempt_at: toDbTimestamp(due),
    });
    queued.push({ callUuid: cdr.call_uuid, ...target });
  }
  if (rows.length === 0) return [];
  const insert = knex('notifications').insert(rows).onConflict(['call_uuid', 'channel']);
  // MySQL: a no-op ON DUPLICATE KEY UPDATE rather than INSERT IGNORE, which would also turn data
  // errors into warnings (as the CDR writer does). SQLite: ON CONFLICT DO NOTHING.
  await (dbKind(knex as Knex) === 'mysql' ? insert.merge(['call_uuid']) : insert.ignore());
  return queued;
}

/**
 * Pairs CDRs with their tenants from the snapshot in force (CDRs without a tenant, or of a tenant
 * no longer in it, are left out): `queueMissedCalls(trx, missedCallsOf(store.current.tenants, fresh))`.
 */
export function missedCallsOf(tenants: ReadonlyMap<number, MissedCall['tenant']>, cdrs: readonly CdrRecord[]): MissedCall[] {
  const out: MissedCall[] = [];
  for (const cdr of cdrs) {
    const tenant = cdr.tenant_id === null ? undefined : tenants.get(cdr.tenant_id);
    if (tenant) out.push({ tenant, cdr });
  }
  return out;
}
