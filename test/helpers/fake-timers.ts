/**
 * A hand-driven monotonic clock for the spend guards' injected timers (src/calls/spend-guard.ts
 * GuardTimers): nothing fires until a test moves the clock on, so a test of when a warning or a
 * cut happens is exact, never a race with the machine's load.
 */
import type { GuardTimers } from '../../src/calls/spend-guard';
import { MAX_TIMER_MS } from '../../src/timer-limit';

/** Lets promise callbacks queued by what just ran settle (they run before setImmediate's). */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export class FakeTimers implements GuardTimers {
  t = 0;
  /**
   * How early a timer fires (ms): Node.js counts a timer from the event loop's cached time, which
   * lags behind by the work of the turn that set the timer. A timer set from a timer's callback,
   * just after the loop read the time, is on time.
   */
  early = 0;
  /** Longest delay asked for. */
  longest = 0;
  /** Database reads started by the code under test and not yet waited for (track()). */
  readonly reads: Array<Promise<unknown>> = [];
  private firing = false;
  private due: Array<{ at: number; fn: () => void; id: number }> = [];
  private seq = 0;

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.longest = Math.max(this.longest, ms);
    // As Node.js: a delay beyond 2^31 - 1 ms is set to 1 ms.
    this.due.push({ at: this.t + Math.max(0, (ms > MAX_TIMER_MS ? 1 : ms) - (this.firing ? 0 : this.early)), fn, id });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.due = this.due.filter((d) => d.id !== handle);
  }

  /** Moves the clock on by `ms`, firing what falls due in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    while (this.fireNext(end));
    this.t = end;
  }

  /**
   * As advance(), but after each timer waits for the reads it started (a real query, answered at
   * the fake time it was due) and for what the code does with their answers.
   */
  async advanceSettling(ms: number): Promise<void> {
    const end = this.t + ms;
    while (this.fireNext(end)) {
      while (this.reads.length > 0) await Promise.allSettled(this.reads.splice(0));
      await settle();
    }
    this.t = end;
  }

  /** A read advanceSettling() waits for. */
  track<T>(read: Promise<T>): Promise<T> {
    this.reads.push(read);
    return read;
  }

  /** Fires the earliest timer due by `end`; false when there is none. */
  private fireNext(end: number): boolean {
    this.due.sort((a, b) => a.at - b.at);
    const next = this.due[0];
    if (!next || next.at > end) return false;
    this.due.shift();
    this.t = next.at;
    this.firing = true;
    try {
      next.fn();
    } finally {
      this.firing = false;
    }
    return true;
  }
}
