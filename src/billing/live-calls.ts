/**
 * Live calls as the billing side sees them, and the pure arithmetic over them: what they have
 * cost so far, and when a tenant's calls together run through what it may still spend.
 */
import type { CallType } from '../domain/geo';
import { money, type Money } from '../domain/money';
import { costSoFar, type RateTerms } from '../domain/rating';
import { callCutPlan, CUT_GUARD_S } from './rate-cdr';

/** One call this daemon controls right now (CallServer.liveCalls()). */
export interface LiveCall {
  readonly uuid: string;
  readonly tenantId: number;
  /** When the call arrived; its CDR's started_at (which period it counts in). Default: answeredAt, else now. */
  readonly startedAt?: Date;
  /** null until a destination (or the system, for voicemail) answered. */
  readonly answeredAt: Date | null;
  readonly callType: CallType;
  /** null: the call is free. */
  readonly rate: RateTerms | null;
  /** Counted in tenant_usage.calls by the admission check (default true). */
  readonly admitted?: boolean;
  /** Legs paid at `rate` (rate-cdr.ts billedLegs: 2 for a click-to-call); default 1. */
  readonly legs?: 1 | 2;
  /** An event-locked prompt of ours is pending on the call: a warning is mixed in, not queued (warning.ts). */
  readonly promptLocked?: boolean;
}

type Priced = Pick<LiveCall, 'rate' | 'answeredAt' | 'legs'>;

export interface LiveCallSource {
  liveCalls(): readonly LiveCall[];
}

/** What an answered call has cost at `at`: every leg it pays for (a click-to-call's two); spendingCost's arithmetic. */
export function liveCost(call: Priced, at: Date): Money {
  if (call.answeredAt === null) return money(0);
  return money(spendingCost({ rate: call.rate, answeredAtMs: call.answeredAt.getTime(), legs: call.legs }, at.getTime()));
}

export function totalLiveCost(calls: readonly Priced[], at: Date): Money {
  let sum = 0;
  for (const c of calls) sum += liveCost(c, at);
  return money(sum);
}

/** A tenant's answered call as the shared-money arithmetic sees it: `answeredAtMs` on any clock in ms, the same clock for all. */
export interface SpendingCall {
  readonly rate: RateTerms | null;
  readonly answeredAtMs: number;
  /** Legs paid at `rate` (billedLegs); default 1. */
  readonly legs?: 1 | 2;
}

/** What `call` has cost by `atMs` (its clock), all its legs; 0 when it is not charged (liveCost's too: one formula). */
export function spendingCost(call: SpendingCall, atMs: number): number {
  return call.rate === null ? 0 : costSoFar(call.rate, atMs - Math.floor(call.answeredAtMs)) * (call.legs ?? 1);
}

/** Past this (2^50 ms, 35,000 years of talk) the money is taken never to run out. */
const NEVER_MS = 2 ** 50;

/**
 * When answered calls that spend one tenant's money (`budget`: its headroom, what it may still
 * spend) must be cut so that together they are never charged more than it: `guardS` before the
 * last whole second they can all afford ends, as for one call (callCutPlan: a lone call's cut is
 * exactly its plan). The instant is on the calls' clock, never before the last of them was
 * answered (the cut may already be due); null when the money never runs out (free calls).
 *
 * One decision for both guards: the session's (src/calls/spend-guard.ts, the tenant's calls on
 * this daemon, planned again whenever one of them is answered) and the live-call job's
 * (live-guard.ts, its calls on every daemon, once a minute).
 */
export function sharedCutAt(calls: readonly SpendingCall[], budget: Money, guardS: number = CUT_GUARD_S): number | null {
  const spending = calls.filter((c): c is SpendingCall & { rate: RateTerms } => c.rate !== null);
  if (spending.length === 0) return null;
  if (spending.length === 1) {
    // One call: the closed form (affordableBillsec), in O(1); the search below agrees with it.
    const [c] = spending;
    const cutAfterS = callCutPlan(c.rate, money(Math.floor(budget / (c.legs ?? 1))), { guardS }).cutAfterS;
    return cutAfterS === null ? null : Math.floor(c.answeredAtMs) + cutAfterS * 1000;
  }
  return searchedCutAt(spending, budget, guardS);
}

