/**
 * What the call session calls to price a call, pure (snapshot, call facts, clock in; no I/O):
 *
 *  - at identification: `callPricing(snapshot, tenantId, callerGeo, accessNumber.homeAreaCode)`
 *    gives the call type and the rate; keep both on the live call (CallServer.liveCalls()).
 *  - when the call is answered: `callCutPlan(pricing.rate, headroom)` with the headroom from
 *    `readSpendHeadroom()` (usage.ts) says when to warn and when to cut one call, counted from the
 *    answer; the tenant's calls together: live-calls.ts `sharedCutAt` (src/calls/spend-guard.ts):
 *    at `warnAfterS` the warning (`bgapi uuid_broadcast <uuid> <warningPrompt> both` on the call's
 *    own socket), at `cutAfterS` `channel.kill(CUT_HANGUP_CAUSE)` (`api uuid_kill`, at once
 *    whatever plays). Or poll `runningCostExceedsBalance()`.
 *  - at the end: `rateCdr(snapshot, cdr, callerGeo, homeAreaCode)` → put `cost` and `call_type`
 *    on the CdrRecord before it is spooled. The CDR writer applies the cost to tenant_usage and
 *    the balance exactly once, in the transaction that inserts the CDR.
 */
import path from 'node:path/posix';
import type { CdrRecord } from '../cdr/record';
import type { Settings } from '../config';
import { callType as classify, type CallerGeo, type CallType } from '../domain/geo';
import { formatMoney, money, type Money } from '../domain/money';
import { affordableBillsec, chooseRate, costSoFar, rateCallCapped, type RateTerms } from '../domain/rating';
import type { ConfigSnapshot, Rate } from '../snapshot/types';

/** Outcomes the tenant pays for (when answered): a conversation, or a message left. */
export const BILLABLE_OUTCOMES: ReadonlySet<string> = new Set(['answered', 'voicemail']);

/**
 * Legs the tenant pays for at the call's rate: a click-to-call is two (the platform's call to the
 * visitor, whose cost src/clicktocall/cdr.ts adds to the CDR at the same rate, and the call to the
 * tenant), every other call one. The session's spend guard and the live-call jobs (liveCost:
 * the node-local guard, the caps recount) price a live call with it, as the CDR will.
 */
export function billedLegs(clickToCall: boolean): 1 | 2 {
  return clickToCall ? 2 : 1;
}

/** Hang-up cause when a call is cut because its money ran out (Q.850 52). */
export const CUT_HANGUP_CAUSE = 'OUTGOING_CALL_BARRED';

/**
 * The announcement played before a cut: the system prompt `capped` ("该号码暂时无法接通") until a
 * dedicated `credit_low` prompt joins the system prompt contract.
 */
export function warningPrompt(settings: Pick<Settings, 'prompts'>): string {
  return path.join(settings.prompts.systemDir, 'capped.wav');
}

export interface CallPricing {
  readonly callType: CallType;
  /** null: no rate for this tenant and call type, the call is free. */
  readonly rate: Rate | null;
}

export function callPricing(snapshot: Pick<ConfigSnapshot, 'rates'>, tenantId: number | null, caller: CallerGeo, accessNumberHomeArea: string | null): CallPricing {
  const type = classify(caller, accessNumberHomeArea);
  return { callType: type, rate: chooseRate(snapshot.rates, tenantId, type) };
}

export interface RatedCdr extends CallPricing {
  /** cdrs.cost as DECIMAL text ('0.3000'). */
  readonly cost: string;
  readonly costUnits: Money;
  /** The cost was cut to what DECIMAL(14,4) holds (the CDR writer logs and counts it). */
  readonly capped: boolean;
}

/**
 * Rates a finished call. Billable: answered (answered_at set) with outcome answered or voicemail;
 * anything else costs 0 (an announcement, a blocked, capped or PIN-failed caller is never charged).
 */
export function rateCdr(
  snapshot: Pick<ConfigSnapshot, 'rates'>,
  cdr: Pick<CdrRecord, 'tenant_id' | 'answered_at' | 'billsec' | 'outcome'>,
  caller: CallerGeo,
  accessNumberHomeArea: string | null,
): RatedCdr {
  const pricing = callPricing(snapshot, cdr.tenant_id, caller, accessNumberHomeArea);
  const billable = cdr.tenant_id !== null && cdr.answered_at !== null && BILLABLE_OUTCOMES.has(cdr.outcome);
  const { cost: costUnits, capped } = billable && pricing.rate ? rateCallCapped(pricing.rate, cdr.billsec, true) : { cost: money(0), capped: false };
  return { ...pricing, cost: formatMoney(costUnits), costUnits, capped };
}

/**
 * A click-to-call's outgoing visitor leg (the platform called the visitor): rated as an outgoing
 * call of its call type for the seconds the visitor was on the line, whatever became of the call
 * to the tenant (src/clicktocall/cdr.ts adds it to the CDR's cost).
 */
export function rateVisitorLeg(snapshot: Pick<ConfigSnapshot, 'rates'>, tenantId: number, visitor: CallerGeo, accessNumberHomeArea: string | null, billsec: number, answered: boolean): RatedCdr {
  const pricing = callPricing(snapshot, tenantId, visitor, accessNumberHomeArea);
  const { cost: costUnits, capped } = answered && pricing.rate ? rateCallCapped(pricing.rate, billsec, true) : { cost: money(0), capped: false };
  return { ...pricing, cost: formatMoney(costUnits), costUnits, capped };
}

/** Seconds of margin for ESL latency: cut this long before the money runs out. */
export const CUT_GUARD_S = 2;
/** Warn this long before the cut. */
export const WARN_BEFORE_S = 30;

export interface CutPlan {
  /** Seconds after answer to play the warning; null = never needed. */
  readonly warnAfterS: number | null;
  /** Seconds after answer to hang up; null = the money never runs out. */
  readonly cutAfterS: number | null;
}

/**
 * When to warn and cut one answered call, given what the tenant may still spend (`headroom`,
 * null = unlimited). The cut comes `guardS` before the last affordable increment ends, so the
 * billsec FreeSWITCH reports (whole seconds, rounded down) never reaches the next increment.
 */
export function callCutPlan(rate: RateTerms | null, headroom: Money | null, opts: { guardS?: number; warnBeforeS?: number } = {}): CutPlan {
  if (rate === null || headroom === null) return { warnAfterS: null, cutAfterS: null };
  const affordable = affordableBillsec(rate, headroom);
  if (affordable === Infinity) return { warnAfterS: null, cutAfterS: null };
  const cut = Math.max(0, affordable - (opts.guardS ?? CUT_GUARD_S));
  return { warnAfterS: Math.max(0, cut - (opts.warnBeforeS ?? WARN_BEFORE_S)), cutAfterS: cut };
}

/**
 * The nibblebill check, for polling during a bridge: would the call, `guardS` seconds from now,
 * have cost more than `headroom`? (headroom null = unlimited; a call not answered costs nothing.)
 */
export function runningCostExceedsBalance(
  rate: RateTerms | null,
  answeredAt: Date | null,
  now: Date,
  headroom: Money | null,
  guardS: number = CUT_GUARD_S,
): boolean {
  if (rate === null || answeredAt === null || headroom === null) return false;
  return costSoFar(rate, now.getTime() - answeredAt.getTime() + guardS * 1000) > headroom;
}
