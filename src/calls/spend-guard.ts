/**
 * Like mod_nibblebill, for one call: when an answered call of a tenant with a prepaid balance or
 * a spend cap would run the money out, warn the caller and cut the call just before it does.
 *
 * The tenant's calls answered here spend one balance (and those charged to one day and month its
 * caps there), so they are planned together (SpendGroup): when one is answered, the money is read
 * and every one of them is planned again from it, to be warned and cut at the instant they
 * together run a limit out (billing/live-calls.ts sharedCutAt; one call alone: rate-cdr.ts
 * callCutPlan, as before). A call that ended still counts at its cost against money reads until
 * its CDR has charged it: against every read until the CDR is in the writer's hands (handedIn),
 * then against those sent before the writer had charged it (however long it lags behind); and so
 * does a CDR the daemon found in its spool at its start (a previous run's: countUncharged);
 * each limit keeps the newest read sent.
 * Planned one by one, five calls answered together on a balance of 0.07 each spent all of it and
 * left -0.23. The tenant's calls on other daemons, and in other worker processes, are counted by
 * the live-call job, once a minute.
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
 * When the cut is due, the money is read again first, once for the group (billing/due-cut.ts):
 * money that arrived since the plan (a top-up, a raised cap, a call that ended early) plans the
 * group again from it instead of cutting; a read that fails or is late cuts as planned.
 */
import type { Logger } from 'pino';
import { DEFAULT_CUT_CHECK_TIMEOUT_MS, dueCut } from '../billing/due-cut';
import { sharedCutAt, spendingCost, type SpendingCall } from '../billing/live-calls';
import type { SpendLeft } from '../billing/usage';
import { WARN_BEFORE_S, type CutPlan } from '../billing/rate-cdr';
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

/** The day and month a call's CDR is charged to (their keys): its spend counts against their caps. */
export interface ChargedPeriods {
  readonly day: string;
  readonly month: string;
}

/**
 * Runs `fn` at `deadline` on `timers`' clock, never before. Node.js counts a timer from the event
 * loop's cached time, which lags by the work of the turn that set it, so a timer can fire that
 * much early (a click-to-call cut 50 ms before answer + 4 s, under a loaded test run); one that
 * fires early waits out the rest. A wait longer than setTimeout takes (a ¥5,000 cap at ¥0.10 a
 * minute pays for 34.7 days of talk, and Node.js would fire it at once) is waited out the same
 * way, in steps of the longest delay it takes.
 */
function runAt(timers: GuardTimers, deadline: number, fn: () => void): { cancel(): void } {
  let handle: unknown = null;
  let cancelled = false;
  const arm = (): void => {
    handle = timers.setTimeout(() => {
      if (cancelled) return;
      if (timers.now() < deadline) return arm();
      fn();
    }, timerDelay(Math.max(0, Math.ceil(deadline - timers.now()))));
  };
  arm();
  return {
    cancel: () => {
      cancelled = true;
      timers.clearTimeout(handle);
    },
  };
}

const NO_LIMIT: SpendLeft = { balance: null, day: null, month: null };

/**
 * What one read said is left, for the day and month it was read for; `sentAt`: when it was sent
 * (the guards' clock); `chargedBefore`: the calls that ended before it have surely charged what
 * it read (SpendGroup.chargedBefore, at the send).
 */
interface Reading {
  readonly charged: ChargedPeriods;
  readonly left: SpendLeft;
  readonly sentAt: number;
  readonly chargedBefore: number;
}

/** What is left of one limit, as the newest read sent said (null: no such limit). */
interface Known {
  readonly value: Money | null;
  readonly sentAt: number;
  readonly chargedBefore: number;
}

/** The limits a call's spend counts against: 'balance', 'day/<key>', 'month/<key>'. */
function limitsOf(charged: ChargedPeriods): string[] {
  return ['balance', `day/${charged.day}`, `month/${charged.month}`];
}

