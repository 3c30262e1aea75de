/**
 * The input of calls that are already bridged, run behind the rest of each turn of the event loop.
 *
 * Why: under load every turn of the loop runs the input of every socket that has some, in the
 * order the kernel reports it. A call being set up (connect, its channel data, the claim, the
 * greeting, the first bridge) is silence to its caller, and it waited behind the events of calls
 * already bridged: a phone's answer, the hang-up, the bridge's completion, CHANNEL_HANGUP_COMPLETE,
 * whose handling ends in the CDR. Nobody hears those few milliseconds. With the bridged calls'
 * input run after the rest of each turn, for at most `budgetMs` of it, calls being set up go first
 * (bench/PROFILE.md, release 38: with 1 ms, setup p50 at saturation 0.39-0.52× and calls/s
 * 0.91-0.99× in two runs; 0.5 ms cost 8-9 % of the calls/s: the ended calls' state lives longer).
 *
 * A connection switched to deferred input (EslConnection.deferInput) hands every later input
 * event (its data, its end, its close) to the one queue of the process, in arrival order: one
 * connection's events run in the order they came, and so do different connections'. The queue
 * runs in an immediate (after the turn's I/O callbacks) until the turn's budget is spent, at least
 * one item a turn; an item that has waited `maxWaitMs` runs whatever the budget, so that under a
 * sustained overload a bridged call's events come late by that much at most, never starved.
 * Below saturation the queue is empty again at the end of every turn, or of the next one when
 * calls being set up wrote at the end of this one (hold()): nothing waits longer.
 */
export interface DeferredInputOptions {
  /** Time a turn gives the queue once it has started it (ms). */
  budgetMs: number;
  /** An item waiting this long (ms) runs whatever the budget. */
  maxWaitMs: number;
  /** An item that threw (the connection catches its own handlers' errors: a bug here). */
  onError(err: unknown): void;
  /** Monotonic ms (tests). */
  now?: () => number;
  /** Runs the queue after the rest of the turn: setImmediate (tests: by hand). */
  schedule?: (run: () => void) => void;
}

interface Item {
  at: number;
  run: () => void;
}

/**
 * What the daemon's metrics are told (CallServer.listen wires them in; tests their own): once for
 * each turn that runs the queue, the longest any item it ran had waited, and how many of them had
 * waited maxWaitMs or more (ran because of the bound, past the budget or after holds put the queue
 * off: the daemon was saturated that long).
 */
export interface DeferredInputObserver {
  turn(longestWaitMs: number, overdueItems: number): void;
}

/** Items run before the array is cut down to the ones still waiting. */
const COMPACT_AFTER = 1024;

export class DeferredInput {
  private items: Array<Item | undefined> = [];
  private head = 0;
  private scheduled = false;
  /** drain() is running its items: it schedules the next run itself when it ends. */
  private draining = false;
  /** Work of this turn that must go first, queued as immediates and not run yet (hold()). */
  private holds = 0;
  private readonly now: () => number;
  private readonly schedule: (run: () => void) => void;
  private readonly observers = new Set<DeferredInputObserver>();
  /**
   * Budgets set by their owners (each CallServer while it listens: ESL_BRIDGED_INPUT_BUDGET_MS),
   * in the order they were set. The warm-up's server and the daemon's overlap, and either may stop
   * first: each takes back only its own.
   */
  private readonly budgets = new Map<object, number>();
  private currentBudgetMs: number;

  constructor(private readonly options: DeferredInputOptions) {
    this.now = options.now ?? (() => performance.now());
    this.schedule = options.schedule ?? setImmediate;
    this.currentBudgetMs = options.budgetMs;
  }

  /** Time a turn gives the queue (ms): the budget set last by an owner that has not cleared it, else options.budgetMs. */
  get budgetMs(): number {
    return this.currentBudgetMs;
  }

  /** `owner`'s budget is in force from now on, until it clears it or another owner sets one. */
  setBudget(owner: object, ms: number): void {
    this.budgets.delete(owner);
    this.budgets.set(owner, ms);
    this.currentBudgetMs = ms;
  }

  /** Takes back `owner`'s budget: the one set last by another owner is in force, or options.budgetMs when none is. */
  clearBudget(owner: object): void {
    if (!this.budgets.delete(owner)) return;
    let latest = this.options.budgetMs;
    for (const ms of this.budgets.values()) latest = ms;
    this.currentBudgetMs = latest;
  }

