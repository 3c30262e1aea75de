// FastHistogram (src/fast-histogram.ts) against prom-client's own Histogram: the same observations
// give the same /metrics text and the same JSON (what a cluster worker sends its primary), before
// and after a reset, and the same text once two workers' JSON is aggregated.
import t from 'tap';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { FastHistogram } from '../../src/fast-histogram';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 15, 60, 300];
const COMMANDS = ['connect', 'playback', 'bridge', 'other'];
const RESULTS = ['ok', 'error', 'timeout', 'hangup'];

/** A fixed pseudo-random sequence: the test is the same every run. */
function sequence(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

/** Values on every side of the bounds: exactly on one, between, below 0, above the last. */
function valueOf(next: () => number): number {
  const pick = next();
  if (pick < 0.2) return BUCKETS[Math.floor(next() * BUCKETS.length)];
  if (pick < 0.25) return 0;
  if (pick < 0.3) return -next();
  if (pick < 0.35) return 300 + next() * 1000;
  return next() * next() * 20;
}

function pair(seed: number, count: number) {
  const stock = new Registry();
  const fast = new Registry();
  const a = new Histogram({ name: 'hotline_esl_command_duration_seconds', help: 'ESL command round trips.', labelNames: ['command', 'result'] as const, buckets: BUCKETS, registers: [stock] });
  const b = new FastHistogram({ name: 'hotline_esl_command_duration_seconds', help: 'ESL command round trips.', labelNames: ['command', 'result'] as const, buckets: BUCKETS, registers: [fast] });
  const c = new Histogram({ name: 'hotline_call_setup_seconds', help: 'Setup.', buckets: BUCKETS, registers: [stock] });
  const d = new FastHistogram({ name: 'hotline_call_setup_seconds', help: 'Setup.', buckets: BUCKETS, registers: [fast] });
  const observe = (n: number, next: () => number): void => {
    for (let i = 0; i < n; i++) {
      const command = COMMANDS[Math.floor(next() * COMMANDS.length)];
      const result = RESULTS[Math.floor(next() * RESULTS.length)];
      const value = valueOf(next);
      a.observe({ command, result }, value);
      b.labels(command, result).observe(value);
      c.observe(value);
      d.observe(value);
    }
  };
  observe(count, sequence(seed));
  return { stock, fast, observe };
}

t.test('the same /metrics text and JSON as prom-client\'s Histogram', async (t) => {
  for (const [seed, count] of [[1, 0], [7, 1], [42, 50], [2024, 5_000]] as const) {
    const { stock, fast } = pair(seed, count);
    t.equal(await fast.metrics(), await stock.metrics(), `text, ${count} observations`);
    t.equal(JSON.stringify(await fast.getMetricsAsJSON()), JSON.stringify(await stock.getMetricsAsJSON()), `JSON, ${count} observations`);
  }
});

t.test('after a reset, and after more observations', async (t) => {
  const { stock, fast, observe } = pair(3, 300);
  stock.resetMetrics();
  fast.resetMetrics();
  t.equal(await fast.metrics(), await stock.metrics(), 'empty again');
  observe(200, sequence(99));
  t.equal(await fast.metrics(), await stock.metrics(), 'counted afresh');
  t.match(await fast.metrics(), /hotline_esl_command_duration_seconds_count\{command="\w+",result="\w+"\} \d+/);
});

t.test('two workers aggregated as the cluster primary does (AggregatorRegistry.aggregate)', async (t) => {
  const one = pair(5, 400);
  const two = pair(6, 700);
  const stock = AggregatorRegistry.aggregate([await one.stock.getMetricsAsJSON(), await two.stock.getMetricsAsJSON()]);
  const fast = AggregatorRegistry.aggregate([await one.fast.getMetricsAsJSON(), await two.fast.getMetricsAsJSON()]);
  t.equal(await fast.metrics(), await stock.metrics());
});

t.test('a value that is not a number is dropped, not thrown (a metric never takes a call down)', async (t) => {
  const registry = new Registry();
  const h = new FastHistogram({ name: 'x_seconds', help: 'x', buckets: [1, 2], registers: [registry] });
  h.observe(Number.NaN);
  h.observe(Number.POSITIVE_INFINITY);
  h.observe(1.5);
  t.match(await registry.metrics(), /x_seconds_bucket\{le="1"\} 0\nx_seconds_bucket\{le="2"\} 1\nx_seconds_bucket\{le="\+Inf"\} 1\nx_seconds_sum 1.5\nx_seconds_count 1/);
});

t.test('misuse is a clear error at once', async (t) => {
  const registry = new Registry();
  const labelled = new FastHistogram({ name: 'a_seconds', help: 'a', labelNames: ['command', 'result'] as const, buckets: [1], registers: [registry] });
  const plain = new FastHistogram({ name: 'b_seconds', help: 'b', buckets: [1], registers: [registry] });
  t.throws(() => labelled.labels('connect'), /a_seconds: 2 label values expected, 1 given/);
  t.throws(() => labelled.observe(1), /a_seconds: observe needs its labels/);
  t.throws(() => plain.labels(), /b_seconds has no labels: observe\(\) it/);
  t.throws(() => new FastHistogram({ name: 'c_seconds', help: 'c', labelNames: ['le'] as const, buckets: [1], registers: [] }), /le is a reserved label name/);
  t.throws(() => new FastHistogram({ name: 'd_seconds', help: 'd', buckets: [1, 1], registers: [] }), /bucket bounds must ascend/);
  t.throws(() => new FastHistogram({ name: 'a_seconds', help: 'again', buckets: [1], registers: [registry] }), /already been registered/);
  t.equal(labelled.labels('connect', 'ok'), labelled.labels('connect', 'ok'), 'a label set is resolved once and kept');
});
