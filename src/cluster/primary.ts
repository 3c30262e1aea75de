/**
 * The primary process of a daemon run with CLUSTER_WORKERS = N > 1 (node:cluster). It serves no
 * call itself; it
 *  - locks CDR_SPOOL_DIR (a second daemon on it exits 3, as before) and moves segments left by an
 *    earlier run with another layout into worker-1 (spool-layout.ts);
 *  - forks N workers (worker 1 first: it runs the database migrations; the others when it serves),
 *    telling each its slot (its spool folder worker-<slot>); they share the ESL
 *    listening port: the primary's listening socket hands connections round-robin, or with
 *    CLUSTER_SCHEDULING=os every worker accepts from the shared socket (schedulingPolicyOf);
 *  - starts a worker again when one dies unasked (backoff, counted), in the same slot, so it
 *    takes the dead one's spool folder and replays its CDRs; stops the daemon when a worker's exit
 *    says a replacement would fail the same way (policy.ts);
 *  - kills a serving worker that answers no ping for CLUSTER_WORKER_HANG_TIMEOUT_S (hung), which
 *    then dies and is replaced as above;
 *  - makes one worker the leader (cluster cron jobs, the configuration cache file) and another one
 *    when the leader dies;
 *  - serves /metrics (all workers' registries and its own, aggregated) and /healthz (merged);
 *  - on SIGTERM/SIGINT has every worker drain as a single daemon does, then exits 0; on a second
 *    one, the workers whose outbound socket has not opened end at once (quitStarting), as a
 *    single daemon does.
 */
import cluster, { type Worker } from 'node:cluster';
import fs from 'node:fs';
import os from 'node:os';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from 'pino';
import { SpoolLock, SpoolLockedError } from '../cdr/spool-lock';
import type { Settings } from '../config';
import { MetricsServer, type Health } from '../http/metrics-server';
import { newWarmUpTag, removeWarmUpFoldersOf } from '../warmup/folders';
import { aggregateText, clusterHealth, retire, type MetricJson, type WorkerHealth } from './aggregate';
import { ClusterMetrics } from './metrics';
import { nextFailuresInRow, pickLeader, pingIntervalMs, pingStep, restartDelayMs, roundWasLate, schedulingPolicyOf, verdictOnExit } from './policy';
import { DeadLeaseHolders } from './dead-leases';
import { isStopSignal, parseToPrimary, type StopSignal, type ToWorker } from './protocol';
import { moveSegments, workerSpoolDir, workerSpoolDirs } from './spool-layout';

const SCRAPE_TIMEOUT_MS = 2000;
/** A worker told to quit while it starts is killed (SIGKILL) when it is still there after this long. */
const QUIT_TIMEOUT_MS = 2000;

interface Slot {
  readonly slot: number;
  worker: Worker | null;
  ready: boolean;
  startedAt: number;
  failuresInRow: number;
  restartTimer: NodeJS.Timeout | null;
  /** The last registry this slot's worker handed over (kept for a worker that does not answer, and retired when it dies). */
  lastMetrics: MetricJson[] | null;
  /** Its cron scheduler's lease holder (cron_leases.holder), from its ready message; null with cron off. */
  cronHolder: string | null;
  /** Told to quit while starting (quitStarting): its end by that signal is no failure. */
  quitting: boolean;
  /** Answered a quit that it drains instead (its outbound socket had opened): never told to quit or killed for it again. */
  drains: boolean;
  /** When the first ping after its last message went out (performance.now(): a step of the wall clock changes nothing); null while it answers. */
  unansweredSince: number | null;
  /** Put in its warm-up folder's name (src/warmup/folders.ts): the folder removed when it exits is its own, not one of another pid namespace's same pid. */
  warmUpTag: string;
  /** Killed as hung, its exit awaited: no longer serving, and no worker still starting either (quitStarting leaves it alone). */
  killedHung: boolean;
}

type Pending = (m: unknown) => void;

