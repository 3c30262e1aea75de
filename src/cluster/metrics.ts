/**
 * The cluster's own series (README "Running with workers"). With CLUSTER_WORKERS > 1 the primary
 * registers them on its registry and sets them as workers come and go; a single-process daemon
 * registers them too (1 worker of 1, never restarted), so dashboards and alerts read the same
 * series whatever the setting. No label carries a worker number or pid.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export class ClusterMetrics {
  readonly workers: Gauge;
  readonly workersAlive: Gauge;
  readonly restarts: Counter;
  readonly scrapeFailures: Counter;
  readonly notAnswering: Gauge;
  readonly hungKilled: Counter;

  constructor(registry: Registry) {
    this.workers = new Gauge({
      name: 'hotline_cluster_workers',
      help: 'Worker processes this daemon is configured to run (CLUSTER_WORKERS, resolved; 1 for a single process).',
      registers: [registry],
    });
    this.workersAlive = new Gauge({
      name: 'hotline_cluster_workers_alive',
      help: 'Worker processes running and serving calls (started, configuration loaded, listening).',
      registers: [registry],
    });
    this.restarts = new Counter({
      name: 'hotline_cluster_worker_restarts_total',
      help: 'Worker processes that died without being asked to (crash, kill -9, exit) and were started again; their calls up at that moment were cut.',
      registers: [registry],
    });
    this.scrapeFailures = new Counter({
      name: 'hotline_cluster_worker_scrape_failures_total',
      help: 'Times a worker did not hand its metrics to the primary in time for a /metrics scrape (its counters then show their last scraped values).',
      registers: [registry],
    });
    this.notAnswering = new Gauge({
      name: 'hotline_cluster_workers_not_answering',
      help: 'Worker processes running that did not hand their metrics to the primary in time at the last /metrics scrape (hung: a stalled event loop, SIGSTOP); 0 for a single process.',
      registers: [registry],
    });
    this.hungKilled = new Counter({
      name: 'hotline_cluster_workers_killed_hung_total',
      help: 'Serving workers the primary killed because they answered no ping for CLUSTER_WORKER_HANG_TIMEOUT_S (event loop blocked, process stopped); its replacement counts in hotline_cluster_worker_restarts_total (none when the daemon began stopping before the exit).',
      registers: [registry],
    });
    this.hungKilled.inc(0);
    this.notAnswering.set(0);
    this.restarts.inc(0);
    this.scrapeFailures.inc(0);
  }

  /** A single-process daemon: one worker, itself, alive while it answers. */
  static single(registry: Registry): ClusterMetrics {
    const m = new ClusterMetrics(registry);
    m.workers.set(1);
    m.workersAlive.set(1);
    return m;
  }
}