/** Takes what `reading` says of each limit, unless a read sent later said it already (a slow read landing last). */
function learn(into: Map<string, Known>, reading: Reading): void {
  const values = [reading.left.balance, reading.left.day, reading.left.month];
  limitsOf(reading.charged).forEach((limit, i) => {
    const had = into.get(limit);
    if (!had || had.sentAt <= reading.sentAt) into.set(limit, { value: values[i], sentAt: reading.sentAt, chargedBefore: reading.chargedBefore });
  });
}

/**
 * What the calls of one day and month that ended lately cost, in the order they ended: each
 * `until` (when its CDR has surely charged the tenant) with the running total of their costs, so
 * what a read sent at some instant may not have seen is one binary search, whatever the rate of
 * calls (at 1,000 calls/s, 5,000 of them).
 */
class EndedCalls {
  private untils: number[] = [];
  private totals: number[] = [];
  private head = 0;
  private base = 0; // the running total before `head`

  constructor(readonly limits: readonly string[]) {}

  /** `until` before the last one's is taken as the last (counted longer: never less). */
  add(cost: number, until: number): void {
    const last = this.totals.length > this.head ? this.totals[this.totals.length - 1] : this.base;
    this.untils.push(Math.max(until, this.lastUntil));
    this.totals.push(last + cost);
  }

  /**
   * What the calls whose CDR a read may not have seen cost: those with `until` at or after its
   * `chargedBefore` (a CDR handed in at that very instant is the oldest the writer has not charged).
   */
  unseenBy(chargedBefore: number): number {
    let lo = this.head;
    let hi = this.untils.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.untils[mid] >= chargedBefore) hi = mid;
      else lo = mid + 1;
    }
    const all = this.totals.length > this.head ? this.totals[this.totals.length - 1] : this.base;
    const before = lo > this.head ? this.totals[lo - 1] : this.base;
    return all - before;
  }

  /** Forgets the calls every read from now on sees: those with `until` before `seenBy`. */
  forget(seenBy: number): void {
    while (this.head < this.untils.length && this.untils[this.head] < seenBy) this.base = this.totals[this.head++];
    if (this.head > 1024 && this.head * 2 > this.untils.length) {
      this.untils = this.untils.slice(this.head);
      this.totals = this.totals.slice(this.head);
      this.head = 0;
    }
  }

  /** The last `until`; -Infinity when none is left. */
  get lastUntil(): number {
    return this.untils.length > this.head ? this.untils[this.untils.length - 1] : -Infinity;
  }
}

/**
 * A tenant's answered calls on this daemon (in this worker process): they spend one balance, and
 * those charged to one day and month its caps there, so they are planned together, to be cut at
 * the first instant they together would run any of them out (sharedCutAt for each limit over the
 * calls it applies to). What is left of each limit is what the newest read sent said. One cut
 * timer and one warning timer for the group: at the cut the money is read once for each day the
 * calls due are charged to; those still due are cut, the rest planned again.
 */
export class SpendGroup {
  private readonly live = new Set<SpendGuard>();
  /** Calls that ended lately, by the day and month they are charged to: what they cost (they cost no more). */
  private readonly ended = new Map<string, EndedCalls>();
  /** Calls that ended whose CDR is not in the writer's hands yet (handedIn): counted against every read. */
  private readonly unhanded = new Map<SpendGuard, { readonly key: string; readonly cost: number }>();
  /**
   * What those cost, by their limits (limitsOf, joined): a running total, so that a read costs
   * the same however many wait (at 1,000 calls/s and a hang-up completed 5 s late, 5,000).
   */
  private readonly unhandedCost = new Map<string, { readonly limits: readonly string[]; total: number }>();
  /** What is left, by limit (limitsOf). */
  private readonly left = new Map<string, Known>();
  private cut: { cancel(): void } | null = null;
  private warnings: { cancel(): void } | null = null;
  /** The clock of the guards that joined (one a daemon). */
  private timers: GuardTimers | null = null;

