/**
 * Rating: what a call costs the tenant (SPEC step 14). Pure and exact: money is an integer count
 * of 1/10000 currency units (money.ts) and every product is taken in BigInt, so no float ever
 * touches a price.
 *
 * The rule, for an answered call of `billsec` seconds at a rate (per_minute, increment_s,
 * connect_fee):
 *   billed seconds = billsec rounded UP to a whole number of increments (7 s at 6 s → 12 s,
 *                    61 s at 60 s → 120 s; 0 s → 0);
 *   time charge    = per_minute × billed seconds / 60, rounded UP to the next 1/10000 when it is
 *                    not a whole 1/10000 (only possible with increments under 60 s and a price
 *                    that uses the fourth decimal, e.g. 0.1234/min for 6 s = 0.01234 → 0.0124);
 *   cost           = connect_fee + time charge.
 * Rounding each call up (never down, never to-even) matches the increments: the carrier never
 * bills less than the time used, and re-rating a CDR always gives the same amount.
 */
import type { Rate } from '../snapshot/types';
import type { CallType } from './geo';
import { MAX_MONEY, money, type Money } from './money';

export type RateTerms = Pick<Rate, 'perMinute' | 'incrementS' | 'connectFee'>;

/**
 * The rate for a call: the tenant's own rate for that call type, else the default rate
 * (tenant_id NULL) for it, else null (no rate: the call costs nothing). Should a list hold two of
 * one (the snapshot refuses the second), the first stands.
 *
 * Asked twice a call (as it is planned and as its CDR is rated), so it must not cost more with
 * more tenants: a carrier with 10,000 tenants of four rates each has 40,000, and a scan of them was
 * a scan a call. The rates are indexed once per list (RateIndex), and a frozen list, as the
 * snapshot's is, keeps its index for as long as the list lives.
 */
export function chooseRate(rates: readonly Rate[], tenantId: number | null, callType: CallType): Rate | null {
  let index = rateIndexes.get(rates);
  if (index === undefined) {
    index = new RateIndex(rates);
    // Only a list nobody can change may keep its index.
    if (Object.isFrozen(rates)) rateIndexes.set(rates, index);
  }
  return index.choose(tenantId, callType);
}

/** The rates of one list by what picks one: the tenant and call type, and the call type's default. */
class RateIndex {
  private readonly own = new Map<number, Map<CallType, Rate>>();
  private readonly defaults = new Map<CallType, Rate>();

  constructor(rates: readonly Rate[]) {
    for (const rate of rates) {
      if (rate.tenantId === null) {
        if (!this.defaults.has(rate.callType)) this.defaults.set(rate.callType, rate);
        continue;
      }
      let types = this.own.get(rate.tenantId);
      if (types === undefined) this.own.set(rate.tenantId, (types = new Map<CallType, Rate>()));
      if (!types.has(rate.callType)) types.set(rate.callType, rate);
    }
  }

  choose(tenantId: number | null, callType: CallType): Rate | null {
    return (tenantId === null ? undefined : this.own.get(tenantId)?.get(callType)) ?? this.defaults.get(callType) ?? null;
  }
}

const rateIndexes = new WeakMap<readonly Rate[], RateIndex>();

function checkIncrement(incrementS: number): void {
  if (!Number.isSafeInteger(incrementS) || incrementS <= 0) throw new RangeError(`increment_s must be a whole number of seconds above 0, got ${incrementS}`);
}

/** billsec rounded up to whole increments; fractions of a second count as a second. */
export function billedSeconds(billsec: number, incrementS: number): number {
  checkIncrement(incrementS);
  if (!(billsec > 0)) return 0;
  // An absurd billsec (FreeSWITCH sends text) is bounded, so the cost is capped, never a RangeError.
  const seconds = Math.min(Math.ceil(billsec), Number.MAX_SAFE_INTEGER);
  return Math.ceil(seconds / incrementS) * incrementS;
}

