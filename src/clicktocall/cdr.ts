/**
 * What a click-to-call adds to its CDR (pure), and the CDR of an attempt that never reached the
 * call flow (the visitor was busy, did not answer or could not be reached): exactly one CDR per
 * attempt, keyed by the call UUID we chose as origination_uuid, written through the CdrWriter's
 * spool like every other (idempotent by call_uuid).
 *
 * Outcome of an attempt whose visitor never came on the line: `abandoned` — the outcome describes
 * the call to the tenant, and none took place (no missed-call notification, no busy or no-answer
 * charged to the tenant's phones); the visitor's own result is in hangup_cause and in
 * click_to_call_requests.visitor_result.
 */
import { callPricing, rateVisitorLeg } from '../billing/rate-cdr';
import type { CdrRecord } from '../cdr/record';
import { toDbTimestamp } from '../db/connect';
import { formatMoney, parseMoney, money } from '../domain/money';
import type { CallerGeo } from '../domain/geo';
import type { ConfigSnapshot } from '../snapshot/types';
import type { ClickToCallLeg } from './leg';

/**
 * A visitor leg's CDR, as the session built it for the call to the tenant (answered_at/billsec are
 * the channel's own: the visitor's leg), plus the visitor leg: its ring time and its cost, which
 * is added to cost — the tenant pays both legs.
 */
export function addClickToCall(cdr: CdrRecord, leg: ClickToCallLeg, snapshot: Pick<ConfigSnapshot, 'rates'>, visitor: CallerGeo, homeAreaCode: string | null): CdrRecord {
  cdr.origin = 'click_to_call';
  cdr.widget_id = leg.widgetId;
  cdr.visitor_ring_s = leg.visitorRingS === null ? null : Math.round(leg.visitorRingS);
  if (cdr.tenant_id === null) return cdr;
  const visitorLeg = rateVisitorLeg(snapshot, cdr.tenant_id, visitor, homeAreaCode, cdr.billsec, cdr.answered_at !== null);
  cdr.visitor_cost = visitorLeg.cost;
  cdr.cost = formatMoney(money((cdr.cost === null ? 0 : parseMoney(cdr.cost)) + visitorLeg.costUnits));
  cdr.call_type ??= visitorLeg.callType;
  return cdr;
}

export interface UnansweredAttempt {
  callUuid: string;
  tenantId: number;
  widgetId: number;
  accessNumber: string;
  homeAreaCode: string | null;
  visitor: string;
  visitorGeo: CallerGeo;
  requestedAt: Date;
  endedAt: Date;
  /** FreeSWITCH's originate cause (USER_BUSY, NO_ANSWER, UNALLOCATED_NUMBER …). */
  cause: string;
  /** abandoned: the visitor never came on the line; failed: the platform lost the attempt. */
  outcome: 'abandoned' | 'failed';
  node: string;
}

export function unansweredAttemptCdr(a: UnansweredAttempt, snapshot: Pick<ConfigSnapshot, 'rates'>): CdrRecord {
  const seconds = Math.max(0, Math.round((a.endedAt.getTime() - a.requestedAt.getTime()) / 1000));
  return {
    call_uuid: a.callUuid,
    tenant_id: a.tenantId,
    access_number: a.accessNumber,
    caller: a.visitor,
    caller_region: a.visitorGeo.description ?? a.visitorGeo.country ?? null,
    started_at: toDbTimestamp(a.requestedAt),
    answered_at: null,
    ended_at: toDbTimestamp(a.endedAt),
    duration_s: seconds,
    billsec: 0,
    outcome: a.outcome,
    hangup_cause: a.cause,
    answered_by: null,
    group_id: null,
    ivr_path: null,
    cost: '0.0000',
    recording_path: null,
    node: a.node,
    admitted: false,
    call_type: callPricing(snapshot, a.tenantId, a.visitorGeo, a.homeAreaCode).callType,
    origin: 'click_to_call',
    widget_id: a.widgetId,
    visitor_ring_s: seconds,
    visitor_cost: '0.0000',
  };
}