  /** `chargeLagMs`: how long the oldest CDR handed to the writer and not yet charged has waited (SpendGroups). */
  constructor(private readonly chargeLagMs: () => number = NO_CHARGE_LAG) {}

  /**
   * A read sent at `sentAt` sees the CDRs handed to the writer before this (on the guards' clock):
   * before the oldest CDR the writer has not charged yet. A writer that lags (the database slow,
   * away, or replaying a backlog) keeps every call whose CDR was handed in since counted.
   */
  chargedBefore(sentAt: number): number {
    return sentAt - Math.max(0, this.chargeLagMs());
  }

  /** Calls in the group still talking. */
  get size(): number {
    return this.live.size;
  }

  /** No call talking, none ended lately: what the group knows is of no more use. */
  get idle(): boolean {
    const seen = this.chargedBefore(this.timers?.now() ?? 0);
    return this.live.size === 0 && this.unhanded.size === 0 && ![...this.ended.values()].some((e) => e.lastUntil >= seen);
  }

  join(guard: SpendGuard): void {
    this.timers = guard.timers;
    this.live.add(guard);
  }

  /**
   * CDRs the tenant's calls left in the CDR writer's hands before this process planned any
   * (CdrWriter.uncharged: a previous run's spool, the calls its journal recovered), oldest first:
   * each counts at its cost against every read sent while the writer had not charged it (handed
   * in at `since`). Only into a group no call has joined yet (SpendGroups.of), so that every
   * `until` of the calls that end later comes after theirs.
   */
  countUncharged(cdrs: Iterable<UnchargedSpend>): void {
    for (const cdr of cdrs) this.endedCalls(limitsOf(cdr.charged)).add(cdr.cost, cdr.since);
  }

  /**
   * `guard`'s call ended at `endedAt`: it spends no more, and counts at its cost against every read
   * until its CDR is in the writer's hands (handedIn), however long the hang-up takes to complete.
   */
  leave(guard: SpendGuard, endedAt: number): void {
    if (!this.live.delete(guard)) return;
    const call = guard.spending();
    if (call?.rate) {
      const key = guard.limits.join('|');
      const cost = spendingCost(call, endedAt);
      this.unhanded.set(guard, { key, cost });
      const sum = this.unhandedCost.get(key);
      if (sum) sum.total += cost;
      else this.unhandedCost.set(key, { limits: guard.limits, total: cost });
    }
    const [talking] = this.live;
    if (talking) {
      // A call no plan counted yet (it hung up while its money was being read): the others are
      // planned again with what it spent. One that was counted only spends no more: their cuts
      // can only come later, and are put off by the next answer's plan or at the cut's re-read.
      if (!guard.planned) this.plan(talking, undefined);
      return;
    }
    this.cut?.cancel();
    this.cut = null;
    this.warnings?.cancel();
    this.warnings = null;
  }

  /**
   * `guard`'s CDR was handed to the CDR writer at `at` (or there is none): it counts against the
   * reads sent before the writer has charged every CDR handed in by then, at what the CDR charges
   * (`charged`) when that is more than the guard counted (its answer seen late, a hang-up that
   * took the call into another increment).
   */
  handedIn(guard: SpendGuard, at: number, charged = 0): void {
    const call = this.unhanded.get(guard);
    if (!call) return;
    this.unhanded.delete(guard);
    const sum = this.unhandedCost.get(call.key);
    if (sum) {
      sum.total -= call.cost;
      if (sum.total <= 0) this.unhandedCost.delete(call.key);
    }
    this.endedCalls(guard.limits).add(Math.max(call.cost, charged), at);
  }

  private endedCalls(limits: readonly string[]): EndedCalls {
    const key = limits.join('|');
    let ended = this.ended.get(key);
    if (!ended) this.ended.set(key, (ended = new EndedCalls(limits)));
    return ended;
  }