export class ClusterPrimary {
  metricsPort = 0;
  private readonly slots: Slot[];
  private readonly registry = new Registry();
  private readonly metrics: ClusterMetrics;
  private readonly http: MetricsServer;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private retired: MetricJson[] = [];
  private retiring: Promise<void> = Promise.resolve();
  private leader: number | null = null;
  private everServed = false;
  private allReadyLogged = false;
  private stopping: Promise<number> | null = null;
  private exitCode = 0;
  private readonly exited = new Map<number, () => void>();
  /** Lease holders of workers that exited, until a live worker has handed their leases back. */
  private readonly deadLeases = new DeadLeaseHolders();
  private releaseTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private lastPingRound = 0;

  private constructor(
    private readonly settings: Settings,
    private readonly log: Logger,
    private readonly lock: SpoolLock,
  ) {
    const n = settings.cluster.workers;
    this.slots = Array.from({ length: n }, (_, i) => ({ slot: i + 1, worker: null, ready: false, startedAt: 0, failuresInRow: 0, restartTimer: null, lastMetrics: null, cronHolder: null, quitting: false, drains: false, unansweredSince: null, warmUpTag: '', killedHung: false }));
    collectDefaultMetrics({ register: this.registry });
    this.metrics = new ClusterMetrics(this.registry);
    this.metrics.workers.set(n);
    this.metrics.workersAlive.set(0);
    this.http = new MetricsServer({ metrics: () => this.scrape(), contentType: this.registry.contentType }, () => this.health());
  }

