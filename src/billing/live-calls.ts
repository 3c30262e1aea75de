/**
 * Live calls as the billing side sees them, and the pure arithmetic over them: what they have
 * cost so far, and when a tenant's calls together run through what it may still spend.
 */
import type { CallType } from '../domain/geo';
import { money, type Money } from '../domain/money';
import { costSoFar, type RateTerms } from '../domain/rating';

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

/** What an answered call has cost at `at`: every leg it pays for (a click-to-call's two). */
export function liveCost(call: Priced, at: Date): Money {
  if (call.rate === null || call.answeredAt === null) return money(0);
  return money(costSoFar(call.rate, at.getTime() - call.answeredAt.getTime()) * (call.legs ?? 1));
}

export function totalLiveCost(calls: readonly Priced[], at: Date): Money {
  let sum = 0;
  for (const c of calls) sum += liveCost(c, at);
  return money(sum);
}

/**
 * The first whole second `t` in [0, horizonS] at which these calls together, `guardS` seconds
 * later, will have cost more than `budget`; null when that does not happen within the horizon.
 * 0 means: already over. Cost only ever grows, so a binary search finds it.
 */
export function secondsUntilOverBudget(
  calls: readonly Priced[],
  budget: Money,
  now: Date,
  horizonS: number,
  guardS: number,
): number | null {
  const over = (t: number): boolean => totalLiveCost(calls, new Date(now.getTime() + (t + guardS) * 1000)) > budget;
  if (over(0)) return 0;
  if (!over(horizonS)) return null;
  let lo = 0; // not over
  let hi = horizonS; // over
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (over(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
