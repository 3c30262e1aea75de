/**
 * Like mod_nibblebill, for one call: when an answered call of a tenant with a prepaid balance or
 * a spend cap would run the money out, warn the caller and cut the call just before it does.
 * The plan (when to warn, when to cut) is billing/rate-cdr.ts callCutPlan.
 *
 * Timers count from the ANSWER, not from when the headroom query returned: a slow database must
 * not let a call talk past what the tenant can pay. The cut is `api uuid_kill` on the call's own
 * socket, which hangs up at once whatever plays (M8 in test/peer/channel-model.ts); a `sendmsg`
 * hangup waited behind the warning broadcast and the capture daemon-spend-cut-during-warning-
 * broadcast cut 6 s late, a prepaid balance of 0.07 ending at -0.05. The warning is sent as
 * billing/warning.ts decides: `uuid_broadcast … both` over the conversation, mixed in with
 * `uuid_displace … 0 mux` while an event-locked greeting plays (a broadcast would wait for its end).
 *
 * A click-to-call pays two legs at this rate (the visitor's, which the platform placed, and the
 * call to the tenant's phone: src/clicktocall/cdr.ts), so the same headroom lasts half as long:
 * `legs: 2` halves it. Its leg arrives already answered (no CHANNEL_ANSWER), so the session says
 * how long ago FreeSWITCH answered it.
 *
 * When the cut is due, the headroom is read again first (billing/due-cut.ts): money that arrived
 * since the answer (a top-up, a raised cap) plans the call again from it instead of cutting; a
 * read that fails or is late cuts as planned.
 */
import type { Logger } from 'pino';
import { DEFAULT_CUT_CHECK_TIMEOUT_MS, dueCut } from '../billing/due-cut';
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
  /** Bound of the headroom re-read just before the cut (CALL_DB_TIMEOUT_MS; default its default). */
  cutCheckTimeoutMs?: number;
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
    const plan = this.planOf(headroom);
    if (plan.cutAfterS === null) return plan;
    this.opts.log.info({ warn_after_s: plan.warnAfterS, cut_after_s: plan.cutAfterS, query_ms: Math.round(this.timers.now() - answeredAt) }, 'spend guard armed');
    this.arm(answeredAt, plan, true);
    return plan;
  }

  private planOf(headroom: Money | null): CutPlan {
    return callCutPlan(this.opts.rate, headroom === null ? null : money(Math.floor(headroom / (this.opts.legs ?? 1))));
  }

  /** Schedules the warning (one still to come, or `warnLate`: also one due already) and the cut. */
  private arm(answeredAt: number, plan: CutPlan, warnLate: boolean): void {
    if (plan.cutAfterS === null) return;
    const due = (afterS: number): number => answeredAt + afterS * 1000 - this.timers.now();
    if (plan.warnAfterS !== null && (warnLate || due(plan.warnAfterS) > 0)) {
      this.schedule(Math.max(0, due(plan.warnAfterS)), () => this.opts.warn());
    }
    this.schedule(Math.max(0, due(plan.cutAfterS)), () => this.cutIfDue(answeredAt));
  }

  /** The cut is due by the plan: cut, unless the money read again now says otherwise (then plan again). */
  private async cutIfDue(answeredAt: number): Promise<unknown> {
    const verdict = await dueCut({
      reread: this.opts.readHeadroom,
      stillDue: (headroom) => {
        const cutAfterS = this.planOf(headroom).cutAfterS;
        return cutAfterS !== null && answeredAt + cutAfterS * 1000 <= this.timers.now();
      },
      timeoutMs: this.opts.cutCheckTimeoutMs ?? DEFAULT_CUT_CHECK_TIMEOUT_MS,
      log: this.opts.log,
    });
    if (this.stopped) return;
    if (!verdict.cut) {
      const plan = this.planOf(verdict.fresh);
      this.opts.log.info({ warn_after_s: plan.warnAfterS, cut_after_s: plan.cutAfterS }, 'spend guard armed again from the money read before the cut');
      this.arm(answeredAt, plan, false);
      return;
    }
    this.opts.log.warn({ reason: verdict.reason }, 'balance or spend cap reached: cutting the call');
    return this.opts.cut();
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