  /** Locks the spool folder, lays it out, opens /metrics and forks the workers. */
  static async start(settings: Settings, log: Logger): Promise<ClusterPrimary> {
    const root = settings.cdr.spoolDir;
    try {
      fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new Error(`cannot create the CDR spool folder ${root} (${(err as Error).message}): set CDR_SPOOL_DIR to a folder this user may write`, { cause: err });
    }
    const lock = SpoolLock.acquire(root);
    try {
      layOutSpool(root, settings.cluster.workers, log);
      const primary = new ClusterPrimary(settings, log, lock);
      primary.metricsPort = (await primary.http.listen(settings.metrics.host, settings.metrics.port)).port;
      log.info({ host: settings.metrics.host, port: primary.metricsPort, workers: settings.cluster.workers }, 'metrics listening on /metrics');
      // Before the first fork (node:cluster reads it then); set here, not by NODE_CLUSTER_SCHED_POLICY.
      cluster.schedulingPolicy = schedulingPolicyOf(settings.cluster.scheduling);
      cluster.on('exit', (worker, code, signal) => primary.onExit(worker, code, signal));
      // Worker 1 first: it migrates the database (knex's migration lock refuses a second migrating
      // process outright); the others start once it serves calls. With a configuration cache that
      // can be before its migrations end (CONFIG_START_DATABASE_WAIT_MS): theirs then wait on the
      // migration lock (db/migrate.ts), each routing from the cache meanwhile.
      primary.fork(primary.slots[0]);
      primary.watchForHangs();
      return primary;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  private fork(s: Slot): void {
    s.restartTimer = null;
    s.ready = false;
    s.quitting = false;
    s.drains = false;
    s.unansweredSince = null;
    s.warmUpTag = newWarmUpTag();
    s.killedHung = false;
    s.startedAt = Date.now();
    const worker = cluster.fork();
    s.worker = worker;
    worker.on('message', (raw: unknown) => this.onMessage(s, worker, raw));
    // Any other failure of the worker's channel: an 'error' event nobody listens to would end the
    // primary, and every worker with it. 'exit' restarts the worker.
    worker.on('error', (err: Error) => this.log.warn({ err: err.message, worker: s.slot, pid: worker.process.pid }, 'worker channel error'));
    this.log.info({ worker: s.slot, pid: worker.process.pid }, 'worker started');
  }

  private send(worker: Worker, m: ToWorker): void {
    sendToWorker(worker, m, (err) => this.log.warn({ err: err.message, pid: worker.process.pid, message: m.type }, 'a message to a worker was not delivered (it is exiting)'));
  }

  private onMessage(s: Slot, worker: Worker, raw: unknown): void {
    const m = parseToPrimary(raw);
    if (!m || s.worker !== worker) return;
    // Any message says its event loop runs.
    s.unansweredSince = null;
    switch (m.type) {
      case 'hotline:hello':
        this.send(worker, { type: 'hotline:start', slot: s.slot, warmUpTag: s.warmUpTag });
        return;
      case 'hotline:ready':
        s.ready = true;
        s.cronHolder = m.cronHolder;
        this.everServed = true;
        this.updateAlive();
        this.log.info({ worker: s.slot, pid: worker.process.pid, eslPort: m.eslPort, cronHolder: m.cronHolder }, 'worker serving calls');
        if (!this.allReadyLogged && this.slots.every((x) => x.ready)) {
          this.allReadyLogged = true;
          this.log.info({ workers: this.slots.length, eslPort: m.eslPort }, 'all workers serving calls');
        }
        this.assignLeader();
        this.releaseDeadLeases();
        for (const other of this.slots) if (other.startedAt === 0 && !this.stopping) this.fork(other);
        return;
      case 'hotline:quit-ignored':
        // Its socket had opened: it drains its calls, and is not killed for not quitting.
        s.quitting = false;
        s.drains = true;
        this.log.info({ worker: s.slot, pid: worker.process.pid }, 'worker told to quit drains its calls instead (its outbound socket had opened)');
        return;
      case 'hotline:leases-released':
        this.deadLeases.handedBack(m.holders);
        // Usually none is held (the dead worker was between runs): only a lease handed back is news.
        this.log[m.released > 0 ? 'info' : 'debug']({ worker: s.slot, holders: m.holders, released: m.released }, 'cron leases of dead workers handed back');
        if (this.deadLeases.size === 0 && this.releaseTimer) clearTimeout(this.releaseTimer);
        return;
      case 'hotline:metrics':
        s.lastMetrics = m.metrics;
        this.pending.get(m.id)?.(m);
        return;
      case 'hotline:health':
        this.pending.get(m.id)?.(m);
        return;
      case 'hotline:pong':
        return;
      default: {
        const never: never = m;
        throw new Error(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  private updateAlive(): void {
    this.metrics.workersAlive.set(this.slots.filter((s) => s.ready).length);
  }

  private assignLeader(): void {
    if (this.stopping) return;
    const next = pickLeader(this.leader, this.slots.filter((s) => s.ready).map((s) => s.slot));
    if (next === this.leader || next === null) return;
    const worker = this.slots[next - 1].worker;
    if (!worker) return;
    this.leader = next;
    this.send(worker, { type: 'hotline:leader' });
    this.log.info({ worker: next }, 'leader assigned: cluster cron jobs and the configuration cache file');
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    const s = this.slots.find((x) => x.worker === worker);
    if (!s) return;
    const wasReady = s.ready;
    s.worker = null;
    s.ready = false;
    this.updateAlive();
    const dead = s.lastMetrics;
    s.lastMetrics = null;
    // A scrape waits for this: the dead worker's counts leave the live parts and join the retired ones at once.
    if (dead) this.retiring = this.retiring.then(async () => void (this.retired = await retire(this.retired, dead))).catch((err: unknown) => this.log.error({ err }, 'could not keep a dead worker\'s counters'));
    if (this.leader === s.slot) this.leader = null;
    // Its process is gone: a run it held a lease for can neither go on nor renew. Without this the
    // jobs it was running would wait for their leases to expire (2 min for caps, 10 for reports).
    if (s.cronHolder !== null) this.deadLeases.add(s.cronHolder, Date.now());
    s.cronHolder = null;
    // A worker killed in its warm-up (SIGKILL: the quit timer, the OOM killer) ran no cleanup.
    const pid = worker.process.pid;
    const left = pid === undefined ? [] : removeWarmUpFoldersOf(pid, s.warmUpTag, os.tmpdir());
    if (left.length > 0) this.log.info({ worker: s.slot, pid, folders: left }, 'removed the warm-up folder the worker left');
    if (this.stopping) {
      // Not failures: a worker told to quit, or one that never served and ended by SIGTERM/SIGINT
      // (its own second signal: Ctrl-C twice reaches every process, maybe before the primary's).
      if (code !== 0 && !s.quitting && !(!wasReady && isStopSignal(signal))) this.exitCode = 1;
      this.log.info({ worker: s.slot, pid: worker.process.pid, code, signal }, 'worker stopped');
      this.exited.get(s.slot)?.();
      return;
    }
    const verdict = verdictOnExit(code, signal, this.everServed);
    if (verdict.action === 'stop') {
      this.log.fatal({ worker: s.slot, pid: worker.process.pid, code, signal, reason: verdict.reason }, 'worker failed; stopping the daemon');
      void this.stop(verdict.exitCode).then((exitCode) => process.exit(exitCode));
      return;
    }
    this.metrics.restarts.inc();
    s.failuresInRow = nextFailuresInRow(s.failuresInRow, Date.now() - s.startedAt);
    const delayMs = restartDelayMs(s.failuresInRow);
    if (code === 0) this.log.warn({ worker: s.slot, pid: worker.process.pid, code, restartInMs: delayMs }, 'worker exited 0 unasked (stopped on a signal of its own); starting a replacement');
    else if (!wasReady && isStopSignal(signal)) this.log.warn({ worker: s.slot, pid: worker.process.pid, signal, restartInMs: delayMs }, 'worker ended by signals of its own while starting; starting a replacement');
    else this.log.error({ worker: s.slot, pid: worker.process.pid, code, signal, restartInMs: delayMs }, 'worker died; its calls were cut; starting a replacement that replays its CDR spool');
    s.restartTimer = setTimeout(() => this.fork(s), delayMs);
    this.assignLeader();
    this.releaseDeadLeases();
  }

  /**
   * Pings every serving worker each pingIntervalMs and kills one that answered nothing for
   * CLUSTER_WORKER_HANG_TIMEOUT_S (isHung): its event loop is blocked or the process stopped, so
   * its calls are lost already, node:cluster may still hand it new ones, and the cron leases it
   * holds would wait for their expiry. Its exit then goes the way of any death (onExit): a
   * replacement in its slot replays its spool, a live worker hands its leases back. Workers still
   * starting are not pinged (an SQLite migration runs on the event loop); none while stopping.
   */
  private watchForHangs(): void {
    const timeoutMs = this.settings.cluster.hangTimeoutS * 1000;
    if (timeoutMs <= 0) return;
    const intervalMs = pingIntervalMs(timeoutMs);
    this.lastPingRound = performance.now();
    this.pingTimer = setInterval(() => this.pingRound(timeoutMs, intervalMs), intervalMs);
    this.pingTimer.unref();
  }

  private pingRound(timeoutMs: number, intervalMs: number): void {
    if (this.stopping) return;
    const now = performance.now();
    const late = roundWasLate(now - this.lastPingRound, intervalMs);
    this.lastPingRound = now;
    for (const s of this.slots) {
      const worker = s.worker;
      if (!worker) continue;
      const step = pingStep(s.ready, s.unansweredSince, now, timeoutMs, late);
      switch (step) {
        case 'skip':
          break;
        case 'kill':
          this.metrics.hungKilled.inc();
          this.log.error({ worker: s.slot, pid: worker.process.pid, silentS: Math.round((now - (s.unansweredSince ?? now)) / 1000) }, 'worker hung: it answered no ping in time; killed (a replacement replays its CDR spool)');
          // No longer serving from now on, whenever its exit comes (a process in uninterruptible
          // sleep can take long): not pinged or killed again, not the leader, not asked for leases.
          s.ready = false;
          s.killedHung = true;
          this.updateAlive();
          if (this.leader === s.slot) this.leader = null;
          this.assignLeader();
          worker.process.kill('SIGKILL');
          break;
        case 'ping':
          if (late) s.unansweredSince = null;
          s.unansweredSince ??= now;
          this.send(worker, { type: 'hotline:ping' });
          break;
        default: {
          const never: never = step;
          throw new Error(`unhandled ping step ${String(never)}`);
        }
      }
    }
  }

  /**
   * Asks a serving worker to hand back the cron leases of workers that exited (src/cluster/dead-leases.ts:
   * after a grace, each serving worker in turn, until one answers, given up once they have
   * expired anyway). Runs on a worker's exit, when one is ready, and on its own timer.
   */
  private releaseDeadLeases(): void {
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    if (this.stopping) return;
    const now = Date.now();
    const expired = this.deadLeases.expire(now);
    if (expired.length > 0) this.log.warn({ holders: expired }, 'cron leases of dead workers not handed back (no worker could); they have expired by themselves');
    const step = this.deadLeases.next(now, this.slots.filter((x) => x.ready && x.worker !== null).map((x) => x.slot));
    if (step.action === 'ask') {
      const worker = this.slots[step.slot - 1].worker;
      if (worker) this.send(worker, { type: 'hotline:release-leases', holders: step.holders });
    }
    const wakeMs = this.deadLeases.wakeInMs(now);
    if (wakeMs === null) return;
    this.releaseTimer = setTimeout(() => this.releaseDeadLeases(), wakeMs);
    this.releaseTimer.unref();
  }

  /** Asks one worker and waits at most SCRAPE_TIMEOUT_MS; null when it does not answer. */
  private ask<T>(worker: Worker, make: (id: number) => ToWorker, pick: (m: unknown) => T | null): Promise<T | null> {
    if (!worker.isConnected()) return Promise.resolve(null);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(null);
      }, SCRAPE_TIMEOUT_MS);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(pick(m));
      });
      this.send(worker, make(id));
    });
  }