  /**
   * `via` read the money (`reading`; undefined: its read failed): every call is planned again from
   * what is known, its warning and the group's cut timer set. `via`'s own cut instant.
   */
  plan(via: SpendGuard, reading: Reading | undefined): number | null {
    if (reading !== undefined) learn(this.left, reading);
    // No call talking (all hung up during a re-read): nothing to plan, and nothing to forget yet.
    if (this.live.size === 0) return null;
    // A limit no call talking is under is of no more use (a day gone by); an ended call, once
    // every limit over it was read after its CDR surely charged it.
    const talking = new Set<string>();
    for (const guard of this.live) for (const limit of guard.limits) talking.add(limit);
    for (const limit of this.left.keys()) if (!talking.has(limit)) this.left.delete(limit);
    for (const [key, ended] of this.ended) {
      // Seen by every read to come once each limit over them was read after they surely charged.
      // No limit of theirs read yet (the group's first read failed): nothing is seen, nothing forgotten.
      const seenBy = Math.min(...ended.limits.map((limit) => this.left.get(limit)?.chargedBefore ?? Infinity));
      if (seenBy !== Infinity) ended.forget(seenBy);
      if (ended.lastUntil === -Infinity) this.ended.delete(key);
    }
    const { cuts, earliest } = this.cutInstants(this.left);
    for (const guard of this.live) {
      guard.planned = true;
      guard.planWarning(cuts.get(guard) ?? null);
    }
    this.armWarnings(via.timers);
    this.cut?.cancel();
    this.cut = earliest === null ? null : runAt(via.timers, earliest, () => void this.cutIfDue().catch((err: unknown) => via.log.error({ err }, 'spend group cut failed')));
    return cuts.get(via) ?? null;
  }

  /** One timer for the group's warnings, at the first one due: every call due by then is warned. */
  private armWarnings(timers: GuardTimers): void {
    this.warnings?.cancel();
    this.warnings = null;
    let next: number | null = null;
    for (const guard of this.live) if (guard.warnDue !== null && (next === null || guard.warnDue < next)) next = guard.warnDue;
    if (next === null) return;
    this.warnings = runAt(timers, next, () => {
      this.warnings = null;
      const now = timers.now();
      for (const guard of this.live) if (guard.warnDue !== null && guard.warnDue <= now) guard.warnNow();
      this.armWarnings(timers);
    });
  }

  /**
   * When each live call is to be cut: for each limit known, the first instant the calls talking
   * under it run out what it left, less what the calls that ended spent and the read may not have
   * seen (their CDR perhaps not charged yet when it was sent); null: never. `earliest`: of the
   * calls not being cut already. An ended call's whole cost is counted from the start: it differs
   * from its cost at the time only before it ended, and it has ended.
   */
  private cutInstants(left: ReadonlyMap<string, Known>): { cuts: Map<SpendGuard, number>; earliest: number | null } {
    const live: Array<{ call: SpendingCall; guard: SpendGuard }> = [];
    for (const guard of this.live) {
      const call = guard.spending();
      if (call) live.push({ call, guard });
    }
    const cuts = new Map<SpendGuard, number>();
    const cutUnder = (under: typeof live, budget: Money): void => {
      if (under.length === 0) return;
      const at = sharedCutAt(under.map((c) => c.call), budget);
      if (at === null) return;
      for (const c of under) if (!(at >= (cuts.get(c.guard) ?? Infinity))) cuts.set(c.guard, at);
    };
    // The limits every call is under (the balance; the caps, when all are charged to one day and
    // month, as nearly always) are one search, for the least of them.
    let leastOfAll: Money | null = null;
    for (const [limit, { value, chargedBefore }] of left) {
      if (value === null) continue;
      let unseen = 0;
      for (const ended of this.ended.values()) if (ended.limits.includes(limit)) unseen += ended.unseenBy(chargedBefore);
      for (const sum of this.unhandedCost.values()) if (sum.limits.includes(limit)) unseen += sum.total;
      const budget = money(value - unseen);
      if (live.every((c) => c.guard.limits.includes(limit))) leastOfAll = leastOfAll === null || budget < leastOfAll ? budget : leastOfAll;
      else cutUnder(live.filter((c) => c.guard.limits.includes(limit)), budget);
    }
    if (leastOfAll !== null) cutUnder(live, leastOfAll);
    let earliest: number | null = null;
    for (const [guard, at] of cuts) if (!guard.cutting && (earliest === null || at < earliest)) earliest = at;
    return { cuts, earliest };
  }

