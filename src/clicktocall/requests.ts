/**
 * click_to_call_requests: where each accepted click is, in the database, so any daemon answers
 * GET /v1/click-to-call/:id and the state survives restarts. Status only moves forward
 * (dialing → visitor_answered → connecting → connected → ended): every change is a conditional
 * UPDATE on the statuses it may come from, so a late or duplicate event (the BACKGROUND_JOB after
 * the socket, a sweeper after the call) can never move a request back.
 */
import type { Knex } from 'knex';
import { fromDbTimestamp, toDbTimestamp } from '../db/connect';

export const REQUEST_STATUSES = ['dialing', 'visitor_answered', 'connecting', 'connected', 'ended'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];
export const VISITOR_RESULTS = ['answered', 'busy', 'no_answer', 'unreachable', 'failed'] as const;
export type VisitorResult = (typeof VISITOR_RESULTS)[number];

/** What a request is, fixed when it is made. */
interface RequestIdentity {
  requestId: string;
  callUuid: string;
  widgetId: number;
  tenantId: number;
  accessNumber: string;
  visitorNumber: string;
}

export interface NewRequest extends RequestIdentity {
  clientAddress: string | null;
  webOrigin: string | null;
  node: string;
  requestedAt: Date;
}

export interface RequestRow extends RequestIdentity {
  status: RequestStatus;
  visitorResult: VisitorResult | null;
  outcome: string | null;
  hangupCause: string | null;
  requestedAt: Date;
  visitorAnsweredAt: Date | null;
  connectedAt: Date | null;
  endedAt: Date | null;
  /** Ended by the daemon, which owes its CDR and has not spooled it yet (endAttempt). */
  cdrPending: boolean;
}

export async function insertRequest(knex: Knex, r: NewRequest): Promise<void> {
  await knex('click_to_call_requests').insert({
    request_id: r.requestId,
    call_uuid: r.callUuid,
    widget_id: r.widgetId,
    tenant_id: r.tenantId,
    access_number: r.accessNumber,
    visitor_number: r.visitorNumber,
    client_address: r.clientAddress?.slice(0, 64) ?? null,
    web_origin: r.webOrigin?.slice(0, 255) ?? null,
    status: 'dialing',
    node: r.node.slice(0, 64),
    requested_at: toDbTimestamp(r.requestedAt),
  });
}

/** The statuses a request may be in before reaching `to`. */
function before(to: RequestStatus): RequestStatus[] {
  return REQUEST_STATUSES.slice(0, REQUEST_STATUSES.indexOf(to));
}

/** What a move of a request sets besides its status. */
interface RequestFields {
  connectedAt?: Date;
  endedAt?: Date;
  visitorResult?: VisitorResult;
  outcome?: string;
  hangupCause?: string | null;
}

/** The columns a move to `to` writes: the status, and each field given, cut to its column. */
function requestColumns(to: RequestStatus, fields: RequestFields): Record<string, unknown> {
  const set: Record<string, unknown> = { status: to };
  if (fields.visitorResult !== undefined) set.visitor_result = fields.visitorResult;
  if (fields.outcome !== undefined) set.outcome = fields.outcome.slice(0, 16);
  if (fields.hangupCause !== undefined) set.hangup_cause = fields.hangupCause?.slice(0, 64) ?? null;
  if (fields.connectedAt) set.connected_at = toDbTimestamp(fields.connectedAt);
  if (fields.endedAt) set.ended_at = toDbTimestamp(fields.endedAt);
  return set;
}

/** Moves a request forward to `to` (with extra columns); false when it was already there or past it. */
export async function advanceRequest(
  knex: Knex,
  requestId: string,
  to: Exclude<RequestStatus, 'dialing'>,
  fields: RequestFields & { visitorAnsweredAt?: Date | null } = {},
): Promise<boolean> {
  const changed = await knex('click_to_call_requests').where({ request_id: requestId }).whereIn('status', before(to)).update(requestColumns(to, fields));
  // The answer time is kept by whoever learns it first (the BACKGROUND_JOB or the socket).
  if (fields.visitorAnsweredAt) {
    await knex('click_to_call_requests').where({ request_id: requestId }).whereNull('visitor_answered_at').update({ visitor_answered_at: toDbTimestamp(fields.visitorAnsweredAt) });
  }
  return changed > 0;
}