  private async scrape(): Promise<string> {
    const parts = await Promise.all(
      this.slots.map(async (s) => {
        const worker = s.worker;
        if (!worker) return null;
        const got = await this.ask(worker, (id) => ({ type: 'hotline:metrics?', id }), (m) => (m as { metrics: MetricJson[] }).metrics);
        if (got === null) this.metrics.scrapeFailures.inc();
        return { s, worker, metrics: got ?? s.lastMetrics, answered: got !== null };
      }),
    );
    // A worker process that is there (alive, starting or draining) but did not answer in time: hung.
    this.metrics.notAnswering.set(parts.filter((p) => p !== null && !p.answered && p.s.worker === p.worker).length);
    const own = (await this.registry.getMetricsAsJSON()) as unknown as MetricJson[];
    await this.retiring;
    // A worker that died meanwhile is in the retired counts now: not twice.
    const live = parts.flatMap((p) => (p && p.metrics && p.s.worker === p.worker ? [p.metrics] : []));
    return aggregateText([own, ...live], this.retired);
  }

  private async health(): Promise<Health> {
    const answers: WorkerHealth[] = await Promise.all(
      this.slots.map(async (s) => ({
        slot: s.slot,
        health: s.worker && s.ready ? await this.ask(s.worker, (id) => ({ type: 'hotline:health?', id }), (m) => (m as { health: Health }).health) : null,
      })),
    );
    return clusterHealth(answers, this.slots.length);
  }

