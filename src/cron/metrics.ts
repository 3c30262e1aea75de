/**
 * Cron metrics, on the daemon's private registry. Labels: cron_job (not "job", which Prometheus reserves for the scrape job) (a handful) and the result.
 * One set per registry (a second scheduler on the same Metrics, as tests make, shares it).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Metrics } from '../metrics';

export class CronMetrics {
  readonly runs: Counter<'cron_job' | 'result'>;
  readonly duration: Histogram<'cron_job'>;
  readonly lastSuccess: Gauge<'cron_job'>;
  readonly cappedTenants: Gauge;

  private constructor(registry: Registry) {
    this.runs = new Counter({
      name: 'hotline_cron_runs_total',
      help: 'Cron job runs on this daemon, by job and result (ok, error). A tick another daemon ran is not counted here.',
      labelNames: ['cron_job', 'result'] as const,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'hotline_cron_run_duration_seconds',
      help: 'How long each cron job run took on this daemon.',
      labelNames: ['cron_job'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    });
    this.lastSuccess = new Gauge({
      name: 'hotline_cron_last_success_timestamp_seconds',
      help: 'Unix time a cron job last finished without error on any daemon sharing the database (read from cron_runs when another daemon ran it).',
      labelNames: ['cron_job'] as const,
      registers: [registry],
    });
    this.cappedTenants = new Gauge({
      name: 'hotline_capped_tenants',
      help: 'Tenants currently over a call or spending cap or out of balance (capped_tenants), refreshed every minute.',
      registers: [registry],
    });
  }

  private static readonly byRegistry = new WeakMap<Registry, CronMetrics>();

  static of(metrics: Pick<Metrics, 'registry'>): CronMetrics {
    let m = CronMetrics.byRegistry.get(metrics.registry);
    if (!m) {
      m = new CronMetrics(metrics.registry);
      CronMetrics.byRegistry.set(metrics.registry, m);
    }
    return m;
  }
}
