/**
 * The primary's record of cron lease holders whose worker exited, until a live worker has handed
 * their leases back (src/cron/scheduler.ts releaseLeasesOf). Pure: the primary passes the clock
 * and the slots that serve calls, and sends what `next` says.
 *
 * - Not at once: a statement the dead worker had already sent (an UPDATE of the caps job, a
 *   retention DELETE) runs on in MariaDB until it ends. Its lease is handed back GRACE_MS after the
 *   exit, so the next run cannot overlap it.
 * - Asked of each serving worker in turn, every RETRY_MS, until one answers: one that is draining
 *   or whose database is away does not answer, and the next is asked.
 * - Given up GIVE_UP_MS after the exit: by then every lease (10 min at most, reports and
 *   retention) has expired by itself.
 */

export const GRACE_MS = 10_000;
export const RETRY_MS = 30_000;
export const GIVE_UP_MS = 11 * 60_000;

export type LeaseStep =
  /** Ask this slot's worker to hand these holders' leases back. */
  | { action: 'ask'; slot: number; holders: string[] }
  /** Nobody to ask now (no holder due, or no worker serving). */
  | { action: 'wait' };

export class DeadLeaseHolders {
  /** Holder → when its worker exited (ms). */
  private readonly exitedAt = new Map<string, number>();
  private lastAsked: number | null = null;

  get size(): number {
    return this.exitedAt.size;
  }

  /** A worker whose scheduler held leases as `holder` exited at `now`. */
  add(holder: string, now: number): void {
    if (!this.exitedAt.has(holder)) this.exitedAt.set(holder, now);
  }

  /** A worker said these holders' leases are handed back. */
  handedBack(holders: readonly string[]): void {
    for (const h of holders) this.exitedAt.delete(h);
  }

  /** Holders past GIVE_UP_MS are dropped (their leases have expired) and returned, for the log. */
  expire(now: number): string[] {
    const gone: string[] = [];
    for (const [h, at] of this.exitedAt) {
      if (now - at >= GIVE_UP_MS) {
        gone.push(h);
        this.exitedAt.delete(h);
      }
    }
    return gone;
  }

  /** What to do now: the holders past their grace, asked of the serving slot after the one asked last. */
  next(now: number, serving: readonly number[]): LeaseStep {
    const due = [...this.exitedAt].filter(([, at]) => now - at >= GRACE_MS).map(([h]) => h);
    if (due.length === 0 || serving.length === 0) return { action: 'wait' };
    const sorted = [...serving].sort((a, b) => a - b);
    const after = this.lastAsked === null ? undefined : sorted.find((s) => s > this.lastAsked!);
    const slot = after ?? sorted[0];
    this.lastAsked = slot;
    return { action: 'ask', slot, holders: due };
  }

  /** When to look again (ms from now), or null when nothing is left: a grace ending, or the next retry. */
  wakeInMs(now: number): number | null {
    if (this.exitedAt.size === 0) return null;
    let soonest = RETRY_MS;
    for (const at of this.exitedAt.values()) {
      const graceLeft = at + GRACE_MS - now;
      if (graceLeft > 0) soonest = Math.min(soonest, graceLeft);
    }
    return soonest;
  }
}