  /**
   * A second SIGTERM/SIGINT while stopping: the workers not ready yet (migrating, warming up) are
   * told to end at once by that signal; one whose outbound socket has opened answers that it
   * drains instead, and one that neither ends nor answers within QUIT_TIMEOUT_MS is killed.
   * Ready workers go on draining. True when no worker ever served: the daemon never got past its
   * start, and the caller ends the primary by the signal once stop() resolves.
   */
  quitStarting(signal: StopSignal): boolean {
    if (!this.stopping) return false;
    const starting = this.slots.filter((s) => s.worker !== null && !s.ready && !s.drains && !s.killedHung);
    for (const s of starting) {
      s.quitting = true;
      if (s.worker) this.send(s.worker, { type: 'hotline:quit', signal });
    }
    this.log.warn({ signal, workers: starting.map((s) => s.slot) }, 'second signal: workers still starting end at once; those serving go on draining');
    if (starting.length > 0) {
      setTimeout(() => {
        for (const s of starting) {
          // Gone, replaced, or serving after all (its ready message crossed the quit): left alone.
          if (!s.worker || !s.quitting || s.ready || s.drains) continue;
          this.exitCode = 1;
          this.log.error({ worker: s.slot, pid: s.worker.process.pid }, 'worker told to quit did not end in time; killed');
          s.worker.process.kill('SIGKILL');
        }
      }, QUIT_TIMEOUT_MS).unref();
    }
    return !this.everServed;
  }

