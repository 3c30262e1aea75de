// What the cluster primary serves as one daemon: the workers' registries merged (sum for what
// adds up, max/min for shared state), counters kept across a worker's death, /healthz merged.
// The policy table must name every hotline gauge a real daemon exports.
import t from 'tap';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { aggregateText, clusterHealth, EVENT_LOOP_LAG_GAUGES, GAUGE_AGGREGATION, retire, type MetricJson } from '../../src/cluster/aggregate';
import { ClusterMetrics } from '../../src/cluster/metrics';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

/** A worker's registry with the given values, as JSON (what crosses the IPC channel). */
async function worker(values: { started: number; active: number; fromCache: number; reachable: number; setup: number[] }): Promise<MetricJson[]> {
  const registry = new Registry();
  new Counter({ name: 'hotline_calls_started_total', help: 'h', labelNames: ['number_kind'], registers: [registry] }).inc({ number_kind: 'hotline' }, values.started);
  new Gauge({ name: 'hotline_active_calls', help: 'h', registers: [registry] }).set(values.active);
  new Gauge({ name: 'hotline_config_from_cache', help: 'h', registers: [registry] }).set(values.fromCache);
  new Gauge({ name: 'hotline_database_reachable', help: 'h', registers: [registry] }).set(values.reachable);
  const h = new Histogram({ name: 'hotline_call_setup_seconds', help: 'h', buckets: [0.01, 0.1], registers: [registry] });
  for (const v of values.setup) h.observe(v);
  return JSON.parse(JSON.stringify(await registry.getMetricsAsJSON())) as MetricJson[];
}