  /**
   * The group's first cut is due by its plan: the money is read again, once for each day and month
   * the calls due are charged to; the calls still due by it (or by the plan, if it could not be
   * read) are cut, the others planned again.
   */
  private async cutIfDue(): Promise<void> {
    this.cut = null;
    const [any] = this.live;
    if (!any) return;
    const due = (left: ReadonlyMap<string, Known>): SpendGuard[] => [...this.cutInstants(left).cuts].filter(([g, at]) => !g.cutting && at <= any.now()).map(([g]) => g);
    const readers = new Map<string, SpendGuard>();
    for (const guard of due(this.left)) readers.set(`${guard.charged.day}|${guard.charged.month}`, guard);
    if (readers.size === 0) readers.set('', any);
    let seen: Reading[] | undefined;
    const verdict = await dueCut({
      // Each day's read on its own: one that fails leaves that day's calls to the plan, not the others.
      reread: async () => {
        const reads = await Promise.allSettled(
          [...readers.values()].map(async (guard) => {
            const sentAt = guard.now();
            const chargedBefore = this.chargedBefore(sentAt);
            return { charged: guard.charged, left: (await guard.readLeft()) ?? NO_LIMIT, sentAt, chargedBefore };
          }),
        );
        const failed = reads.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
        if (failed.length === reads.length) throw failed[0];
        for (const err of failed) any.log.warn({ err: err.message }, 'tenant money of one day could not be read again before the cut: its calls are cut as planned');
        return reads.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      },
      stillDue: (readings) => {
        seen = readings;
        const left = new Map(this.left);
        for (const r of readings) learn(left, r);
        return due(left).length > 0;
      },
      timeoutMs: any.cutCheckTimeoutMs,
      log: any.log,
    });
    for (const r of seen ?? []) learn(this.left, r);
    if (verdict.cut) for (const guard of due(this.left)) guard.cutNow(verdict.reason);
    const cutAt = this.plan(any, undefined);
    if (!verdict.cut) any.log.info({ cut_in_s: cutAt === null ? null : Math.max(0, Math.round(cutAt - any.now()) / 1000), calls: this.live.size }, 'spend guard armed again from the money read before the cut');
  }
}

/** No CDR writer behind (tests of one guard): every CDR charged at once. */
const NO_CHARGE_LAG = (): number => 0;

/** A CDR of the tenant's that no group counted, not yet charged (SpendGroup.countUncharged). */
export interface UnchargedSpend {
  readonly cost: number;
  readonly charged: ChargedPeriods;
  /** Handed to the CDR writer at (the guards' clock): charged once the writer has charged every CDR handed in by then. */
  readonly since: number;
}

const NONE_UNCHARGED = (): readonly UnchargedSpend[] => [];

/** This daemon's spend groups (in this worker process), one a tenant. */
export class SpendGroups {
  private readonly groups = new Map<string, SpendGroup>();

  /**
   * `chargeLagMs`: how long the oldest CDR handed to this process's CDR writer and not yet in the
   * database has waited, in ms (0: none; CdrWriter.unchargedSince). `uncharged`: the tenant's
   * CDRs the writer took before this process counted any call of it (a previous run's spool),
   * oldest first, not yet charged (CdrWriter.uncharged); each new group of the tenant counts them.
   */
  constructor(
    private readonly chargeLagMs: () => number = NO_CHARGE_LAG,
    private readonly uncharged: (key: string) => Iterable<UnchargedSpend> = NONE_UNCHARGED,
  ) {}