/** per_minute × seconds / 60, rounded up to whole 1/10000 units. */
function timeCharge(perMinute: Money, seconds: number): bigint {
  if (seconds <= 0 || perMinute <= 0) return 0n;
  const numerator = BigInt(perMinute) * BigInt(seconds);
  return (numerator + 59n) / 60n;
}

/**
 * Cost of one call, exact and unbounded (BigInt): for checking a rate against what the database
 * can hold (the snapshot refuses a rate whose longest call would not fit).
 */
export function exactCallCost(rate: RateTerms, billsec: number, answered: boolean = billsec > 0): bigint {
  if (!answered) return 0n;
  return BigInt(rate.connectFee) + timeCharge(rate.perMinute, billedSeconds(billsec, rate.incrementS));
}

/** Below this, per_minute × seconds + 59 divided by 60 in doubles rounds to the right whole unit (error < 1/60). */
const SMALL_PRODUCT = 2 ** 46;

/**
 * exactCallCost of an answered call in plain numbers, when its figures are small enough for them
 * to be exact (every real call: 0.15/min pays 2^46 units for 15 centuries); null otherwise. The
 * spend guards evaluate a call's cost many times over (live-calls.ts sharedCutAt), and BigInt
 * is 5-7 times slower (bench/PROFILE.md, release 35). test/domain/rating.test.ts checks it
 * against exactCallCost.
 */
function smallCallCost(rate: RateTerms, billsec: number): number | null {
  const seconds = billedSeconds(billsec, rate.incrementS);
  const product = rate.perMinute * seconds;
  if (!(product >= 0 && product <= SMALL_PRODUCT && rate.connectFee >= 0 && rate.connectFee <= SMALL_PRODUCT)) return null;
  return rate.connectFee + (seconds <= 0 || rate.perMinute <= 0 ? 0 : Math.floor((product + 59) / 60));
}

/**
 * Cost of one call. `answered` (default: billsec > 0) says whether the connect fee applies: a call
 * answered and dropped within its first second has billsec 0 but still pays the connect fee.
 * A cost beyond what DECIMAL(14,4) holds is capped to MAX_MONEY (`rateCallCapped` says when):
 * the database would refuse it, and the call's CDR must still be written.
 */
export function rateCall(rate: RateTerms, billsec: number, answered: boolean = billsec > 0): Money {
  return rateCallCapped(rate, billsec, answered).cost;
}

export function rateCallCapped(rate: RateTerms, billsec: number, answered: boolean = billsec > 0): { cost: Money; capped: boolean } {
  const fast = answered ? smallCallCost(rate, billsec) : 0;
  if (fast !== null) return { cost: money(fast), capped: false };
  const total = exactCallCost(rate, billsec, answered);
  return total > BigInt(MAX_MONEY) ? { cost: MAX_MONEY, capped: true } : { cost: money(Number(total)), capped: false };
}

/**
 * The longest billsec whose cost stays within `budget`: always a whole number of increments.
 * -1 when even the connect fee is more than the budget; Infinity when the time is free.
 */
export function affordableBillsec(rate: RateTerms, budget: Money): number {
  checkIncrement(rate.incrementS);
  if (budget < rate.connectFee) return -1;
  if (rate.perMinute <= 0) return Infinity;
  const left = BigInt(budget) - BigInt(rate.connectFee);
  const inc = BigInt(rate.incrementS);
  // k increments cost ceil(perMinute·k·inc / 60) ≤ left  ⇔  perMinute·k·inc ≤ 60·left.
  const k = (left * 60n) / (BigInt(rate.perMinute) * inc);
  return Number(k * inc);
}

/** What an answered call has cost so far, `elapsedMs` after it was answered (whole seconds). */
export function costSoFar(rate: RateTerms, elapsedMs: number): Money {
  return rateCall(rate, Math.max(0, Math.floor(elapsedMs / 1000)), true);
}
