/**
 * One call's CDR from what the session gathered (facts, FreeSWITCH's final event, the daemon's
 * clock readings). `callCdr` never throws: times come from cdr-times.ts (validated, the daemon's
 * clock where FreeSWITCH's values cannot be taken), and if anything else fails while the CDR is
 * built (rating, a click-to-call leg, a bug), the call still gets a CDR — with what is certainly
 * known (call UUID, tenant, numbers, the daemon's times), outcome `failed` and the reason in
 * `failure_reason`.
 */
import { rateCdr } from '../billing/rate-cdr';
import { addClickToCall } from '../clicktocall/cdr';
import type { ClickToCallLeg } from '../clicktocall/leg';
import type { CdrRecord } from '../cdr/record';
import { toDbTimestamp } from '../db/connect';
import type { CallerGeo } from '../domain/geo';
import type { ConfigSnapshot } from '../snapshot/types';
import type { CallFacts } from './call';
import { cdrTimes, type HeaderLookup, type OwnReadings } from './cdr-times';
import { callerGeo } from './plan';

export interface CdrInput {
  readonly uuid: string;
  /** The access number as dialled (digits and + are kept). */
  readonly dialed: string;
  /** The caller, normalised (src/domain/caller-number.ts). */
  readonly caller: string;
  readonly facts: CallFacts;
  /** FreeSWITCH's headers: the final CHANNEL_HANGUP_COMPLETE first, then the channel data. */
  readonly header: HeaderLookup;
  readonly own: OwnReadings;
  /** The hang-up cause the channel saw first (CHANNEL_HANGUP), if any. */
  readonly hangupCause: string | null;
  /** The code of the daemon's own reason for dropping the socket (ESL_FRAME_TOO_LARGE …), used when FreeSWITCH gave no cause. */
  readonly failureCode?: string | null;
  readonly node: string;
  readonly snapshot: Pick<ConfigSnapshot, 'rates'>;
  /** Set once the call was identified: how to rate it. */
  readonly rating: { readonly geo: CallerGeo; readonly homeAreaCode: string | null } | null;
  readonly leg: ClickToCallLeg | null;
}

export interface BuiltCdr {
  readonly cdr: CdrRecord;
  /** FreeSWITCH values that were not taken (header names), for a log line. */
  readonly rejected: readonly string[];
  /** Why the full CDR could not be built (the CDR is then the fallback one), else null. */
  readonly failure: string | null;
}

/** Q.850 cause names as FreeSWITCH spells them; anything else from the wire is not kept. */
const HANGUP_CAUSE = /^[A-Z][A-Z0-9_]{0,63}$/;

function causeOf(input: CdrInput): string | null {
  for (const c of [input.hangupCause, input.header('Hangup-Cause'), input.failureCode]) if (c !== null && c !== undefined && HANGUP_CAUSE.test(c)) return c;
  return null;
}

function accessNumberOf(dialed: string): string {
  return dialed.replace(/[^0-9+]/g, '').slice(0, 32);
}

function regionText(geo: CallerGeo | null): string | null {
  if (!geo) return null;
  return geo.description ?? geo.country ?? null;
}

/** The full CDR; may throw (callCdr catches). */
export function buildCallCdr(input: CdrInput): { cdr: CdrRecord; rejected: readonly string[] } {
  const { facts } = input;
  const times = cdrTimes(input.header, input.own);
  const cdr: CdrRecord = {
    call_uuid: input.uuid,
    tenant_id: facts.tenantId,
    access_number: accessNumberOf(input.dialed),
    caller: input.caller,
    caller_region: regionText(facts.geo),
    started_at: toDbTimestamp(times.started),
    answered_at: times.answered ? toDbTimestamp(times.answered) : null,
    ended_at: toDbTimestamp(times.ended),
    duration_s: times.durationS,
    billsec: times.billsec,
    outcome: facts.outcome,
    hangup_cause: causeOf(input),
    answered_by: facts.answeredBy,
    group_id: facts.groupId,
    ivr_path: facts.ivrPath.length > 0 ? facts.ivrPath.join('>') : null,
    cost: null,
    recording_path: facts.recordingPath,
    node: input.node,
    admitted: facts.admitted,
    failure_reason: facts.failureReason,
  };
  if (input.rating) {
    const rated = rateCdr(input.snapshot, cdr, input.rating.geo, input.rating.homeAreaCode);
    cdr.cost = rated.cost;
    cdr.call_type = rated.callType;
  }
  // The visitor leg too: origin, widget, ring time, and its cost added (the tenant pays both legs).
  if (input.leg) addClickToCall(cdr, input.leg, input.snapshot, input.rating?.geo ?? callerGeo(input.caller), input.rating?.homeAreaCode ?? null);
  return { cdr, rejected: times.rejected };
}

/** A reason fit for the failure_reason column: printable ASCII, at most 255 characters. */
export function failureText(prefix: string, err: unknown): string {
  const e = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return `${prefix}: ${e}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 255);
}

function safeTimestamp(d: Date): string {
  return Number.isFinite(d.getTime()) ? toDbTimestamp(d) : toDbTimestamp(new Date());
}

/**
 * The CDR of a call whose full CDR could not be built: only values that cannot fail, the daemon's
 * own times, outcome failed, no cost (the tenant is not charged for what cannot be computed).
 */
export function fallbackCdr(input: CdrInput, reason: string): CdrRecord {
  const { facts, own } = input;
  const started = own.accepted;
  const ended = own.now.getTime() >= started.getTime() ? own.now : started;
  const seconds = Math.max(0, Math.round((ended.getTime() - started.getTime()) / 1000));
  return {
    call_uuid: input.uuid,
    tenant_id: facts.tenantId,
    access_number: accessNumberOf(input.dialed),
    caller: input.caller,
    caller_region: null,
    started_at: safeTimestamp(started),
    answered_at: null,
    ended_at: safeTimestamp(ended),
    duration_s: Number.isFinite(seconds) ? seconds : 0,
    billsec: 0,
    outcome: 'failed',
    hangup_cause: null,
    answered_by: facts.answeredBy,
    group_id: facts.groupId,
    ivr_path: null,
    cost: null,
    recording_path: facts.recordingPath,
    node: input.node,
    admitted: facts.admitted,
    failure_reason: reason,
    ...(input.leg ? { origin: 'click_to_call' as const, widget_id: input.leg.widgetId } : {}),
  };
}

/** The call's CDR, whatever happens: the full one, or the fallback with the reason. Never throws. */
export function callCdr(input: CdrInput): BuiltCdr {
  try {
    const { cdr, rejected } = buildCallCdr(input);
    return { cdr, rejected, failure: null };
  } catch (err) {
    const failure = failureText('CDR could not be built', err);
    return { cdr: fallbackCdr(input, failure), rejected: [], failure };
  }
}
