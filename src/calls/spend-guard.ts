/**
 * Like mod_nibblebill, for one call: when an answered call of a tenant with a prepaid balance or
 * a spend cap would run the money out, warn the caller and cut the call just before it does.
 * The plan (when to warn, when to cut) is billing/rate-cdr.ts callCutPlan.
 *
 * Timers count from the ANSWER, not from when the headroom query returned: a slow database must
 * not let a call talk past what the tenant can pay. The cut is `api uuid_kill` on the call's own
 * socket, which hangs up at once whatever plays (M8 in test/peer/channel-model.ts); a `sendmsg`
 * hangup waited behind the warning broadcast and the capture daemon-spend-cut-during-warning-
 * broadcast cut 6 s late, a prepaid balance of 0.07 ending at -0.05. The warning is
 * `uuid_broadcast … both`, played over the conversation.
 *
 * A click-to-call pays two legs at this rate (the visitor's, which the platform placed, and the
 * call to the tenant's phone: src/clicktocall/cdr.ts), so the same headroom lasts half as long:
 * `legs: 2` halves it. Its leg arrives already answered (no CHANNEL_ANSWER), so the session says
 * how long ago FreeSWITCH answered it.
 */
import type { Logger } from 'pino';
import { callCutPlan, type CutPlan } from '../billing/rate-cdr';
import { money, type Money } from '../domain/money';
import type { RateTerms } from '../domain/rating';
import { timerDelay } from '../timer-limit';

export interface GuardTimers {
  /** A monotonic clock in ms. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_TIMERS: GuardTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface SpendGuardOptions {
  rate: RateTerms;
  /** What the tenant may still spend (null: unlimited); read live, not from the snapshot. */
  readHeadroom: () => Promise<Money | null>;
  /** Legs billed at `rate` while the call runs: 2 for a click-to-call (default 1). */
  legs?: 1 | 2;
  warn: () => Promise<unknown>;
  cut: () => Promise<unknown>;
  log: Logger;
  timers?: GuardTimers;
}

export class SpendGuard {
  private readonly timers: GuardTimers;
  private readonly handles: unknown[] = [];
  private stopped = false;

  constructor(private readonly opts: SpendGuardOptions) {
    this.timers = opts.timers ?? REAL_TIMERS;
  }

  /**
   * The call was answered `agoMs` ago (0: now; a leg handed over answered: FreeSWITCH's answer
   * time): read the headroom, then schedule the warning and the cut.
   */
  async answered(agoMs = 0): Promise<CutPlan | null> {
    const answeredAt = this.timers.now() - Math.max(0, agoMs);
    const headroom = await this.opts.readHeadroom().catch((err: unknown) => {
      // Fail open: the live-call job (billing/live-guard.ts) checks this call again within a minute.
      this.opts.log.warn({ err: (err as Error).message }, 'spend headroom unavailable; this call is not guarded');
      return null;
    });
    if (this.stopped) return null;
    const legs = this.opts.legs ?? 1;
    const plan = callCutPlan(this.opts.rate, headroom === null ? null : money(Math.floor(headroom / legs)));
    if (plan.cutAfterS === null) return plan;
    const due = (afterS: number): number => Math.max(0, answeredAt + afterS * 1000 - this.timers.now());
    this.opts.log.info({ warn_after_s: plan.warnAfterS, cut_after_s: plan.cutAfterS, query_ms: Math.round(this.timers.now() - answeredAt) }, 'spend guard armed');
    if (plan.warnAfterS !== null) {
      this.schedule(due(plan.warnAfterS), () => this.opts.warn());
    }
    this.schedule(due(plan.cutAfterS), () => {
      this.opts.log.warn('balance or spend cap reached: cutting the call');
      return this.opts.cut();
    });
    return plan;
  }

  /** The call ended: nothing more to do. */
  stop(): void {
    this.stopped = true;
    for (const h of this.handles.splice(0)) this.timers.clearTimeout(h);
  }

  /**
   * Runs `fn` once `ms` have passed on the guard's clock, never before. Node.js counts a timer
   * from the event loop's cached time, which lags by the work of the turn that set it, so a timer
   * can fire that much early (a click-to-call cut 50 ms before answer + 4 s, under a loaded test
   * run); one that fires early waits out the rest. A wait longer than setTimeout takes (a ¥5,000
   * cap at ¥0.10 a minute pays for 34.7 days of talk, and Node.js would fire it at once) is waited
   * out the same way, in steps of the longest delay it takes.
   */
  private schedule(ms: number, fn: () => Promise<unknown>): void {
    this.runAt(this.timers.now() + ms, fn);
  }

  private runAt(deadline: number, fn: () => Promise<unknown>): void {
    this.handles.push(
      this.timers.setTimeout(() => {
        if (this.stopped) return;
        if (this.timers.now() < deadline) return this.runAt(deadline, fn);
        fn().catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'spend guard action failed'));
      }, timerDelay(Math.max(0, Math.ceil(deadline - this.timers.now())))),
    );
  }
}
