/**
 * The daemon's cron jobs (SPEC "Cron jobs"), each on node-cron in UTC:
 *
 * | job        | schedule            | scope   | what                                                           |
 * |------------|---------------------|---------|----------------------------------------------------------------|
 * | caps       | every minute, :00   | cluster | recount usage from CDRs + live calls, fix drift, cap / reopen   |
 * | live_calls | every minute, :30   | node    | publish this daemon's live calls; warn and cut those out of money |
 * | reports    | every 15 minutes    | cluster | daily and monthly reports after midnight in each tenant's zone; again for late CDRs |
 * | retention  | hourly, at :17      | cluster | recordings, voicemails, CDRs, cron_runs past their ages        |
 *
 * "cluster" jobs run once per tick across every daemon sharing the database, "node" jobs on every
 * daemon (see scheduler.ts).
 */
import type { TenantZones } from '../snapshot/zones';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { runCaps } from '../billing/caps';
import { openSqliteReader, ReaderOpener } from '../db/sqlite-reader';
import { FreeSwitchInbound } from '../billing/freeswitch-inbound';
import { LiveCallGuard } from '../billing/live-guard';
import type { LiveCall, LiveCallSource } from '../billing/live-calls';
import { warningPrompt } from '../billing/rate-cdr';
import { runReports } from '../billing/reports';
import type { Settings } from '../config';
import type { Metrics } from '../metrics';
import { CronMetrics } from './metrics';
import { runRetention, retentionRows } from './retention';
import { CronScheduler, type CronJob } from './scheduler';

export interface CronDeps {
  settings: Settings;
  knex: Knex;
  log: Logger;
  metrics: Metrics;
  /** The tenants' zones in the snapshot in force (snapshot/zones.ts zonesOf); absent: the rows' (tests). */
  zoneOf?: TenantZones;
  /** This daemon's live calls (CallServer.liveCalls()). */
  liveCalls: () => readonly LiveCall[];
  /** The warning prompt's file as calls play it (default: capped.wav in PROMPTS_DIR, unchecked). */
  warningFile?: () => string;
  clock?: () => Date;
  /**
   * false: the jobs exist and run when runTick() is called, but node-cron does not fire them.
   * For tests that drive every tick themselves: a real schedule would race them at minute
   * boundaries (a test's tick found "claimed" by the daemon's own).
   */
  schedule?: boolean;
  /** Name in live_calls, cron_runs and node-job leases; default NODE_NAME (a cluster worker: NODE_NAME/worker-<n>). */
  node?: string;
  /** Scheduled ticks this process runs (default all); see SchedulerDeps.gate. */
  gate?: (job: CronJob) => boolean;
}

export interface CronService {
  readonly scheduler: CronScheduler;
  readonly guard: LiveCallGuard;
  stop(): Promise<void>;
}

export function cronJobs(deps: CronDeps, guard: LiveCallGuard): CronJob[] {
  const { settings, knex } = deps;
  const cron = CronMetrics.of(deps.metrics);
  const readers = recountReaders(settings.database.url, deps.log.child({ job: 'caps' }));
  return [
    {
      name: 'caps',
      schedule: '* * * * *',
      scope: 'cluster',
      leaseMs: 2 * 60_000,
      run: async (ctx) => {
        // On an SQLite file the recount reads in slices on a connection of its own, in one read
        // transaction, so that the calls need not wait for it (runCaps). Opened for the run.
        const reader = readers.tryOpen(ctx.log);
        try {
          const r = await runCaps(knex, ctx.now(), ctx.log, deps.zoneOf, reader);
          cron.cappedTenants.set(r.cappedTenants);
          return r.corrected + r.capped + r.reopened + r.purgedLiveCalls;
        } finally {
          reader?.close();
        }
      },
    },
    { name: 'live_calls', schedule: '30 * * * * *', scope: 'node', leaseMs: 2 * 60_000, run: () => guard.run() },
    {
      name: 'reports',
      schedule: '*/15 * * * *',
      scope: 'cluster',
      leaseMs: 10 * 60_000,
      run: (ctx) => runReports(knex, ctx.now(), { reportsDir: settings.reports.dir, maxCallS: settings.calls.maxDurationS, log: ctx.log, signal: ctx.signal, zoneOf: deps.zoneOf }),
    },
    {
      name: 'retention',
      schedule: '17 * * * *',
      scope: 'cluster',
      leaseMs: 10 * 60_000,
      run: async (ctx) => {
        const r = await runRetention(knex, ctx.now(), { ...settings.retention, recordingsDir: settings.recordings.dir, log: ctx.log, signal: ctx.signal });
        if (retentionRows(r) > 0) ctx.log.info(r, 'retention purge');
        return retentionRows(r);
      },
    },
  ];
}

/**
 * The caps recount's own read-only connection to an SQLite file, opened for each run; null for
 * MariaDB and an in-memory database. One that cannot be opened is logged (once while it lasts:
 * ReaderOpener), and the recount runs as one statement a period on knex's connection, holding the
 * calls meanwhile, rather than not at all.
 */
function recountReaders(databaseUrl: string, log: Logger): ReaderOpener {
  return new ReaderOpener(() => openSqliteReader(databaseUrl), log, {
    refused: "caps: the SQLite file cannot be opened for the recount's own reads; it reads on the daemon's connection, in one statement a period",
    what: 'the caps recount',
  });
}

/** Starts the cron jobs of this daemon. */
import { createNotifyMetrics, NotificationDispatcher, notificationsCronJob } from '../notify';

export async function startCron(deps: CronDeps): Promise<CronService> {
  const { settings } = deps;
  const fs = settings.freeswitch;
  const cron = CronMetrics.of(deps.metrics);
  const source: LiveCallSource = { liveCalls: deps.liveCalls };
  const guard = new LiveCallGuard({
    knex: deps.knex,
    node: deps.node ?? settings.node.name,
    source,
    connectInbound: fs.inboundPassword === '' ? null : () => FreeSwitchInbound.connect({ host: fs.inboundHost, port: fs.inboundPort, password: fs.inboundPassword, timeoutMs: settings.esl.replyTimeoutMs, maxFrameBytes: fs.inboundMaxFrameBytes }),
    warningFile: deps.warningFile ?? (() => warningPrompt(settings)),
    log: deps.log.child({ job: 'live_calls' }),
    zoneOf: deps.zoneOf,
    clock: deps.clock,
    onCappedCount: (n) => cron.cappedTenants.set(n),
    cutCheckTimeoutMs: settings.admission.queryTimeoutMs,
  });
  // Missed-call notifications: delivered by a cluster job every 20 s (at-least-once, claimed per row).
  const dispatcher = new NotificationDispatcher({ knex: deps.knex, notify: settings.notify, log: deps.log.child({ job: 'notifications' }), metrics: createNotifyMetrics(deps.metrics.registry) });
  const jobs = [...cronJobs(deps, guard), notificationsCronJob(dispatcher)];
  const scheduler = new CronScheduler({ knex: deps.knex, node: deps.node ?? settings.node.name, log: deps.log, metrics: deps.metrics, jobs, clock: deps.clock, gate: deps.gate });
  if (deps.schedule !== false) await scheduler.start();
  return {
    scheduler,
    guard,
    async stop() {
      guard.stop();
      await scheduler.stop(settings.calls.drainTimeoutS * 1000);
      await dispatcher.stop();
    },
  };
}
