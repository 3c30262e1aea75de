/**
 * The primary's decisions, as pure functions: how long to wait before starting a worker again,
 * which worker leads (runs the cluster's cron jobs, writes the configuration cache), how
 * connections reach the workers, and what a
 * worker's exit means for the cluster.
 */
import cluster from 'node:cluster';
import { isStopSignal } from './protocol';

/** A worker that lived this long before dying starts again after the shortest wait. */
export const STABLE_AFTER_MS = 30_000;
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 30_000;

/** Wait before the n-th start in a row of a slot whose workers keep dying young (n ≥ 1): 250 ms, 500 ms, 1 s … 30 s. */
export function restartDelayMs(failuresInRow: number): number {
  const n = Math.max(1, Math.floor(failuresInRow));
  return Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(n - 1, 20));
}

/** Failures in a row after a worker lived `livedMs`: one that had been stable starts the count again. */
export function nextFailuresInRow(previous: number, livedMs: number): number {
  return livedMs >= STABLE_AFTER_MS ? 1 : previous + 1;
}

/** The leader stays while it serves; else the lowest serving slot; null when none serves. */
export function pickLeader(current: number | null, serving: readonly number[]): number | null {
  if (current !== null && serving.includes(current)) return current;
  return serving.length === 0 ? null : Math.min(...serving);
}

export type ExitVerdict =
  /** Start a replacement (after restartDelayMs). */
  | { action: 'restart' }
  /** Stop the whole daemon with this exit code: restarting would fail the same way. */
  | { action: 'stop'; exitCode: number; reason: string };

/**
 * What a worker's exit the primary did not ask for means (`code` null when `signal` ended it).
 * Exit 2 (invalid setting) and 3 (spool folder in use) would fail again in every replacement: the
 * daemon stops with the same code (README "Exit codes"). A worker signalled alone (by someone, not
 * the primary) is replaced, even before any worker served calls, since nothing failed: once
 * signalled it exits 0 after its stop (src/cluster/worker.ts exits 0 only so), twice while it
 * starts it ends by that SIGTERM or SIGINT. Any other exit before the daemon ever served calls is
 * a failed start-up: exit 1, as a single process would. After that, a worker that dies is replaced.
 */
export function verdictOnExit(code: number | null, signal: string | null, everServed: boolean): ExitVerdict {
  if (code === 2 || code === 3) return { action: 'stop', exitCode: code, reason: code === 2 ? 'invalid setting' : 'CDR spool folder in use' };
  const stopped = code === 0 || isStopSignal(signal);
  if (!everServed && !stopped) return { action: 'stop', exitCode: 1, reason: 'start-up failed' };
  return { action: 'restart' };
}

/** How often the primary pings its serving workers for a hang bound of `timeoutMs`: a quarter of it, from 250 ms to 5 s. */
export function pingIntervalMs(timeoutMs: number): number {
  return Math.min(5000, Math.max(250, Math.floor(timeoutMs / 4)));
}

/**
 * Whether a worker is hung: a ping has gone unanswered (`unansweredSince`, when the first ping
 * after its last message was sent) for longer than `timeoutMs`. Never with a bound of 0.
 */
export function isHung(unansweredSince: number | null, nowMs: number, timeoutMs: number): boolean {
  return timeoutMs > 0 && unansweredSince !== null && nowMs - unansweredSince > timeoutMs;
}

/**
 * The primary's own ping round came this late (`sinceLastMs` after the one before, against
 * `intervalMs`): it was stalled itself (a suspended VM, the whole group stopped and continued),
 * so its workers' silence meanwhile says nothing about them, and their clocks start again. A
 * negative gap (a clock that went back) counts as late too.
 */
export function roundWasLate(sinceLastMs: number, intervalMs: number): boolean {
  return sinceLastMs < 0 || sinceLastMs > 2 * intervalMs;
}

/** What one ping round does with one worker. */
export type PingStep = 'skip' | 'ping' | 'kill';

/**
 * A ping round's step for one worker: one not `serving` (still starting, or already killed as
 * hung and its exit awaited) is left alone; one hung (isHung) is killed, unless this round came
 * late (roundWasLate: the silence says nothing, its clock starts again); any other is pinged.
 */
export function pingStep(serving: boolean, unansweredSince: number | null, nowMs: number, timeoutMs: number, late: boolean): PingStep {
  if (!serving) return 'skip';
  return !late && isHung(unansweredSince, nowMs, timeoutMs) ? 'kill' : 'ping';
}

/** node:cluster's policy for CLUSTER_SCHEDULING: the primary hands connections round-robin, or the kernel spreads accepts. */
export function schedulingPolicyOf(scheduling: 'round_robin' | 'os'): number {
  return scheduling === 'os' ? cluster.SCHED_NONE : cluster.SCHED_RR;
}