  /**
   * The group of `key` (the tenant's id). One idle (no call talking, and every one that ended
   * charged: SpendGroup.idle) is replaced, and idle groups are dropped as calls come.
   */
  of(key: string): SpendGroup {
    let group = this.groups.get(key);
    if (!group || group.idle) {
      if (this.groups.size >= this.sweepAt) this.sweep();
      this.groups.set(key, (group = new SpendGroup(this.chargeLagMs)));
      group.countUncharged(this.uncharged(key));
    }
    return group;
  }

  private sweepAt = 1024;

  /** Drops idle groups; the next sweep when twice as many are kept (amortised: a group's call pays for it once). */
  private sweep(): void {
    for (const [key, group] of this.groups) if (group.idle) this.groups.delete(key);
    this.sweepAt = Math.max(1024, this.groups.size * 2);
  }

  /** Groups with a call talking in them. */
  get size(): number {
    let n = 0;
    for (const group of this.groups.values()) if (group.size > 0) n++;
    return n;
  }
}

export interface SpendGuardOptions {
  rate: RateTerms;
  /** What is left of the tenant's balance and of its caps for the call's day and month (null: the tenant is gone); read live, not from the snapshot. */
  readLeft: () => Promise<SpendLeft | null>;
  /** The day and month the call is charged to (default: one day and month for every call; tests). */
  charged?: ChargedPeriods;
  /** Legs billed at `rate` while the call runs: 2 for a click-to-call (default 1). */
  legs?: 1 | 2;
  /** The tenant's group on this daemon (SpendGroups.of), asked for once answered; default: a group of its own. */
  groupOf?: () => SpendGroup;
  warn: () => Promise<unknown>;
  cut: () => Promise<unknown>;
  log: Logger;
  timers?: GuardTimers;
  /** Bound of the money re-read just before the cut (CALL_DB_TIMEOUT_MS; default its default). */
  cutCheckTimeoutMs?: number;
}

const UNGUARDED: CutPlan = { warnAfterS: null, cutAfterS: null };

export class SpendGuard {
  readonly timers: GuardTimers;
  readonly charged: ChargedPeriods;
  /** The limits its spend counts against (limitsOf). */
  readonly limits: readonly string[];
  readonly log: Logger;
  readonly cutCheckTimeoutMs: number;
  private group: SpendGroup | null = null;
  private warningAt: number | null = null;
  /** On the guard's clock, whole ms; null until answered() has read the money. */
  private answeredAt: number | null = null;
  private warnedAt: number | null = null;
  /** A group's plan has counted this call (SpendGroup.leave). */
  planned = false;
  /** spending() while it talks (the same every plan). */
  private talking: SpendingCall | null = null;
  private cutAt: number | null = null;
  private stopped = false;

  constructor(private readonly opts: SpendGuardOptions) {
    this.timers = opts.timers ?? REAL_TIMERS;
    this.charged = opts.charged ?? { day: '', month: '' };
    this.limits = limitsOf(this.charged);
    this.log = opts.log;
    this.cutCheckTimeoutMs = opts.cutCheckTimeoutMs ?? DEFAULT_CUT_CHECK_TIMEOUT_MS;
  }

  now(): number {
    return this.timers.now();
  }

  readLeft(): Promise<SpendLeft | null> {
    return this.opts.readLeft();
  }