/**
 * sharedCutAt by search, for any number of calls. Their cost only grows and changes only on
 * whole milliseconds (each call's whole seconds from its answer, answers floored to the ms), so a
 * binary search over whole milliseconds finds the first instant it exceeds the budget exactly.
 * Exported for the test that it agrees with the closed form for one call.
 */
export function searchedCutAt(calls: readonly SpendingCall[], budget: Money, guardS: number): number | null {
  const cost = (at: number): number => {
    let sum = 0;
    for (const c of calls) sum += spendingCost(c, at);
    return sum;
  };
  const from = Math.max(...calls.map((c) => Math.floor(c.answeredAtMs)));
  let overAt = from;
  if (cost(from) <= budget) {
    // Bracketed first by the calls' straight-line cost (linearBracket), checked exactly; else
    // from `from` in doubling steps. Then halved down to the millisecond.
    let within = from; // cost(within) ≤ budget
    let over: number | null = null; // cost(over) > budget
    const bracket = linearBracket(calls, budget, from);
    if (bracket) {
      if (bracket.within > from && cost(bracket.within) <= budget) within = bracket.within;
      if (cost(bracket.over) > budget) over = bracket.over;
    }
    if (over === null) {
      let step = 1000;
      while (cost(within + step) <= budget) {
        if (within + step - from >= NEVER_MS) return null;
        within += step;
        step *= 2;
      }
      over = within + step;
    }
    if (over - from >= NEVER_MS) return null;
    overAt = over;
    while (overAt - within > 1) {
      const mid = Math.floor((within + overAt) / 2);
      if (cost(mid) > budget) overAt = mid;
      else within = mid;
    }
  }
  // overAt: the first ms of the first second they cannot afford; the second before it is the last
  // they can, and the cut comes guardS before that one ends.
  return Math.max(from, overAt - (guardS + 1) * 1000);
}

/**
 * Where the first instant the calls' cost exceeds `budget` lies, from their cost as straight
 * lines: each call's cost at X is at least connect fee + per_minute × ((X − answer) / 1000 − 1) / 60
 * (billsec loses under a second) and at most connect fee + per_minute × ((X − answer) / 1000 +
 * increment) / 60 + 1 unit (whole increments, rounded up). Between the instant the highest line
 * reaches the budget and the one the lowest passes it lies the answer: a span of about one
 * increment, where a search from `from` spans the whole call. Null when none is charged by the
 * time. The caller checks both ends exactly (a cost capped at MAX_MONEY
 * bends the lines).
 */
function linearBracket(calls: readonly SpendingCall[], budget: Money, from: number): { within: number; over: number } | null {
  let perMs = 0; // units a ms, all calls
  let low = 0; // the lowest line at 0
  let high = 0; // the highest line at 0
  for (const c of calls) {
    if (c.rate === null) continue;
    const legs = c.legs ?? 1;
    const answered = Math.floor(c.answeredAtMs);
    const slope = (c.rate.perMinute * legs) / 60_000;
    perMs += slope;
    low += c.rate.connectFee * legs - slope * (answered + 1000);
    high += c.rate.connectFee * legs - slope * (answered - c.rate.incrementS * 1000) + legs;
  }
  if (!(perMs > 0)) return null;
  const within = Math.floor((budget - high) / perMs) - 1;
  const over = Math.ceil((budget - low) / perMs) + 1;
  return Number.isSafeInteger(within) && Number.isSafeInteger(over) && over > Math.max(within, from) ? { within: Math.max(within, from), over } : null;
}

/**
 * For the live-call job, which plans by the wall clock in whole seconds: the first whole second
 * `t` in [0, horizonS] from `now` at which these calls are to be cut (sharedCutAt); 0 means at
 * once (already over), null not within the horizon.
 */
export function secondsUntilOverBudget(
  calls: readonly Priced[],
  budget: Money,
  now: Date,
  horizonS: number,
  guardS: number = CUT_GUARD_S,
): number | null {
  const answered: SpendingCall[] = [];
  // An answer stamped ahead of `now` (another daemon's clock) counts as now: never from later, which would put off a cut already due.
  for (const c of calls) if (c.answeredAt !== null) answered.push({ rate: c.rate, answeredAtMs: Math.min(c.answeredAt.getTime(), now.getTime()), legs: c.legs });
  const cutAt = sharedCutAt(answered, budget, guardS);
  if (cutAt === null) return null;
  const t = Math.max(0, Math.ceil((cutAt - now.getTime()) / 1000));
  return t > horizonS ? null : t;
}
