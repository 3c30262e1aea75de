/**
 * Wires the daemon together in start-up order and takes it apart in reverse:
 * CDR spool folder (locked) → configuration (database with migrations, or the local cache while
 * the database is down) → the CDRs of calls a stopped daemon left in its call journal → CDR writer
 * → the warm-up (synthetic calls on a listener of their own) → cron jobs → /metrics → calls
 * (journaled) → the click-to-call API.
 * The spool lock comes first, so a second daemon on the same folder stops before it touches
 * anything; the call listener opens after the configuration, so FreeSWITCH only reaches a daemon
 * that can route; the click-to-call API after it, since its answered legs come to that listener.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { cdrBatchRunner } from './cdr/batch-runner';
import { CallJournal } from './cdr/journal';
import { CdrSpool } from './cdr/spool';
import { CdrWriter } from './cdr/writer';
import { CallServer, type CallServerDeps } from './calls/call-server';
import { recoverStoppedCalls } from './calls/journaled-call';
import type { Settings } from './config';
import { createKnex, dbKind, knexLogTo } from './db/connect';
import { seedDemoIfEmpty } from './db/demo-seed';
import { MigrationLockWaitError, Migrator } from './db/migrate';
import { openSqliteReader } from './db/sqlite-reader';
import { MetricsServer, type Health } from './http/metrics-server';
import { loadGeoData } from './domain/geo';
import { Metrics } from './metrics';
import { LIVE_VALUES } from './billing/live-values';
import { showValue } from './snapshot/rows';
import { zonesOf } from './snapshot/zones';
import { ConfigCache, databaseIdentity } from './snapshot/cache';
import { ConfigStore } from './snapshot/store';
import { PromptResolver, TtsRenderer } from './prompts';
import { systemPromptFile } from './calls/prompt-player';
import { startCron, type CronService } from './cron';
import { ClickToCallCalls, ClickToCallMetrics, ClickToCallService } from './clicktocall';
import { ClusterMetrics } from './cluster/metrics';
import { moveSegments, workerSpoolDirs } from './cluster/spool-layout';
import { warmUpLogged } from './warmup/warm-up';

export interface DaemonOptions {
  clock?: CallServerDeps['clock'];
  random?: CallServerDeps['random'];
  /** false: cron jobs run only through scheduler.runTick() (tests that drive every tick). */
  cronSchedule?: boolean;
  /** This daemon is worker `slot` of a cluster (CLUSTER_WORKERS > 1; src/cluster/worker.ts). */
  worker?: WorkerRole;
  /** Aborted when the daemon is told to stop while it starts (SIGTERM): the warm-up ends at once. */
  starting?: AbortSignal;
  /**
   * Called as soon as the outbound socket listens, before start() returns (the click-to-call API
   * starts after it): from then on calls may be up, and a second signal must not end the process
   * at once (src/main.ts, src/cluster/worker.ts).
   */
  onListening?: () => void;
}

/**
 * A cluster worker: the primary serves /metrics and /healthz (no HTTP server here); the cron jobs
 * and the configuration cache file are the leader's alone (cluster-scope jobs tick only while
 * isLeader() says so; node jobs run in every worker under the name NODE_NAME/worker-<slot>).
 */
export interface WorkerRole {
  slot: number;
  isLeader(): boolean;
  /** Put in its warm-up folder's name by the primary, which removes that exact folder when the worker exits (src/warmup/folders.ts). */
  warmUpTag?: string;
}

