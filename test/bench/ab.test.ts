/**
 * bench:ab's arithmetic (bench/ab.ts): medians of the paired rounds, B against A, and the rounds
 * B won on CPU. The runs themselves are measurements, not tests.
 */
import t from 'tap';
import { formatSummary, gcSecondsOf, median, summarize, tenantColumns, type AbRound } from '../../bench/ab';

const round = (callsPerSecond: number, cpuMsPerCall: number, setupP50Ms = 50, failed = 0, setupP99Ms = setupP50Ms * 2, gcUsPerCall = 30): AbRound => ({ callsPerSecond, cpuMsPerCall, setupP50Ms, setupP99Ms, gcUsPerCall, failed });

t.test('median: odd and even counts, order of input does not matter, empty is NaN', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([5]), 5);
  t.ok(Number.isNaN(median([])));
});

t.test('summarize: medians, ratios of the medians, rounds won by B on CPU (ties count for neither)', async (t) => {
  const a = [round(1000, 0.7, 50, 0, 90, 30), round(1100, 0.65, 48, 0, 80, 34), round(900, 0.8, 60, 1, 200, 28), round(1000, 0.7, 52, 0, 100, 40)];
  const b = [round(1100, 0.6, 45, 0, 40, 20), round(1050, 0.7, 47, 0, 50, 22), round(1000, 0.75, 55, 0, 60, 26), round(1000, 0.7, 50, 2, 400, 18)];
  const s = summarize(a, b);
  t.same(s.a, { callsPerSecond: 1000, cpuMsPerCall: 0.7, setupP50Ms: 51, setupP99Ms: 95, gcUsPerCall: 32 });
  t.same(s.b, { callsPerSecond: 1025, cpuMsPerCall: 0.7, setupP50Ms: 48.5, setupP99Ms: 55, gcUsPerCall: 21 });
  t.equal(s.ratio.callsPerSecond, 1.025);
  t.equal(s.ratio.cpuMsPerCall, 1);
  t.equal(s.ratio.setupP99Ms, 55 / 95, 'the p99s are paired by median, not by round');
  t.equal(s.bLessCpu, 2, 'round 1 and round 3; round 2 lost, round 4 a tie');
  t.equal(s.rounds, 4);
  t.same(s.failed, { a: 1, b: 2 });
  t.equal(s.ratio.gcUsPerCall, 21 / 32);
  t.match(formatSummary(s, { a: 'HEAD~1', b: '.' }), /\| A HEAD~1 \| 1000 \| 0\.700 ms \| 51\.0 ms \| 95\.0 ms \| 32\.0 µs \|[\s\S]*\| B \/ A \| 1\.025× \| 1\.000× \| 0\.951× \| 0\.579× \| 0\.656× \|[\s\S]*in 2 of 4 rounds; calls failed: A 1, B 2/);
  const old = summarize([round(1, 1, 1, 0, 1, NaN)], [round(1, 1, 1, 0, 1, NaN)]);
  t.match(formatSummary(old, { a: 'old', b: 'old' }), /\| A old \| 1 \| 1\.000 ms \| 1\.0 ms \| 1\.0 ms \| — \|[\s\S]*\| B \/ A \| 1\.000× \| 1\.000× \| 1\.000× \| 1\.000× \| — \|/, 'a build whose daemon has no /metrics port: a dash, not NaN');
});

t.test('gcSecondsOf: the collector\'s seconds summed over every kind of a Prometheus text', async (t) => {
  const text = [
    '# HELP nodejs_gc_duration_seconds Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
    '# TYPE nodejs_gc_duration_seconds histogram',
    'nodejs_gc_duration_seconds_bucket{le="0.001",kind="minor"} 10',
    'nodejs_gc_duration_seconds_sum{kind="minor"} 0.25',
    'nodejs_gc_duration_seconds_count{kind="minor"} 100',
    'nodejs_gc_duration_seconds_sum{kind="major"} 0.5',
    'nodejs_gc_duration_seconds_sum{kind="incremental"} 1e-3',
    'hotline_calls_total{outcome="answered"} 7',
  ].join('\n');
  t.equal(gcSecondsOf(text), 0.751);
  t.ok(Number.isNaN(gcSecondsOf('hotline_calls_total 1\n')), 'none: NaN');
});

t.test('summarize refuses rounds that do not pair up', async (t) => {
  t.throws(() => summarize([round(1, 1)], []), /must pair up/);
});

t.test('BENCH_AB_TENANT_B: a JSON object of columns, or a clear refusal', async (t) => {
  t.equal(tenantColumns(undefined), null, 'unset');
  t.equal(tenantColumns('  '), null, 'blank');
  t.same(tenantColumns('{"caller_memory_hours":0}'), { caller_memory_hours: 0 });
  t.throws(() => tenantColumns('{caller_memory_hours:0}'), /BENCH_AB_TENANT_B is not JSON/);
  for (const bad of ['0', 'null', '[1]', '{}', '"x"']) t.throws(() => tenantColumns(bad), /must be a JSON object of tenants columns/, bad);
});
