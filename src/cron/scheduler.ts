/**
 * Cron jobs on node-cron, each run once per schedule across every daemon sharing the database.
 *
 * node-cron fires the same tick on every daemon. Each one then tries to claim the tick in the
 * job's `cron_leases` row with a single guarded UPDATE:
 *
 *   SET holder = me, last_tick = T, expires_at = now + lease
 *   WHERE job = J AND (last_tick IS NULL OR last_tick < T)      -- nobody ran tick T yet
 *                 AND (holder IS NULL OR expires_at < now)       -- nobody is running J now
 *
 * (a last_tick or expires_at more than CLOCK_STEP_MS ahead of now counts as absent: a clock that
 * was wrong wrote it)
 *
 * The database serialises the UPDATEs (row lock on MySQL, one writer on SQLite), so exactly one
 * daemon gets "1 row changed" and runs T; the others skip it. The same row makes overlapping
 * runs impossible: while a run lasts, its holder renews expires_at every third of the lease; a
 * holder that died stops renewing and the next tick after expiry takes over (in a cluster the
 * primary sees a worker die and has a live one hand its leases back sooner: releaseLeasesOf).
 * This works the same on MySQL/MariaDB and SQLite (no GET_LOCK, whose lock would also be
 * released between the ticks of two daemons whose clocks differ, letting one tick run twice).
 *
 * Jobs with scope 'node' (acting on this daemon's own live calls) use the key `job@node`: every
 * daemon runs them, none twice at once. Every run is recorded in cron_runs (start, end, rows,
 * error) and in metrics; a job that throws is logged and recorded and simply runs again at its
 * next tick. Nothing a job does can stop the daemon or the other jobs.
 */
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { createTask, type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { fromDbTimestamp, toDbTimestamp } from '../db/connect';
import type { Metrics } from '../metrics';
import { CronMetrics } from './metrics';

export type JobScope = 'cluster' | 'node';

export interface JobContext {
  /** The scheduled time this run is for (seconds or minutes, as the schedule says). */
  readonly tick: Date;
  readonly now: () => Date;
  /** Aborted when the daemon stops or the lease was lost: stop between batches. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly node: string;
}

export interface CronJob {
  readonly name: string;
  /** node-cron expression, evaluated in UTC ('* * * * *', '30 * * * * *' …). */
  readonly schedule: string;
  readonly scope: JobScope;
  /** How long a run holds the lease between renewals' deadline; default 5 minutes. */
  readonly leaseMs?: number;
  /** Does the work; returns the rows it inserted, changed or deleted. */
  run(ctx: JobContext): Promise<number | void>;
  /**
   * Reads from the database what this job's gauges show (the notification backlog), where this
   * daemon did not run the tick: called for a tick another daemon ran, and once when the
   * scheduler starts (where the gate lets this process run the job), so the gauges are right
   * after a restart. Errors are ignored: only a metric.
   */
  readonly refresh?: () => Promise<void>;
}

export type RunOutcome =
  | { ran: false; reason: 'claimed' | 'stopped' }
  | { ran: true; ok: boolean; rows: number; error: string | null; runId: number | null; durationMs: number };

export interface SchedulerDeps {
  knex: Knex;
  node: string;
  log: Logger;
  metrics: Pick<Metrics, 'registry'>;
  jobs: readonly CronJob[];
  clock?: () => Date;
  /** Asked at each scheduled tick: false skips it in this process (a cluster worker that is not the leader). */
  gate?: (job: CronJob) => boolean;
}

const DEFAULT_LEASE_MS = 5 * 60_000;
/**
 * Clock differences between daemons up to this are skew (each tick still runs once); a lease row
 * further ahead than this comes from a clock that has since been stepped back, and is ignored. (A
 * daemon whose clock stays this far ahead makes the jobs run on both time lines: twice, not never,
 * and a run of one may overlap a run of the other.)
 */
export const CLOCK_STEP_MS = 60 * 60_000;

export class CronScheduler {
  private readonly tasks: ScheduledTask[] = [];
  private readonly running = new Map<string, { promise: Promise<RunOutcome>; abort: AbortController }>();
  private readonly holder: string;
  private readonly cron: CronMetrics;
  private readonly clock: () => Date;
  private stopped = false;

  constructor(private readonly deps: SchedulerDeps) {
    // Two processes could share a NODE_NAME: the holder is this process, not the name.
    this.holder = `${deps.node}/${process.pid}/${randomBytes(4).toString('hex')}`.slice(0, 128);
    this.cron = CronMetrics.of(deps.metrics);
    this.clock = deps.clock ?? (() => new Date());
    const names = new Set<string>();
    for (const job of deps.jobs) {
      if (names.has(job.name)) throw new Error(`two cron jobs named ${job.name}`);
      names.add(job.name);
      // Exported at 0 from the start: increase() then sees the first run after a start, and an
      // alert can tell a job that does not run (HotlineCronCapsNotRunning) from one never scheduled.
      for (const result of ['ok', 'error'] as const) this.cron.runs.inc({ cron_job: job.name, result }, 0);
    }
  }

  get jobs(): readonly CronJob[] {
    return this.deps.jobs;
  }

  /** Who this process is in `cron_leases.holder`: node name, pid and a random part. */
  get holderId(): string {
    return this.holder;
  }

  /**
   * Starts the node-cron tasks. No database access here: a database that is away at start-up
   * only makes the first ticks fail (logged, retried at the next tick), never the daemon.
   */
  async start(): Promise<void> {
    for (const job of this.deps.jobs) {
      const task = createTask(
        job.schedule,
        (ctx) => {
          if (this.deps.gate && !this.deps.gate(job)) return;
          void this.runTick(job.name, ctx.date).catch((err: unknown) => this.deps.log.error({ err, job: job.name }, 'cron tick failed'));
        },
        { name: `hotline-${job.name}-${this.holder}`, timezone: 'UTC', noOverlap: false, unref: true, logger: cronLogger(this.deps.log) },
      );
      await task.start();
      this.tasks.push(task);
    }
    // In the background: a database away at start-up must not hold the start up.
    void this.refresh();
    this.deps.log.info({ jobs: this.deps.jobs.map((j) => `${j.name} (${j.schedule}, ${j.scope})`) }, 'cron jobs scheduled');
  }

  /**
   * Stops scheduling, asks running jobs to stop (their signal aborts) and waits for them, at most
   * `timeoutMs`; a run still going then is left to finish or to lose its lease by expiry.
   */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.stopped = true;
    for (const task of this.tasks.splice(0)) await task.destroy();
    const runs = [...this.running.values()];
    for (const r of runs) r.abort.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(runs.map((r) => r.promise)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /**
   * Runs the job for `tick` on this daemon if no daemon has run it yet and none is running it
   * now. The node-cron tasks call this; tests and operators can too.
   */
  runTick(name: string, tick: Date): Promise<RunOutcome> {
    const job = this.deps.jobs.find((j) => j.name === name);
    if (!job) return Promise.reject(new Error(`no cron job named ${name}`));
    if (this.stopped) return Promise.resolve({ ran: false, reason: 'stopped' });
    // One run per job per process at a time: a second tick while the first runs is skipped
    // here already (the lease would refuse it too).
    if (this.running.has(name)) return Promise.resolve({ ran: false, reason: 'claimed' });
    const abort = new AbortController();
    const promise = this.claimAndRun(job, floorTick(job.schedule, tick), abort).finally(() => this.running.delete(name));
    this.running.set(name, { promise, abort });
    return promise;
  }

  private leaseKey(job: CronJob): string {
    return job.scope === 'node' ? `${job.name}@${this.deps.node}`.slice(0, 96) : job.name;
  }

  private async claimAndRun(job: CronJob, tick: Date, abort: AbortController): Promise<RunOutcome> {
    const { knex, log, node } = this.deps;
    const key = this.leaseKey(job);
    const leaseMs = job.leaseMs ?? DEFAULT_LEASE_MS;
    const now = this.clock();
    // A last tick or an expiry further ahead of this clock than any skew between daemons was
    // written by a clock that was wrong (a bad real-time clock at boot, stepped back by NTP):
    // kept, it would stop the job on every daemon until that time came (a year, say).
    const future = toDbTimestamp(new Date(now.getTime() + CLOCK_STEP_MS));
    const futureExpiry = toDbTimestamp(new Date(now.getTime() + leaseMs + CLOCK_STEP_MS));
    const claim = (): Promise<number> =>
      knex('cron_leases')
        .where('job', key)
        .andWhere((q) => void q.whereNull('last_tick').orWhere('last_tick', '<', toDbTimestamp(tick)).orWhere('last_tick', '>', future))
        .andWhere((q) => void q.whereNull('holder').orWhere('expires_at', '<', toDbTimestamp(now)).orWhere('expires_at', '>', futureExpiry))
        .update({ holder: this.holder, last_tick: toDbTimestamp(tick), expires_at: toDbTimestamp(new Date(now.getTime() + leaseMs)) });
    let claimed = await claim();
    // Not claimed: taken, or no row. The row is looked for every time, not remembered once seen:
    // one a DBA deleted to unstick the job must be created again, or no daemon that had seen it
    // would run the job again before it restarted.
    if (claimed !== 1 && (await knex('cron_leases').where('job', key).first('job')) === undefined) {
      // First tick of this job on this database: create its row (every daemon may try), claim again.
      await knex('cron_leases').insert({ job: key }).onConflict('job').ignore();
      claimed = await claim();
    }
    if (claimed !== 1) {
      log.debug({ job: job.name, tick }, 'cron tick run by another daemon (or still running)');
      await this.refreshLastSuccess(job.name);
      await this.refreshJob(job);
      return { ran: false, reason: 'claimed' };
    }

    const started = this.clock();
    const startedHr = process.hrtime.bigint();
    const jobLog = log.child({ job: job.name, tick: tick.toISOString() });
    let runId: number | null = null;
    let rows = 0;
    let error: string | null = null;
    const heartbeat = setInterval(() => {
      void this.renew(key, tick, leaseMs).then(
        (held) => {
          if (!held) {
            jobLog.error('cron lease lost (expired and taken over?); asking the run to stop');
            abort.abort();
          }
        },
        (err: unknown) => jobLog.warn({ err }, 'cron lease renewal failed'),
      );
    }, Math.max(50, Math.floor(leaseMs / 3)));
    heartbeat.unref();
    try {
      const [id]: number[] = await knex('cron_runs').insert({
        job: job.name, node, tick: toDbTimestamp(tick), started_at: toDbTimestamp(started), status: 'running',
      });
      runId = typeof id === 'number' ? id : Number(id);
      const result = await job.run({ tick, now: this.clock, signal: abort.signal, log: jobLog, node });
      rows = typeof result === 'number' ? result : 0;
    } catch (err) {
      error = describe(err);
      jobLog.error({ err }, 'cron job failed; it runs again at its next tick');
    } finally {
      clearInterval(heartbeat);
    }
    const durationMs = Number(process.hrtime.bigint() - startedHr) / 1e6;
    const ended = this.clock();
    const ok = error === null;
    this.cron.runs.inc({ cron_job: job.name, result: ok ? 'ok' : 'error' });
    this.cron.duration.observe({ cron_job: job.name }, durationMs / 1000);
    if (ok) this.cron.lastSuccess.set({ cron_job: job.name }, ended.getTime() / 1000);
    try {
      if (runId !== null) {
        await knex('cron_runs').where({ id: runId }).update({ ended_at: toDbTimestamp(ended), status: ok ? 'ok' : 'error', rows_touched: rows, error: error?.slice(0, 1024) ?? null });
      }
      await knex('cron_leases').where({ job: key, holder: this.holder }).update({ holder: null, expires_at: null });
    } catch (err) {
      jobLog.warn({ err }, 'could not record the end of a cron run (the lease expires by itself)');
    }
    if (ok) jobLog.info({ rows, ms: Math.round(durationMs) }, 'cron job done');
    return { ran: true, ok, rows, error, runId, durationMs };
  }

  private async renew(key: string, tick: Date, leaseMs: number): Promise<boolean> {
    const n = await this.deps.knex('cron_leases')
      .where({ job: key, holder: this.holder, last_tick: toDbTimestamp(tick) })
      .update({ expires_at: toDbTimestamp(new Date(this.clock().getTime() + leaseMs)) });
    return n === 1;
  }

  /**
   * Runs the refresh hooks of the jobs the gate lets this process run: at start, and when a
   * cluster worker becomes the leader (it has run no tick of the cluster jobs yet).
   */
  async refresh(): Promise<void> {
    await Promise.all(this.deps.jobs.filter((job) => !this.deps.gate || this.deps.gate(job)).map((job) => this.refreshJob(job)));
  }

  /** The job's own refresh hook, if any; a failure leaves its gauges as they were. */
  private async refreshJob(job: CronJob): Promise<void> {
    if (!job.refresh || this.stopped) return;
    try {
      await job.refresh();
    } catch (err) {
      this.deps.log.debug({ err, job: job.name }, 'cron job refresh failed');
    }
  }

  /** A tick another daemon ran: take the cluster's last success from cron_runs for the gauge. */
  private async refreshLastSuccess(job: string): Promise<void> {
    try {
      const rows: Array<{ last: Date | string | null }> = await this.deps.knex('cron_runs').where({ job, status: 'ok' }).max('ended_at as last');
      const last = fromDbTimestamp(rows[0]?.last ?? null);
      if (last) this.cron.lastSuccess.set({ cron_job: job }, last.getTime() / 1000);
    } catch {
      // Only a metric: the database being away is reported elsewhere.
    }
  }
}

/** The scheduled instant a firing stands for: whole seconds for 6-field schedules, else minutes. */
export function floorTick(schedule: string, at: Date): Date {
  const unit = schedule.trim().split(/\s+/).length >= 6 ? 1000 : 60_000;
  return new Date(Math.floor(at.getTime() / unit) * unit);
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${(err as { code?: string }).code ? `${(err as { code?: string }).code}: ` : ''}${err.message}`;
  return String(err);
}

function cronLogger(log: Logger): { info(m: string): void; warn(m: string): void; error(m: string | Error, e?: Error): void; debug(m: string | Error, e?: Error): void } {
  return {
    info: (m) => log.debug({ source: 'node-cron' }, m),
    warn: (m) => log.warn({ source: 'node-cron' }, m),
    error: (m, e) => log.error({ source: 'node-cron', err: e ?? m }, typeof m === 'string' ? m : m.message),
    debug: (m) => log.debug({ source: 'node-cron' }, typeof m === 'string' ? m : m.message),
  };
}

/**
 * Hands back every lease the given holders hold, as if each had ended its run: for a process that
 * is known to be dead (a cluster worker the primary saw exit), whose runs can neither go on nor
 * renew. The next tick of each job is then taken at once instead of after the lease's expiry
 * (2 min for caps, 10 for reports and retention). last_tick stays: the tick the dead holder
 * claimed is not run again. Never call it for a holder that may be alive: its run would overlap
 * the next one.
 */
export async function releaseLeasesOf(knex: Knex, holders: readonly string[]): Promise<number> {
  if (holders.length === 0) return 0;
  return knex('cron_leases').whereIn('holder', [...holders]).update({ holder: null, expires_at: null });
}