export class Daemon {
  eslPort = 0;
  metricsPort = 0;
  /** The cron jobs (caps, live calls, reports, retention); null when CRON_ENABLED is false. */
  cron: CronService | null = null;
  /** The click-to-call API and its originator; null unless API_ENABLED. */
  clickToCall: ClickToCallService | null = null;
  /** The call flow's side of click-to-call (request states written as calls go). */
  clickToCallCalls: ClickToCallCalls | null = null;
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly settings: Settings,
    readonly log: Logger,
    readonly knex: Knex,
    readonly metrics: Metrics,
    readonly store: ConfigStore,
    readonly cdrs: CdrWriter,
    readonly calls: CallServer,
    readonly journal: CallJournal,
    readonly http: MetricsServer | null,
  ) {}

  static async start(settings: Settings, log: Logger, options: DaemonOptions = {}): Promise<Daemon> {
    const metrics = new Metrics({ tenantIds: settings.metrics.tenantIds });
    reportUnreadableLiveValues(log, metrics);
    const spool = new CdrSpool(settings.cdr.spoolDir);
    await spool.open();
    // What started so far, undone in reverse when a later step fails (a test's second daemon on
    // a locked folder, a database that cannot be read without a cache) so nothing leaks.
    const undo: Array<() => unknown> = [() => spool.close()];
    try {
      if (!options.worker) adoptWorkerSpools(settings.cdr.spoolDir, log);
      const knex = createKnex(settings.database.url, { poolMax: settings.database.poolMax, knexLog: knexLogTo(log) });
      undo.push(() => knex.destroy());
      // Caller geography (screening by region, routing by region, CDR caller_region) is read once.
      const geo = await loadGeoData();
      log.info({ geo }, 'caller geography data loaded');
      const migrator = new Migrator(knex, settings.database.url, settings.database.migrationLockWaitS, undefined, (message) => log.warn(message));
      const store = new ConfigStore(knex, { ...settings.configCache, maxCallS: settings.calls.maxDurationS }, log, metrics, undefined, {
        cache: new ConfigCache(settings.configCache.file, databaseIdentity(settings.database.url)),
        prepare: () => prepareDatabase(knex, migrator, settings, log),
        writesCache: options.worker ? () => options.worker?.isLeader() === true : undefined,
        // On an SQLite file, reloads read on a connection of their own: knex's one stays free for calls.
        reader: () => openSqliteReader(settings.database.url),
      });
      // Before start(): a start that fails may have opened the store's own SQLite connection.
      undo.push(() => store.stop());
      await store.start(options.starting);
      // A cap refused or doubtful live (-1, 0, junk) is read as the snapshot keeps it (live-values.ts).
      LIVE_VALUES.followSnapshot(() => store.current.tenants);
      undo.push(() => LIVE_VALUES.followSnapshot(null));
      const runner = cdrBatchRunner(knex, settings.database.url, settings.cdr.writerThread, log, settings.cdr.writerThreadNice);
      const cdrs = new CdrWriter(knex, spool, { ...settings.cdr, tenants: () => store.current.tenants, clock: options.clock, runner }, log, metrics);
      // The calls a stopped daemon left in progress get their CDRs, spooled before the writer
      // starts, so its start-up replay writes them with the rest.
      const stopped = await recoverStoppedCalls({ dir: settings.cdr.spoolDir, snapshot: store.current, record: async (cdr) => void (await cdrs.record(cdr)), log });
      metrics.stoppedCallCdrs.inc(stopped.recovered);
      await cdrs.start();
      undo.push(() => cdrs.stop());
      const journal = CallJournal.open(settings.cdr.spoolDir, { log, onWriteFailure: () => metrics.callJournalWriteFailures.inc() });
      undo.push(() => journal.close());
      // TTS prompts are rendered off the call path, after every configuration load.
      const tts = new TtsRenderer({ cacheDir: settings.tts.cacheDir, voice: settings.tts.voice, log });
      const prompts = new PromptResolver(settings, tts);
      if (settings.tts.engine === 'espeak') store.onLoad((snapshot) => void tts.prepare(snapshot.prompts.values()));
      const clickToCallMetrics = new ClickToCallMetrics(metrics.registry);
      const clickToCallCalls = new ClickToCallCalls(knex, clickToCallMetrics, settings.admission.queryTimeoutMs * 5, options.clock, log);
      undo.push(() => clickToCallCalls.stop());
      const calls = new CallServer({ settings, store, cdrs, metrics, log, knex, prompts, clickToCall: clickToCallCalls, journal, clock: options.clock, random: options.random });
      // Its caller-memory connection, should a later step fail before calls.stop() is undone.
      undo.push(() => calls.closeReader());
      let daemon: Daemon | null = null;
      const worker = options.worker;
      const http = worker ? null : new MetricsServer(metrics.registry, () => daemon?.health() ?? { ok: false, status: 'starting', detail: {} });
      if (!worker) ClusterMetrics.single(metrics.registry);
      daemon = new Daemon(settings, log, knex, metrics, store, cdrs, calls, journal, http);
      daemon.clickToCallCalls = clickToCallCalls;
      // Before /healthz and the outbound socket: the first calls after a start meet compiled code.
      await warmUpLogged({ settings, knex, prompts, log, calls: settings.calls.warmUpCalls, maxMs: settings.calls.warmUpMaxS * 1000, signal: options.starting, folderTag: options.worker?.warmUpTag });
      if (options.starting?.aborted) {
        // Told to stop while starting (SIGTERM): nothing listens, so no call is taken; the caller
        // stops this daemon at once (stop() needs no listener to have opened).
        log.info('stop asked for during start-up: neither /metrics nor the outbound socket opened');
        return daemon;
      }
      // After the warm-up: a worker killed in its warm-up (its primary knows its cron lease holder
      // only from its ready message) holds no lease that would wait to expire, and the first
      // ticks do not compete with the synthetic calls for the CPU.
      if (settings.cron.enabled) {
        const cronRole = worker ? { node: `${settings.node.name}/worker-${worker.slot}`.slice(0, 64), gate: (job: { scope: string }) => job.scope === 'node' || worker.isLeader() } : {};
        daemon.cron = await startCron({
          settings, knex, log, metrics, liveCalls: () => calls.liveCalls(), clock: options.clock, schedule: options.cronSchedule,
          zoneOf: zonesOf(() => store.current.tenants),
          warningFile: () => systemPromptFile(prompts, 'capped', calls.promptFiles),
          ...cronRole,
        });
        const cron = daemon.cron;
        undo.push(() => cron.stop());
      }
      if (http) {
        daemon.metricsPort = (await http.listen(settings.metrics.host, settings.metrics.port)).port;
        undo.push(() => http.close());
        log.info({ host: settings.metrics.host, port: daemon.metricsPort }, 'metrics listening on /metrics');
      }
      // Checked again: the signal may have come while /metrics opened.
      if (options.starting?.aborted) return daemon;
      daemon.eslPort = (await calls.listen()).port;
      undo.push(() => calls.stop(0));
      options.onListening?.();
      if (settings.api.enabled) {
        // After the outbound socket listens: FreeSWITCH hands the answered visitor legs to it.
        const clickToCall = await ClickToCallService.start({ settings, knex, store, cdrs, metrics: clickToCallMetrics, log, clock: options.clock, eslPort: daemon.eslPort, serving: (id) => clickToCallCalls.isServing(id) });
        daemon.clickToCall = clickToCall;
        undo.push(() => clickToCall.stop());
      }
      return daemon;
    } catch (err) {
      for (const step of undo.reverse()) await Promise.resolve().then(step).catch(() => undefined);
      throw err;
    }
  }

  /**
   * What /healthz answers (README "Health"): `ok` when calls route from a configuration read
   * from a database that answers; `database_unreachable` when the last poll failed (calls route
   * from the configuration loaded before); `cached_configuration` when the database has not been
   * reached since start-up and calls route from the on-disk cache; before those,
   * `cdr_spool_failing` while the CDR spool refuses writes (ended calls' CDRs wait in memory until
   * it or the database takes them, CdrWriter.record: lost if the process dies then). Draining (SIGTERM) does not
   * change the status: the calls still up are served until the process exits; `detail.draining`
   * says so.
   */
  health(): Health {
    const s = this.store;
    const snapshot = s.current;
    const held = this.cdrs.heldInMemory;
    const status = held > 0 || this.cdrs.spoolRefusing ? 'cdr_spool_failing' : s.source === 'cache' ? 'cached_configuration' : s.databaseReachable === false ? 'database_unreachable' : 'ok';
    return {
      ok: true,
      status,
      config: {
        source: s.source,
        version: snapshot.version,
        loadedAt: snapshot.loadedAt.toISOString(),
        ageS: Math.max(0, Math.round((Date.now() - snapshot.loadedAt.getTime()) / 1000)),
        rejectedRows: snapshot.rejected.length,
      },
      database: { reachable: s.databaseReachable === true, error: s.databaseError },
      detail: { activeCalls: this.calls.activeCalls, configVersion: snapshot.version, cdrSpoolDepth: this.cdrs.spoolDepth, cdrsHeldInMemory: held, draining: this.stopping !== null },
    };
  }

  /** A cluster worker made leader: it writes the configuration cache from now on, starting with the rows in force, and reads its cluster jobs' gauges. */
  becameLeader(): void {
    this.store.saveCacheNow();
    // The cluster jobs' gauges (the notification backlog) read now, not at this worker's first tick.
    if (this.cron) void this.cron.scheduler.refresh();
  }

  /** SIGTERM: refuse new calls, drain live ones (bounded), flush CDRs, close everything. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ activeCalls: this.calls.activeCalls, drainS: this.settings.calls.drainTimeoutS }, 'stopping: draining calls');
      await this.clickToCall?.stop();
      await this.calls.stop(this.settings.calls.drainTimeoutS * 1000);
      // Every call has ended and its CDR is spooled: the journal is written out and removed.
      await this.journal.close();
      // Requests still to be ended in the database stay as they are; the sweeper ends them after a restart.
      this.clickToCallCalls?.stop();
      await this.cron?.stop();
      await this.store.stop();
      await this.store.cacheSaved();
      await this.cdrs.stop();
      await this.http?.close();
      await this.knex.destroy();
      this.log.info({ cdrSpoolDepth: this.cdrs.spoolDepth }, 'stopped');
    })();
    return this.stopping;
  }
}

/**
 * A single-process daemon owns CDR_SPOOL_DIR whole: segments a run with workers left in
 * worker-<n> folders are moved into its own folder and replayed (src/cluster/spool-layout.ts).
 */