/**
 * The statuses in which nobody is talking yet: the visitor rings, or answered and no call session
 * took the leg. Only these may be ended by the dialer (its CDR), never a call a session serves.
 */
export const UNSERVED_STATUSES = ['dialing', 'visitor_answered'] as const satisfies readonly RequestStatus[];

/**
 * Ends an attempt that never reached the call flow, only from an unserved status (a session that
 * took the leg meanwhile keeps it and its CDR), and marks its CDR as owed by the daemon
 * (cdr_pending) in the same UPDATE: false when the request was not in an unserved status.
 */
export async function endAttempt(
  knex: Knex,
  requestId: string,
  fields: { endedAt: Date; visitorResult: VisitorResult; outcome: 'abandoned' | 'failed'; hangupCause: string | null },
): Promise<boolean> {
  const changed = await knex('click_to_call_requests')
    .where({ request_id: requestId })
    .whereIn('status', UNSERVED_STATUSES)
    .update({ ...requestColumns('ended', fields), cdr_pending: true });
  return changed > 0;
}

/** The attempt's CDR is spooled (or already in cdrs): nobody owes it any more. */
export async function clearCdrPending(knex: Knex, requestId: string): Promise<void> {
  await knex('click_to_call_requests').where({ request_id: requestId, cdr_pending: true }).update({ cdr_pending: false });
}

/** Ended attempts whose CDR is still owed, ended before `cutoff` (the sweeper rebuilds them). */
export async function owedCdrRequests(knex: Knex, cutoff: Date, limit = 100): Promise<RequestRow[]> {
  const rows = (await knex('click_to_call_requests')
    .where({ cdr_pending: true })
    .andWhere('ended_at', '<', toDbTimestamp(cutoff))
    .orderBy('id')
    .limit(limit)) as Array<Record<string, unknown>>;
  return rows.map(toRow);
}

export async function readRequest(knex: Knex, requestId: string): Promise<RequestRow | null> {
  const row = (await knex('click_to_call_requests').where({ request_id: requestId }).first()) as Record<string, unknown> | undefined;
  return row ? toRow(row) : null;
}

/** Requests still in one of `statuses` that were made before `cutoff` (the sweeper's work). */
export async function staleRequests(knex: Knex, statuses: readonly RequestStatus[], cutoff: Date, limit = 100): Promise<RequestRow[]> {
  const rows = (await knex('click_to_call_requests')
    .whereIn('status', statuses)
    .andWhere('requested_at', '<', toDbTimestamp(cutoff))
    .orderBy('id')
    .limit(limit)) as Array<Record<string, unknown>>;
  return rows.map(toRow);
}

function toRow(r: Record<string, unknown>): RequestRow {
  const date = (v: unknown): Date | null => fromDbTimestamp(v as string | Date | null);
  return {
    requestId: String(r.request_id),
    callUuid: String(r.call_uuid),
    widgetId: Number(r.widget_id),
    tenantId: Number(r.tenant_id),
    accessNumber: String(r.access_number),
    visitorNumber: String(r.visitor_number),
    status: r.status as RequestStatus,
    visitorResult: (r.visitor_result as VisitorResult | null) ?? null,
    outcome: (r.outcome as string | null) ?? null,
    hangupCause: (r.hangup_cause as string | null) ?? null,
    requestedAt: date(r.requested_at) ?? new Date(0),
    visitorAnsweredAt: date(r.visitor_answered_at),
    connectedAt: date(r.connected_at),
    endedAt: date(r.ended_at),
    cdrPending: Boolean(Number(r.cdr_pending ?? 0)),
  };
}
