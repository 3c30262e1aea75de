/**
 * Like mod_nibblebill, for one call: when an answered call of a tenant with a prepaid balance or
 * a spend cap would run the money out, warn the caller and cut the call just before it does.
 *
 * The tenant's calls answered here (charged to the same day) spend one headroom, so they are
 * planned together (SpendGroups): when one is answered, the money is read and every one of them
 * is planned again from it, to be warned and cut at the instant they together run it out
 * (billing/live-calls.ts sharedCutAt; one call alone: rate-cdr.ts callCutPlan). Planned one by
 * one, five calls answered together on a balance of 0.07 each spent all of it and left -0.23.
 * The tenant's calls on other daemons are counted by the live-call job, once a minute.
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
import { sharedCutAt, type SpendingCall } from '../billing/live-calls';
import { WARN_BEFORE_S, type CutPlan } from '../billing/rate-cdr';
import type { Money } from '../domain/money';
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

/**
 * The guards of a tenant's answered calls on this daemon that spend one headroom (SpendGroups.of):
 * they are planned together, so that calls answered together cannot each spend all of it.
 */
export interface SpendPeers {
  /** The guards that joined, this one among them once it has. */
  members(): Iterable<SpendGuard>;
  join(guard: SpendGuard): void;
  leave(guard: SpendGuard): void;
}

/** This daemon's spend groups, by tenant and the day their calls are charged to (usage.ts headroomKey). */
export class SpendGroups {
  private readonly groups = new Map<string, Set<SpendGuard>>();

  of(key: string): SpendPeers {
    return {
      members: () => this.groups.get(key) ?? [],
      join: (guard) => {
        let group = this.groups.get(key);
        if (!group) this.groups.set(key, (group = new Set()));
        group.add(guard);
      },
      leave: (guard) => {
        const group = this.groups.get(key);
        if (group?.delete(guard) && group.size === 0) this.groups.delete(key);
      },
    };
  }

  /** Groups with a call in them (a group whose calls all ended is gone). */
  get size(): number {
    return this.groups.size;
  }
}

export interface SpendGuardOptions {
  rate: RateTerms;
  /** What the tenant may still spend (null: unlimited); read live, not from the snapshot. */
  readHeadroom: () => Promise<Money | null>;
  /** Legs billed at `rate` while the call runs: 2 for a click-to-call (default 1). */
  legs?: 1 | 2;
  /** The tenant's other calls here that spend the same headroom (default: none, the call alone). */
  peers?: SpendPeers;
  warn: () => Promise<unknown>;
  cut: () => Promise<unknown>;
  log: Logger;
  timers?: GuardTimers;
  /** Bound of the headroom re-read just before the cut (CALL_DB_TIMEOUT_MS; default its default). */
  cutCheckTimeoutMs?: number;
}

const UNGUARDED: CutPlan = { warnAfterS: null, cutAfterS: null };

export class SpendGuard {
  private readonly timers: GuardTimers;
  private readonly peers: SpendPeers;
  private handles: unknown[] = [];
  /** On the guard's clock, whole ms; null until answered() has read the money. */
  private answeredAt: number | null = null;
  private warned = false;
  private stopped = false;

  constructor(private readonly opts: SpendGuardOptions) {
    this.timers = opts.timers ?? REAL_TIMERS;
    this.peers = opts.peers ?? new SpendGroups().of('alone');
  }

  /**
   * The call was answered `agoMs` ago (0: now; a leg handed over answered: FreeSWITCH's answer
   * time): read the headroom, then schedule the warning and the cut of this call and of the
   * tenant's other calls here (planned again together: the money is theirs too).
   */
  async answered(agoMs = 0): Promise<CutPlan | null> {
    const answeredAt = Math.floor(this.timers.now() - Math.max(0, agoMs));
    let read = true;
    const headroom = await this.opts.readHeadroom().catch((err: unknown) => {
      // Fail open: the live-call job (billing/live-guard.ts) checks this call again within a minute.
      this.opts.log.warn({ err: (err as Error).message }, 'spend headroom unavailable; this call is not guarded');
      read = false;
      return null;
    });
    if (this.stopped) return null;
    this.answeredAt = answeredAt;
    // Joined even unguarded: its cost counts in its peers' plans, and theirs arm it.
    this.peers.join(this);
    if (!read) return UNGUARDED;
    const plan = this.planOf(this.planAll(headroom));
    if (plan.cutAfterS === null) return plan;
    this.opts.log.info({ warn_after_s: plan.warnAfterS, cut_after_s: plan.cutAfterS, calls: this.spendingPeers().length, query_ms: Math.round(this.timers.now() - answeredAt) }, 'spend guard armed');
    return plan;
  }