  /** Reports each turn that runs the queue to `observer` from now on (CallServer.listen: the daemon's metrics). */
  watch(observer: DeferredInputObserver): void {
    this.observers.add(observer);
  }

  unwatch(observer: DeferredInputObserver): void {
    this.observers.delete(observer);
  }

  isWatching(observer: DeferredInputObserver): boolean {
    return this.observers.has(observer);
  }

  /** Items waiting. */
  get size(): number {
    return this.items.length - this.head;
  }

  push(run: () => void): void {
    this.items.push({ at: this.now(), run });
    if (!this.scheduled && !this.draining) {
      this.scheduled = true;
      this.schedule(this.onImmediate);
    }
  }

  /**
   * An immediate queued now must run before the queue does: the end-of-turn write of a call being
   * set up (EslConnection.flushAtEndOfTurn), which would otherwise wait behind the bridged calls'
   * events, and the promise callbacks they resume (a CDR), whenever the queue's own immediate came
   * first. Each hold() is followed by one release() when that immediate runs.
   */
  hold(): void {
    this.holds++;
  }

  /** The held immediate ran. */
  release(): void {
    this.holds--;
  }

  /**
   * While holds are out the queue waits for the next turn (an immediate queued from an immediate
   * runs in the next turn's check phase, after the ones this turn queued): a turn with setups
   * being written gives the bridged calls' input nothing, which is what shortens the setups
   * (bench/PROFILE.md, release 38: running it right after the last held write instead gave 0.71×
   * the setup p50 where this gives 0.52×). Holds out turn after turn do not starve it: an item
   * that has waited maxWaitMs runs anyway.
   */
  private readonly onImmediate = (): void => {
    if (this.head === this.items.length) {
      this.scheduled = false; // nothing left (not reached: one immediate is out at a time)
      return;
    }
    if (this.holds > 0 && this.now() - this.items[this.head]!.at < this.options.maxWaitMs) {
      this.schedule(this.onImmediate);
      return;
    }
    this.drain();
  };

  private drain(): void {
    this.scheduled = false;
    const until = this.now() + this.budgetMs;
    let longestWaitMs = 0;
    let overdue = 0;
    this.draining = true;
    try {
      while (this.head < this.items.length) {
        const item = this.items[this.head]!;
        const t = this.now();
        const waited = t - item.at;
        // The first item of a turn always runs (t < until): the queue moves every turn.
        if (t >= until && waited < this.options.maxWaitMs) break;
        if (waited >= this.options.maxWaitMs) overdue++;
        if (waited > longestWaitMs) longestWaitMs = waited;
        this.items[this.head++] = undefined;
        try {
          item.run();
        } catch (err) {
          this.options.onError(err);
        }
      }
    } finally {
      // Also when onError threw: the queue must not stay marked as draining, or unscheduled.
      this.draining = false;
      this.settle();
    }
    this.report(longestWaitMs, overdue);
  }

  /** After a drain: an empty queue reset, a long one cut down, the next run scheduled while items wait. */
  private settle(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
      return;
    }
    if (this.head >= COMPACT_AFTER) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.scheduled = true;
    this.schedule(this.onImmediate);
  }

  /** An observer that throws is dropped and its error reported as an item's would be; the queue goes on. */
  private report(longestWaitMs: number, overdue: number): void {
    for (const observer of this.observers) {
      try {
        observer.turn(longestWaitMs, overdue);
      } catch (err) {
        this.observers.delete(observer);
        this.options.onError(err);
      }
    }
  }
}

/**
 * A millisecond of each turn (ESL_BRIDGED_INPUT_BUDGET_MS's default): of the budgets measured
 * (bench/PROFILE.md, release 38), 0.5 ms cost 8-9 % of the calls/s and 2 ms shortened the setup less.
 */
export const DEFERRED_INPUT_BUDGET_MS = 1;
/** A bridged call's events are late by at most about this much, however loaded the daemon. */
export const DEFERRED_INPUT_MAX_WAIT_MS = 100;

/**
 * The process's queue. Connections catch their own handlers' errors (EslConnection); anything
 * else that throws in an item is a bug and ends the process as an uncaught exception would have
 * in the socket's own event, after the queue is consistent again.
 */
export const deferredInput = new DeferredInput({
  budgetMs: DEFERRED_INPUT_BUDGET_MS,
  maxWaitMs: DEFERRED_INPUT_MAX_WAIT_MS,
  onError: (err) =>
    process.nextTick(() => {
      throw err;
    }),
});
