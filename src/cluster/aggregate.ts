/**
 * What the primary serves as one daemon: every worker's registry (and the primary's own) merged
 * with prom-client's AggregatorRegistry, and the workers' /healthz answers merged into one.
 *
 * Counters and histograms are summed. A gauge is summed only when the workers' values add up
 * (calls, queued callers, spooled CDRs); gauges that describe one shared state (the configuration
 * in force, the database, the cron jobs) would be counted N times by a sum, so each hotline gauge
 * says how it merges in GAUGE_AGGREGATION (test/cluster/aggregate.test.ts fails for a gauge that is
 * not listed). Node's process gauges are summed (memory of all processes) except the start time:
 * the earliest, the primary's, so a worker restart is not a daemon restart
 * (hotline_cluster_worker_restarts_total counts those).
 *
 * A worker that dies takes its counters with it; the primary keeps the last values it scraped
 * from it (`retire`) and adds them, so counters never go backwards across a worker restart.
 */
import { AggregatorRegistry } from 'prom-client';
import type { Health, HealthStatus } from '../http/metrics-server';

export type Aggregation = 'sum' | 'max' | 'min' | 'first';

/** One metric as Registry.getMetricsAsJSON() gives it (and as it crosses the IPC channel). */
export interface MetricJson {
  name: string;
  help: string;
  type: string;
  aggregator?: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

export const GAUGE_AGGREGATION: Readonly<Record<string, Aggregation>> = {
  // Each worker's own share.
  hotline_active_calls: 'sum',
  hotline_queue_waiting_calls: 'sum',
  hotline_cdr_spool_depth: 'sum',
  hotline_cdrs_held_in_memory: 'sum',
  // Each worker's own spool (they share CDR_SPOOL_DIR's disk): how many workers it refuses.
  hotline_cdr_spool_refusing: 'sum',
  // Each worker's own spool: the one whose CDR has waited longest shows.
  hotline_cdr_spool_oldest_age_seconds: 'max',
  // One configuration, read by every worker: the worst worker shows.
  hotline_config_rejected_rows: 'max',
  hotline_config_last_good_rows: 'max',
  hotline_config_from_cache: 'max',
  hotline_config_snapshot_age_seconds: 'max',
  // Each worker keeps its own caller-memory index: the one furthest behind shows.
  hotline_caller_memory_index_read_age_seconds: 'max',
  hotline_database_reachable: 'min',
  hotline_prompt_files_missing: 'max',
  // Database-wide facts some worker read last.
  hotline_cron_last_success_timestamp_seconds: 'max',
  hotline_capped_tenants: 'max',
  hotline_notifications_backlog: 'max',
  // Every worker originates click-to-call legs over its own inbound socket: 1 only when all are connected.
  hotline_click_to_call_originator_connected: 'min',
  // The primary's alone (workers do not export them).
  hotline_cluster_workers: 'first',
  hotline_cluster_workers_alive: 'first',
  hotline_cluster_workers_not_answering: 'first',
};

/**
 * Node's own gauges where a sum or prom-client's default (an average) would hide the worst
 * process: one worker whose event loop stalls delays every call it holds, so lag shows the worst
 * worker (`max`; the minimum lag the least). The start time is the earliest, the primary's.
 */
const OTHER_AGGREGATION: Readonly<Record<string, Aggregation>> = {
  process_start_time_seconds: 'min',
  nodejs_eventloop_lag_seconds: 'max',
  nodejs_eventloop_lag_min_seconds: 'min',
  nodejs_eventloop_lag_max_seconds: 'max',
  nodejs_eventloop_lag_mean_seconds: 'max',
  nodejs_eventloop_lag_stddev_seconds: 'max',
  nodejs_eventloop_lag_p50_seconds: 'max',
  nodejs_eventloop_lag_p90_seconds: 'max',
  nodejs_eventloop_lag_p99_seconds: 'max',
};

/** Node's event-loop lag gauges, each with how it merges (test/cluster/aggregate.test.ts checks prom-client exports no other). */
export const EVENT_LOOP_LAG_GAUGES: readonly string[] = Object.keys(OTHER_AGGREGATION).filter((n) => n.startsWith('nodejs_eventloop_lag_'));

/** Sets each metric's aggregator as the tables above say (the workers' JSON carries prom-client's default). */
export function withPolicy(metrics: readonly MetricJson[]): MetricJson[] {
  return metrics.map((m) => {
    const aggregator = GAUGE_AGGREGATION[m.name] ?? OTHER_AGGREGATION[m.name];
    return aggregator ? { ...m, aggregator } : m;
  });
}

/** Counters and histograms: what a dead worker had counted, to keep adding after it is gone. */
function cumulative(metrics: readonly MetricJson[]): MetricJson[] {
  return metrics.filter((m) => m.type === 'counter' || m.type === 'histogram').map((m) => ({ ...m, aggregator: 'sum' }));
}

/** The retired totals plus a dead worker's last scraped counters. */
export async function retire(retired: readonly MetricJson[], dead: readonly MetricJson[]): Promise<MetricJson[]> {
  const merged = AggregatorRegistry.aggregate([cumulative(retired), cumulative(dead)]);
  return (await merged.getMetricsAsJSON()) as unknown as MetricJson[];
}

/** Prometheus text of all parts merged: the live workers, the primary's own, the retired counters. */
export async function aggregateText(parts: ReadonlyArray<readonly MetricJson[]>, retired: readonly MetricJson[]): Promise<string> {
  const registry = AggregatorRegistry.aggregate([...parts.map(withPolicy), cumulative(retired)]);
  return registry.metrics();
}

/** A worker as /healthz sees it. */
export interface WorkerHealth {
  slot: number;
  /** null: not ready or did not answer. */
  health: Health | null;
}

/** Worse first: a daemon with one worker routing from the cache routes from the cache. */
const WORSE: readonly HealthStatus[] = ['cdr_spool_failing', 'cached_configuration', 'database_unreachable', 'ok'];

/**
 * One /healthz for the cluster: `starting` (503) until some worker routes calls; else the worst
 * status among the workers that do (a draining worker still does: it answers for its calls until
 * it exits), the configuration of the first of them, the calls and spooled CDRs of all, whether
 * they drain, and how many workers serve.
 */
export function clusterHealth(workers: readonly WorkerHealth[], configured: number): Health {
  const serving = workers.filter((w): w is WorkerHealth & { health: Health } => w.health?.ok === true).sort((a, b) => a.slot - b.slot);
  const cluster = { workers: configured, alive: serving.length };
  if (serving.length === 0) return { ok: false, status: 'starting', detail: {}, cluster };
  const status = WORSE.find((s) => serving.some((w) => w.health.status === s)) ?? 'ok';
  const worst = serving.find((w) => w.health.status === status) ?? serving[0];
  const sum = (key: string): number => serving.reduce((n, w) => n + numberOf((w.health.detail as Record<string, unknown> | undefined)?.[key]), 0);
  const max = (key: string): number => Math.max(...serving.map((w) => numberOf((w.health.detail as Record<string, unknown> | undefined)?.[key])));
  return {
    ok: true,
    status,
    config: serving[0].health.config,
    database: worst.health.database,
    detail: {
      activeCalls: sum('activeCalls'),
      configVersion: max('configVersion'),
      cdrSpoolDepth: sum('cdrSpoolDepth'),
      cdrsHeldInMemory: sum('cdrsHeldInMemory'),
      // Draining keeps the status (the calls still up are served): this says so.
      draining: serving.some((w) => (w.health.detail as Record<string, unknown> | undefined)?.draining === true),
    },
    cluster,
  };
}

function numberOf(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