function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no sample ${series} in\n${text}`);
  return Number(line.slice(series.length + 1));
}

t.test('counters and histograms add up; calls add up; shared state is not counted twice', async (t) => {
  const a = await worker({ started: 3, active: 2, fromCache: 0, reachable: 1, setup: [0.005, 0.05] });
  const b = await worker({ started: 4, active: 1, fromCache: 1, reachable: 0, setup: [0.5] });
  const text = await aggregateText([a, b], []);
  t.equal(sample(text, 'hotline_calls_started_total{number_kind="hotline"}'), 7, 'counter: sum');
  t.equal(sample(text, 'hotline_active_calls'), 3, 'active calls: sum');
  t.equal(sample(text, 'hotline_config_from_cache'), 1, 'from cache: max (one worker routing from the cache shows)');
  t.equal(sample(text, 'hotline_database_reachable'), 0, 'database reachable: min (one worker that cannot reach it shows)');
  t.equal(sample(text, 'hotline_call_setup_seconds_bucket{le="0.01"}'), 1);
  t.equal(sample(text, 'hotline_call_setup_seconds_bucket{le="+Inf"}'), 3, 'histogram buckets: sum');
  t.equal(sample(text, 'hotline_call_setup_seconds_count'), 3);
  t.equal(text.match(/^# TYPE hotline_active_calls /gm)?.length, 1, 'one family, once');
  t.notMatch(text, /worker=|pid=/, 'no label names a worker');
});

t.test('a dead worker\'s counters are retired, not lost: the totals never go backwards', async (t) => {
  const a = await worker({ started: 5, active: 1, fromCache: 0, reachable: 1, setup: [0.05] });
  const b = await worker({ started: 2, active: 1, fromCache: 0, reachable: 1, setup: [0.05] });
  const before = sample(await aggregateText([a, b], []), 'hotline_calls_started_total{number_kind="hotline"}');
  const retired = await retire([], b);
  const fresh = await worker({ started: 0, active: 0, fromCache: 0, reachable: 1, setup: [] });
  const after = await aggregateText([a, fresh], retired);
  t.equal(before, 7);
  t.equal(sample(after, 'hotline_calls_started_total{number_kind="hotline"}'), 7, 'the replacement starts at 0, the total stays');
  t.equal(sample(after, 'hotline_call_setup_seconds_count'), 2, 'histograms too');
  t.equal(sample(after, 'hotline_active_calls'), 1, 'gauges are not retired: the dead worker\'s calls are gone');
  const twice = await retire(retired, fresh);
  t.equal(sample(await aggregateText([a], twice), 'hotline_calls_started_total{number_kind="hotline"}'), 7, 'retiring adds up');
});

t.test('every hotline gauge a real daemon exports says how it merges', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { api: { enabled: false } });
  t.teardown(() => d.stop());
  const own = new Registry();
  new ClusterMetrics(own);
  const gauges = [...(await d.daemon.metrics.registry.getMetricsAsJSON()), ...(await own.getMetricsAsJSON())]
    .filter((m) => String(m.type) === 'gauge' && m.name.startsWith('hotline_'))
    .map((m) => m.name);
  t.ok(gauges.includes('hotline_active_calls') && gauges.includes('hotline_cron_last_success_timestamp_seconds'), 'the daemon\'s gauges were found');
  const missing = gauges.filter((g) => !(g in GAUGE_AGGREGATION));
  t.same(missing, [], 'add each to GAUGE_AGGREGATION in src/cluster/aggregate.ts: sum only when the workers\' values add up');
});

/** A process's default metrics with its event-loop lag gauges set to `lag` seconds (p99 at 10 × lag), as JSON. */
async function processWithLag(lag: number): Promise<MetricJson[]> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const json = JSON.parse(JSON.stringify(await registry.getMetricsAsJSON())) as MetricJson[];
  return json.map((m) => (m.name.startsWith('nodejs_eventloop_lag_') ? { ...m, values: [{ value: m.name.endsWith('_p99_seconds') ? lag * 10 : lag, labels: {} }] } : m));
}

t.test('event-loop lag shows the worst worker, not an average', async (t) => {
  const calm = await processWithLag(0.001);
  const stalled = await processWithLag(0.5);
  const text = await aggregateText([calm, calm, stalled], []);
  t.equal(sample(text, 'nodejs_eventloop_lag_seconds'), 0.5, 'lag: max');
  t.equal(sample(text, 'nodejs_eventloop_lag_p99_seconds'), 5, 'p99: max (HotlineEventLoopLag reads it)');
  t.equal(sample(text, 'nodejs_eventloop_lag_mean_seconds'), 0.5, 'mean: the worst worker\'s');
  t.equal(sample(text, 'nodejs_eventloop_lag_min_seconds'), 0.001, 'min: the least');
  const exported = calm.map((m) => m.name).filter((n) => n.startsWith('nodejs_eventloop_lag_')).sort();
  t.ok(exported.length > 0, 'prom-client exports event-loop lag gauges');
  t.same(exported, [...EVENT_LOOP_LAG_GAUGES].sort(), 'each of prom-client\'s event-loop lag gauges says how it merges');
});

t.test('/healthz of the cluster', async (t) => {
  const ok = (activeCalls: number, version: number, status = 'ok') => ({
    ok: true,
    status: status as 'ok',
    config: { source: 'database', version },
    database: { reachable: status !== 'database_unreachable', error: status === 'database_unreachable' ? 'ECONNREFUSED' : null },
    detail: { activeCalls, configVersion: version, cdrSpoolDepth: 1 },
  });
  t.same(clusterHealth([{ slot: 1, health: null }, { slot: 2, health: null }], 2), { ok: false, status: 'starting', detail: {}, cluster: { workers: 2, alive: 0 } }, 'no worker serving: starting (503)');
  const one = clusterHealth([{ slot: 1, health: null }, { slot: 2, health: ok(3, 7) }], 2);
  t.match(one, { ok: true, status: 'ok', detail: { activeCalls: 3, configVersion: 7, cdrSpoolDepth: 1 }, cluster: { workers: 2, alive: 1 } }, 'one serving (the other restarting): ok');
  const both = clusterHealth([{ slot: 2, health: ok(1, 8, 'database_unreachable') }, { slot: 1, health: ok(2, 7) }], 2);
  t.match(both, { ok: true, status: 'database_unreachable', config: { version: 7 }, database: { reachable: false, error: 'ECONNREFUSED' }, detail: { activeCalls: 3, configVersion: 8, cdrSpoolDepth: 2, draining: false }, cluster: { alive: 2 } }, 'the worst status, calls and spool summed');
  const draining = (activeCalls: number) => ({ ...ok(activeCalls, 7), detail: { activeCalls, configVersion: 7, cdrSpoolDepth: 0, draining: true } });
  const drain = clusterHealth([{ slot: 1, health: draining(2) }, { slot: 2, health: draining(1) }], 2);
  t.match(drain, { ok: true, status: 'ok', detail: { activeCalls: 3, draining: true }, cluster: { workers: 2, alive: 2 } }, 'draining workers still serve their calls: ok (200), draining says so');
  const full = { ...ok(1, 7), status: 'cdr_spool_failing' as const, detail: { activeCalls: 1, configVersion: 7, cdrSpoolDepth: 0, cdrsHeldInMemory: 4 } };
  const spool = clusterHealth([{ slot: 1, health: ok(2, 7, 'database_unreachable') }, { slot: 2, health: full }], 2);
  t.match(spool, { ok: true, status: 'cdr_spool_failing', detail: { cdrsHeldInMemory: 4 } }, 'a worker whose spool refuses CDRs: said first, the CDRs it holds summed');
});