function adoptWorkerSpools(root: string, log: Logger): void {
  const r = moveSegments(workerSpoolDirs(root).map((w) => w.dir), root);
  for (const m of r.moved) log.info({ from: m.from, segments: m.segments, journals: m.journals ?? 0 }, 'CDR spool segments and call journals of a worker folder adopted');
  for (const dir of r.busy) log.warn({ dir }, 'CDR spool folder of a worker still in use by another process; left alone');
}

const loggedLockWaits = new WeakSet<MigrationLockWaitError>();

/** Before the first load from the database: migrations, and the demo tenant where asked. */
async function prepareDatabase(knex: Knex, migrator: Migrator, settings: Settings, log: Logger): Promise<void> {
  let applied: string[];
  try {
    applied = await migrator.latest();
  } catch (err) {
    // Logged at each attempt that waited, not again when asked within its pause (the same error).
    if (err instanceof MigrationLockWaitError && !loggedLockWaits.has(err)) {
      loggedLockWaits.add(err);
      log.warn({ holders: err.holders, lockWaitS: settings.database.migrationLockWaitS, retryInS: Math.round(err.retryAfterMs / 1000) }, err.message);
    }
    throw err;
  }
  if (applied.length > 0) log.info({ migrations: applied }, 'database migrated');
  const seed = settings.database.seedDemo;
  if (seed === 'always' || (seed === 'auto' && dbKind(knex) === 'sqlite')) {
    if (await seedDemoIfEmpty(knex)) log.info('empty database: seeded the demo tenant (400 number 4001012345)');
  }
}

/**
 * A tenants balance or cap that cannot be read live (live-values.ts): counted on every read,
 * logged once per edit with what is used instead; `npm run config:lint` has the row's finding.
 */
function reportUnreadableLiveValues(log: Logger, metrics: Metrics): void {
  LIVE_VALUES.onUnreadable((u) => {
    metrics.liveValuesUnreadable.inc({ column: u.column });
    if (!u.first) return;
    log.error(
      { tenant_id: u.tenantId, column: u.column, value: showValue(u.column, u.value), used: u.used },
      u.used === null
        ? `tenants.${u.column} is not a value: no last good value read, it limits nothing until fixed`
        : `tenants.${u.column} is not a value: the last good value is used until fixed`,
    );
  });
}