  /**
   * The call was answered `agoMs` ago (0: now; a leg handed over answered: FreeSWITCH's answer
   * time): read the money, then plan this call and the tenant's other calls here again from it
   * (their warnings and their cut). A read that fails leaves the call to what its peers read.
   */
  async answered(agoMs = 0): Promise<CutPlan | null> {
    const answeredAt = Math.floor(this.timers.now() - Math.max(0, agoMs));
    if (this.stopped) return null;
    // In the group from the answer, before its read: while the read is out its cost counts in its
    // peers' plans, its peers keep the group (and what it knows of this call's day) alive, and a
    // hang-up meanwhile leaves the call counted as ended.
    this.answeredAt = answeredAt;
    const group = (this.group = this.opts.groupOf?.() ?? new SpendGroup());
    group.join(this);
    const sentAt = this.timers.now();
    const chargedBefore = group.chargedBefore(sentAt);
    let reading: Reading | undefined;
    try {
      reading = { charged: this.charged, left: (await this.opts.readLeft()) ?? NO_LIMIT, sentAt, chargedBefore };
    } catch (err) {
      // Fail open: the live-call job (billing/live-guard.ts) checks this call again within a minute.
      this.opts.log.warn({ err: (err as Error).message }, 'spend headroom unavailable; this call is guarded only by what its peers read');
    }
    if (this.stopped) return null;
    const plan = this.planOf(group.plan(this, reading));
    if (plan.cutAfterS === null) return plan;
    this.opts.log.info({ warn_after_s: plan.warnAfterS, cut_after_s: plan.cutAfterS, calls: group.size, query_ms: Math.round(this.timers.now() - answeredAt) }, 'spend guard armed');
    return plan;
  }

  /** What the shared-money arithmetic reads of this call; null until answered. */
  spending(): SpendingCall | null {
    if (this.answeredAt === null) return null;
    return (this.talking ??= { rate: this.opts.rate, answeredAtMs: this.answeredAt, legs: this.opts.legs ?? 1 });
  }

  /** The plan of this call, counted from its answer, for a cut at `cutAt`. */
  private planOf(cutAt: number | null): CutPlan {
    if (cutAt === null || this.answeredAt === null) return UNGUARDED;
    const cutAfterS = Math.max(0, (cutAt - this.answeredAt) / 1000);
    return { warnAfterS: Math.max(0, cutAfterS - WARN_BEFORE_S), cutAfterS };
  }

  /** When this call's warning is to be played (the group's warning timer plays it); null: none to come. */
  get warnDue(): number | null {
    return this.warningAt;
  }

  /**
   * This call will be cut at `cutAt` (null: never): its warning WARN_BEFORE_S before (at once when
   * that has passed), in place of one still to come. Once played, it is played again only for a
   * warning time still to come (a top-up, or a peer's hang-up, put the cut off), as a lone call
   * always was.
   */
  planWarning(cutAt: number | null): void {
    this.warningAt = null;
    if (this.stopped || this.answeredAt === null || this.cutAt !== null || cutAt === null) return;
    const warnAt = Math.max(this.answeredAt, cutAt - WARN_BEFORE_S * 1000);
    if (this.warnedAt !== null && !(warnAt > this.timers.now())) return;
    this.warningAt = warnAt;
  }

  /** The warning is due: play it. */
  warnNow(): void {
    this.warningAt = null;
    if (this.stopped || this.cutAt !== null) return;
    this.warnedAt = this.timers.now();
    this.opts.warn().catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'spend guard action failed'));
  }

  /** Cut by its group, hanging up: its cost still counts, its cut no more. */
  get cutting(): boolean {
    return this.cutAt !== null;
  }

  /** The group's money ran out: cut this call. */
  cutNow(reason: string): void {
    if (this.stopped || this.cutAt !== null) return;
    this.cutAt = this.timers.now();
    this.opts.log.warn({ reason }, 'balance or spend cap reached: cutting the call');
    this.opts.cut().catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'spend guard action failed'));
  }

  /** The call ended: nothing more to do; its peers count what it cost until its CDR is charged (SpendGroup.leave). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.warningAt = null;
    this.group?.leave(this, this.timers.now());
  }

  /**
   * The call's CDR, charging `charged`, was handed to the CDR writer at `at` (the guards' clock;
   * CdrWriter.record), or there is none (`charged` 0): its peers count it until the writer has
   * charged what was handed in by then. Stops the guard first if the call had not.
   */
  handedIn(at: number, charged = 0): void {
    this.stop();
    this.group?.handedIn(this, at, charged);
  }
}
