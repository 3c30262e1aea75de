/**
 * Wires the daemon together in start-up order and takes it apart in reverse:
 * database → migrations → (demo seed) → configuration snapshot → CDR spool → cron jobs → /metrics → calls.
 * The call listener opens last, so FreeSWITCH only reaches a daemon that can route.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import path from 'node:path';
import { CdrSpool } from './cdr/spool';
import { CdrWriter } from './cdr/writer';
import { CallServer, type CallServerDeps } from './calls/call-server';
import type { Settings } from './config';
import { createKnex, dbKind } from './db/connect';
import { seedDemoIfEmpty } from './db/demo-seed';
import { migrateLatest } from './db/migrate';
import { MetricsServer } from './http/metrics-server';
import { loadGeoData } from './domain/geo';
import { Metrics } from './metrics';
import { ConfigStore } from './snapshot/store';
import { PromptResolver, TtsRenderer } from './prompts';
import { startCron, type CronService } from './cron';
import { ClickToCallCalls, ClickToCallMetrics, ClickToCallService } from './clicktocall';

export interface DaemonOptions {
  clock?: CallServerDeps['clock'];
  random?: CallServerDeps['random'];
}

export class Daemon {
  eslPort = 0;
  metricsPort = 0;
  /** The cron jobs (caps, live calls, reports, retention); null when CRON_ENABLED is false. */
  cron: CronService | null = null;
  /** The click-to-call API and its originator; null unless API_ENABLED. */
  clickToCall: ClickToCallService | null = null;
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly settings: Settings,
    readonly log: Logger,
    readonly knex: Knex,
    readonly metrics: Metrics,
    readonly store: ConfigStore,
    readonly cdrs: CdrWriter,
    readonly calls: CallServer,
    readonly http: MetricsServer,
  ) {}

  static async start(settings: Settings, log: Logger, options: DaemonOptions = {}): Promise<Daemon> {
    const metrics = new Metrics({ tenantIds: settings.metrics.tenantIds });
    const knex = createKnex(settings.database.url, { poolMax: settings.database.poolMax });
    try {
      const applied = await migrateLatest(knex);
      if (applied.length > 0) log.info({ migrations: applied }, 'database migrated');
      const seed = settings.database.seedDemo;
      if (seed === 'always' || (seed === 'auto' && dbKind(knex) === 'sqlite')) {
        if (await seedDemoIfEmpty(knex)) log.info('empty database: seeded the demo tenant (400 number 4001012345)');
      }
    } catch (err) {
      await knex.destroy();
      throw err;
    }
    // Caller geography (screening by region, routing by region, CDR caller_region) is read once.
    const geo = await loadGeoData();
    log.info({ geo }, 'caller geography data loaded');
    const store = new ConfigStore(knex, settings.configCache, log, metrics);
    await store.start();
    const cdrs = new CdrWriter(knex, new CdrSpool(path.resolve(settings.cdr.spoolDir)), { ...settings.cdr, tenants: () => store.current.tenants }, log, metrics);
    await cdrs.start();
    // TTS prompts are rendered off the call path, after every configuration load.
    const tts = new TtsRenderer({ cacheDir: settings.tts.cacheDir, voice: settings.tts.voice, log });
    const prompts = new PromptResolver(settings, tts);
    if (settings.tts.engine === 'espeak') store.onLoad((snapshot) => void tts.prepare(snapshot.prompts.values()));
    const clickToCallMetrics = new ClickToCallMetrics(metrics.registry);
    const clickToCallCalls = new ClickToCallCalls(knex, clickToCallMetrics, settings.admission.queryTimeoutMs * 5, options.clock);
    const calls = new CallServer({ settings, store, cdrs, metrics, log, knex, prompts, clickToCall: clickToCallCalls, ...options });
    const http = new MetricsServer(metrics, () => ({
      ok: true,
      detail: { activeCalls: calls.activeCalls, configVersion: store.current.version, cdrSpoolDepth: cdrs.spoolDepth },
    }));
    const daemon = new Daemon(settings, log, knex, metrics, store, cdrs, calls, http);
    if (settings.cron.enabled) {
      daemon.cron = await startCron({ settings, knex, log, metrics, liveCalls: () => calls.liveCalls(), clock: options.clock });
    }
    daemon.metricsPort = (await http.listen(settings.metrics.host, settings.metrics.port)).port;
    log.info({ host: settings.metrics.host, port: daemon.metricsPort }, 'metrics listening on /metrics');
    daemon.eslPort = (await calls.listen()).port;
    if (settings.api.enabled) {
      daemon.clickToCall = await ClickToCallService.start({ settings, knex, store, cdrs, metrics: clickToCallMetrics, log, clock: options.clock, eslPort: daemon.eslPort });
    }
    return daemon;
  }

  /** SIGTERM: refuse new calls, drain live ones (bounded), flush CDRs, close everything. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ activeCalls: this.calls.activeCalls, drainS: this.settings.calls.drainTimeoutS }, 'stopping: draining calls');
      await this.clickToCall?.stop();
      await this.calls.stop(this.settings.calls.drainTimeoutS * 1000);
      await this.cron?.stop();
      this.store.stop();
      await this.cdrs.stop();
      await this.http.close();
      await this.knex.destroy();
      this.log.info({ cdrSpoolDepth: this.cdrs.spoolDepth }, 'stopped');
    })();
    return this.stopping;
  }
}