  /**
   * Drains every worker (each closes its listener, lets calls go on up to DRAIN_TIMEOUT_S, cuts
   * the rest, flushes its CDRs and exits), then closes /metrics and the spool lock. Resolves with
   * the exit code: `exitCode` (0 for a signal) unless a worker failed to stop cleanly (1).
   */
  stop(exitCode = 0): Promise<number> {
    this.stopping ??= (async () => {
      this.exitCode = exitCode;
      const live = this.slots.filter((s) => s.worker !== null);
      this.log.info({ workers: live.length, drainS: this.settings.calls.drainTimeoutS }, 'stopping: draining every worker');
      for (const s of this.slots) {
        if (s.restartTimer) clearTimeout(s.restartTimer);
        s.restartTimer = null;
      }
      if (this.releaseTimer) clearTimeout(this.releaseTimer);
      this.releaseTimer = null;
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.pingTimer = null;
      const gone = live.map((s) => new Promise<void>((resolve) => this.exited.set(s.slot, resolve)));
      for (const s of live) if (s.worker) this.send(s.worker, { type: 'hotline:drain' });
      // Each worker's stop is bounded (drain, cut, the reply timeout, one flush); past this one it is stuck.
      const boundMs = (this.settings.calls.drainTimeoutS + 60) * 1000 + this.settings.esl.replyTimeoutMs;
      let timer: NodeJS.Timeout | undefined;
      const stuck = await Promise.race([Promise.all(gone).then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), boundMs)))]);
      clearTimeout(timer);
      if (stuck) {
        this.exitCode = 1;
        for (const s of this.slots) {
          if (!s.worker) continue;
          this.log.error({ worker: s.slot, pid: s.worker.process.pid }, 'worker did not stop in time; killed');
          s.worker.process.kill('SIGKILL');
        }
      }
      await this.http.close();
      this.lock.release();
      this.log.info({ exitCode: this.exitCode }, 'stopped');
      return this.exitCode;
    })();
    return this.stopping;
  }
}

/**
 * Before any worker runs: segments in the top folder (left by a single-process run) and in worker
 * folders beyond `workers` (a run with more workers) go to worker-1, whose worker replays them.
 * The caller holds the top folder's lock; worker-1's is taken for the move.
 */
function layOutSpool(root: string, workers: number, log: Logger): void {
  const first = workerSpoolDir(root, 1);
  fs.mkdirSync(first, { recursive: true, mode: 0o700 });
  let lock: SpoolLock;
  try {
    lock = SpoolLock.acquire(first);
  } catch (err) {
    if (err instanceof SpoolLockedError) throw new SpoolLockedError(first, err.owner);
    throw err;
  }
  try {
    const top = moveSegments([root], first, { fromLocked: true });
    const extra = moveSegments(workerSpoolDirs(root).filter((w) => w.slot > workers).map((w) => w.dir), first);
    for (const m of [...top.moved, ...extra.moved]) log.info({ from: m.from, to: first, segments: m.segments, journals: m.journals ?? 0 }, 'CDR spool segments and call journals moved for worker 1 to replay');
    for (const dir of extra.busy) log.warn({ dir }, 'CDR spool folder of a worker still in use by another process; left alone');
  } finally {
    lock.release();
  }
}

/** What sendToWorker needs of a worker (node:cluster's Worker). */
export interface WorkerChannel {
  isConnected(): boolean;
  send(message: ToWorker, callback: (err: Error | null) => void): boolean;
}

/**
 * Sends a message to a worker that may have just died. A worker killed a moment ago (kill -9, the
 * OOM killer) still counts as connected until the primary has read the end of its channel, and
 * the write fails (EPIPE). Sent without a callback, Node.js reports that as an 'error' event on
 * the worker, and with no listener the primary died with the worker: in a plain reproduction
 * (send to a worker just killed, while it still counts as connected) 3 runs of 6, and once in
 * test/cluster/cluster.test.ts, whose /healthz asks every worker. With the callback the failure
 * is only reported; the worker's 'exit' restarts it.
 */
export function sendToWorker(worker: WorkerChannel, message: ToWorker, onFailure: (err: Error) => void): void {
  if (!worker.isConnected()) return;
  worker.send(message, (err) => {
    if (err) onFailure(err);
  });
}
