/**
 * The metric catalogue as the real daemon exports it: a test daemon (SQLite, demo tenant listed in
 * METRICS_TENANT_IDS so the drill-down metrics carry tenant "1"), one answered call through the
 * FreeSWITCH stand-in so labelled counters have samples, one run of some cron jobs so the cron
 * series (labelled by cron_job, created by the first run) have samples, then GET /metrics.
 */
import { fetchMetrics, startTestDaemon, tempSqliteUrl, type TestDaemon } from '../helpers/daemon';
import { placeCall } from '../peer/fake-freeswitch';

export const DEMO_CALL = { caller: '13912345678', destination: '4001012345' } as const;

export interface MetricFamily {
  name: string;
  type: string;
  /** Label names seen on samples, plus those the daemon's registry declares (for series not yet created). */
  labels: Set<string>;
  samples: number;
}

export interface DaemonMetrics {
  text: string;
  families: Map<string, MetricFamily>;
}

/** Labels Prometheus itself attaches to every scraped series. */
export const TARGET_LABELS: ReadonlySet<string> = new Set(['job', 'instance']);

/** Series Prometheus generates per target (not in /metrics): https://prometheus.io/docs/concepts/jobs_instances/ */
export const PROMETHEUS_GENERATED: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['up', new Set<string>()],
  ['scrape_duration_seconds', new Set<string>()],
  ['scrape_samples_scraped', new Set<string>()],
  // One series per pending or firing alert, with the alert's labels (https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/):
  // the labels of the one alert rules name in ALERTS (HotlineCronCapsNotRunning).
  ['ALERTS', new Set<string>(['alertname', 'alertstate', 'severity', 'cron_job'])],
]);

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'] as const;

/** Starts the daemon config the dashboards assume: tenant 1 labelled. */
export function startLabelledDaemon(): Promise<TestDaemon> {
  // metrics.tenantIds is the METRICS_TENANT_IDS string ("1,2"), not an array: convict validates the string.
  return startTestDaemon(tempSqliteUrl(), { metrics: { tenantIds: '1' } });
}

/** Cron jobs run once by runCronJobs: cheap on an empty database, and they fill every cron series. */
export const CRON_JOBS_RUN = ['caps', 'notifications'] as const;

/**
 * Runs each job of CRON_JOBS_RUN once now, as its schedule would: hotline_cron_run_duration_seconds
 * and hotline_cron_last_success_timestamp_seconds only get series when a job has run
 * (hotline_cron_runs_total is at 0 from the start; the run makes it count). The test daemon has its cron jobs (CRON_ENABLED=true) but not node-cron's
 * schedule (test/helpers/daemon.ts), so no tick of its own can take the job first: a run that is
 * not "ran, ok" here is a real failure (CI once failed with {"ran":false,"reason":"claimed"} when
 * this tick met the daemon's own at a minute boundary).
 */
export async function runCronJobs(d: TestDaemon): Promise<void> {
  const scheduler = d.daemon.cron?.scheduler;
  if (!scheduler) throw new Error('the test daemon runs no cron jobs (cron.enabled is false)');
  for (const job of CRON_JOBS_RUN) {
    const outcome = await scheduler.runTick(job, new Date());
    if (!outcome.ran || !outcome.ok) throw new Error(`cron job ${job} did not run successfully: ${JSON.stringify(outcome)}`);
  }
}

/** Parses the Prometheus text format into families (name, type, label names, sample count). */
export function parseExposition(text: string, declared: ReadonlyMap<string, readonly string[]> = new Map()): DaemonMetrics {
  const families = new Map<string, MetricFamily>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      families.set(name, { name, type: kind, labels: new Set(declared.get(name) ?? []), samples: 0 });
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s/.exec(line);
    if (!sample) throw new Error(`cannot parse /metrics line: ${line}`);
    const family = familyOf(families, sample[1]);
    if (!family) throw new Error(`sample without a # TYPE line: ${line}`);
    family.samples++;
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) {
      if (m[1] !== 'le' && m[1] !== 'quantile') family.labels.add(m[1]);
    }
  }
  return { text, families };
}

function familyOf(families: ReadonlyMap<string, MetricFamily>, sampleName: string): MetricFamily | undefined {
  const direct = families.get(sampleName);
  if (direct) return direct;
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!sampleName.endsWith(suffix)) continue;
    const base = families.get(sampleName.slice(0, -suffix.length));
    if (base && (base.type === 'histogram' || base.type === 'summary')) return base;
  }
  return undefined;
}

/**
 * The series name as PromQL sees it → its label names (target labels included), or undefined when
 * the daemon does not export it. `_bucket` adds `le`.
 */
export function seriesLabels(metrics: DaemonMetrics, seriesName: string): Set<string> | undefined {
  const generated = PROMETHEUS_GENERATED.get(seriesName);
  if (generated) return new Set([...generated, ...TARGET_LABELS]);
  const family = familyOf(metrics.families, seriesName);
  if (!family) return undefined;
  // A histogram's own name is not a series: only its _bucket/_sum/_count are.
  if (seriesName === family.name && (family.type === 'histogram' || family.type === 'summary')) return undefined;
  const labels = new Set([...family.labels, ...TARGET_LABELS]);
  if (seriesName.endsWith('_bucket')) labels.add('le');
  return labels;
}

/**
 * Starts a daemon, places one answered call, runs some cron jobs, scrapes /metrics, stops the daemon. Label names of
 * series that exist only once something goes wrong (ESL errors, database errors) come from the
 * running daemon's own registry.
 */
export async function scrapeRealDaemon(): Promise<DaemonMetrics> {
  const d = await startLabelledDaemon();
  try {
    const call = await placeCall(d.port, { ...DEMO_CALL, legs: { '13800000001': { result: 'answer' } } });
    await d.cdr(call.uuid);
    await runCronJobs(d);
    const declared = new Map<string, readonly string[]>();
    for (const metric of d.daemon.metrics.registry.getMetricsAsArray()) {
      const labelNames = (metric as unknown as { labelNames?: readonly string[] }).labelNames;
      declared.set(metric.name, labelNames ?? []);
    }
    return parseExposition(await fetchMetrics(d), declared);
  } finally {
    await d.stop();
  }
}