  /** What the shared-money arithmetic reads of this call; null until it is answered. */
  spending(): SpendingCall | null {
    return this.answeredAt === null ? null : { rate: this.opts.rate, answeredAtMs: this.answeredAt, legs: this.opts.legs ?? 1 };
  }

  private spendingPeers(): SpendingCall[] {
    const calls: SpendingCall[] = [];
    for (const guard of this.peers.members()) {
      const call = guard.spending();
      if (call) calls.push(call);
    }
    return calls;
  }

  /** When the tenant's calls here, together, run through `headroom` (billing/live-calls.ts sharedCutAt). */
  private cutAt(headroom: Money | null): number | null {
    return headroom === null ? null : sharedCutAt(this.spendingPeers(), headroom);
  }

  /** Plans every call of the group from `headroom`, fresh from the database: all are cut at the same instant. */
  private planAll(headroom: Money | null): number | null {
    const cutAt = this.cutAt(headroom);
    for (const guard of this.peers.members()) guard.armAt(cutAt);
    return cutAt;
  }

  /** The plan of this call, counted from its answer, for a cut at `cutAt`. */
  private planOf(cutAt: number | null): CutPlan {
    if (cutAt === null || this.answeredAt === null) return UNGUARDED;
    const cutAfterS = Math.max(0, (cutAt - this.answeredAt) / 1000);
    return { warnAfterS: Math.max(0, cutAfterS - WARN_BEFORE_S), cutAfterS };
  }

  /**
   * Schedules this call's warning (unless already played; one due already is played at once) and
   * its cut at `cutAt`, in place of what was scheduled; null: neither.
   */
  armAt(cutAt: number | null): void {
    if (this.stopped || this.answeredAt === null) return;
    for (const h of this.handles.splice(0)) this.timers.clearTimeout(h);
    const plan = this.planOf(cutAt);
    if (plan.warnAfterS === null || plan.cutAfterS === null) return;
    const at = (afterS: number): number => (this.answeredAt ?? 0) + afterS * 1000;
    if (!this.warned) {
      this.runAt(at(plan.warnAfterS), () => {
        this.warned = true;
        return this.opts.warn();
      });
    }
    this.runAt(at(plan.cutAfterS), () => this.cutIfDue());
  }

  /** The cut is due by the plan: cut, unless the money read again now says otherwise (then plan the group again). */
  private async cutIfDue(): Promise<unknown> {
    const verdict = await dueCut({
      reread: this.opts.readHeadroom,
      stillDue: (headroom) => {
        const cutAt = this.cutAt(headroom);
        return cutAt !== null && cutAt <= this.timers.now();
      },
      timeoutMs: this.opts.cutCheckTimeoutMs ?? DEFAULT_CUT_CHECK_TIMEOUT_MS,
      log: this.opts.log,
    });
    if (this.stopped) return;
    if (!verdict.cut) {
      const plan = this.planOf(this.planAll(verdict.fresh));
      this.opts.log.info({ warn_after_s: plan.warnAfterS, cut_after_s: plan.cutAfterS }, 'spend guard armed again from the money read before the cut');
      return;
    }
    this.opts.log.warn({ reason: verdict.reason }, 'balance or spend cap reached: cutting the call');
    return this.opts.cut();
  }

  /** The call ended: nothing more to do; its peers' plans count it no more. */
  stop(): void {
    this.stopped = true;
    for (const h of this.handles.splice(0)) this.timers.clearTimeout(h);
    this.peers.leave(this);
  }

  /**
   * Runs `fn` at `deadline` on the guard's clock, never before. Node.js counts a timer
   * from the event loop's cached time, which lags by the work of the turn that set it, so a timer
   * can fire that much early (a click-to-call cut 50 ms before answer + 4 s, under a loaded test
   * run); one that fires early waits out the rest. A wait longer than setTimeout takes (a ¥5,000
   * cap at ¥0.10 a minute pays for 34.7 days of talk, and Node.js would fire it at once) is waited
   * out the same way, in steps of the longest delay it takes.
   */
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
