/**
 * metric-series.ts adds to a prom-client series' own record instead of calling inc/observe with
 * labels: what /metrics and get() show must be what prom-client's inc and observe show, for any
 * values, beside prom-client's own calls on the same series (before or after them), and after a
 * reset or a removal; and with the prom-client installed it must really add by reference (no
 * inc/observe/zero after the first addition), which fails should a new version keep its series
 * another way. There the series go through prom-client's own calls instead: slower, nothing lost.
 */
import t from 'tap';
import { Counter, Histogram, Registry } from 'prom-client';
import { CounterSeries, HistogramSeries, SeriesByLabels } from '../../src/metric-series';
import { Metrics } from '../../src/metrics';

const BUCKETS = [0.001, 0.01, 0.1, 1, 5];

function pair(): { ours: Registry; theirs: Registry } {
  return { ours: new Registry(), theirs: new Registry() };
}

function histogram(registry: Registry): Histogram<'command' | 'result'> {
  return new Histogram({ name: 'x_seconds', help: 'x', labelNames: ['command', 'result'] as const, buckets: [...BUCKETS], registers: [registry] });
}

function counter(registry: Registry): Counter<'outcome' | 'kind'> {
  return new Counter({ name: 'x_total', help: 'x', labelNames: ['outcome', 'kind'] as const, registers: [registry] });
}

t.test('a histogram series shows what observe with labels shows, bounds, zero and past the last bound included', async (t) => {
  const { ours, theirs } = pair();
  const mine = histogram(ours);
  const reference = histogram(theirs);
  const series = new SeriesByLabels((command, result) => new HistogramSeries(mine, { command, result }, BUCKETS));
  const values: Array<[string, string, number]> = [
    ['bridge', 'ok', 0], ['bridge', 'ok', 0.001], ['bridge', 'ok', 0.0010001], ['bridge', 'ok', 5], ['bridge', 'ok', 5.5], ['bridge', 'ok', 1e9],
    ['answer', 'timeout', 0.5], ['answer', 'ok', -0.25], ['bridge', 'hangup', 0.1],
  ];
  let seed = 7;
  for (let i = 0; i < 200; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    values.push([i % 3 === 0 ? 'bridge' : 'playback', i % 5 === 0 ? 'error' : 'ok', (seed / 2 ** 31) * 7]);
  }
  for (const [command, result, v] of values) {
    series.get(command, result).observe(v);
    reference.observe({ command, result }, v);
  }
  t.equal(await ours.metrics(), await theirs.metrics(), 'the same exposition');
  t.same(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON(), 'the same JSON (the workers\' merge reads it)');
  t.throws(() => series.get('bridge', 'ok').observe(Number.NaN), TypeError, 'NaN is refused, as prom-client refuses it');
  t.throws(() => series.get('bridge', 'ok').observe(Infinity), TypeError);
  t.equal(await ours.metrics(), await theirs.metrics(), 'and counted nothing');
});

t.test('a counter series shows what inc with labels shows; a bad amount throws and counts nothing', async (t) => {
  const { ours, theirs } = pair();
  const mine = counter(ours);
  const reference = counter(theirs);
  const series = new SeriesByLabels((outcome, kind) => new CounterSeries(mine, { outcome, kind }));
  const adds: Array<[string, string, number]> = [['answered', 'hotline', 1], ['answered', 'hotline', 0], ['busy', 'switchboard', 2.5], ['answered', 'hotline', 37], ['failed', 'unknown', 1]];
  for (const [outcome, kind, n] of adds) {
    series.get(outcome, kind).inc(n);
    reference.inc({ outcome, kind }, n);
  }
  series.get('answered', 'hotline').inc();
  reference.inc({ outcome: 'answered', kind: 'hotline' });
  t.equal(await ours.metrics(), await theirs.metrics());
  t.same(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
  for (const bad of [-1, Number.NaN, Infinity]) t.throws(() => series.get('busy', 'switchboard').inc(bad), TypeError, `${bad} refused`);
  t.equal(await ours.metrics(), await theirs.metrics(), 'and counted nothing');
});

t.test('with this prom-client, by reference: after the first addition no inc, observe or zero of prom-client\'s is called', async (t) => {
  const registry = new Registry();
  const c = counter(registry);
  const h = histogram(registry);
  // Default labels, which the registry's JSON writes into the live records: series made after such a scrape.
  registry.setDefaultLabels({ node: 'a' });
  c.inc({ outcome: 'answered', kind: 'hotline' }, 0);
  h.zero({ command: 'bridge', result: 'ok' });
  await registry.getMetricsAsJSON();
  const cs = new CounterSeries(c, { outcome: 'answered', kind: 'hotline' });
  const hs = new HistogramSeries(h, { command: 'bridge', result: 'ok' }, BUCKETS);
  cs.inc();
  hs.observe(0.5);
  await registry.getMetricsAsJSON();
  const calls: string[] = [];
  for (const [metric, names] of [[c, ['inc']], [h, ['observe', 'zero']]] as const) {
    for (const name of names) {
      const own = (metric as unknown as Record<string, (...args: unknown[]) => unknown>)[name].bind(metric);
      (metric as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
        calls.push(name);
        return own(...args);
      };
    }
  }
  for (let i = 0; i < 100; i++) {
    cs.inc();
    hs.observe(i / 10);
  }
  t.same(calls, [], 'no call of prom-client\'s own: the records were found');
  t.equal((await c.get()).values[0]?.value, 101);
  t.equal((await h.get()).values.find((v) => v.metricName === 'x_seconds_count')?.value, 101);
});

t.test('a bad first value: nothing counted, no empty series made', async (t) => {
  const registry = new Registry();
  const c = counter(registry);
  const h = histogram(registry);
  t.throws(() => new CounterSeries(c, { outcome: 'busy', kind: 'hotline' }).inc(Number.NaN), TypeError);
  t.throws(() => new HistogramSeries(h, { command: 'answer', result: 'ok' }, BUCKETS).observe(Infinity), TypeError);
  t.same((await c.get()).values, []);
  t.same((await h.get()).values, []);
  t.throws(() => new HistogramSeries(h, { command: 'answer', outcome: 'ok' }, BUCKETS), /label/i, 'a label name the histogram does not have');
});

t.test('prom-client\'s own calls first, then the series; and a series removed and made again by prom-client: nothing lost', async (t) => {
  const registry = new Registry();
  const c = counter(registry);
  const h = histogram(registry);
  h.observe({ command: 'bridge', result: 'ok' }, 0.5);
  h.observe({ command: 'bridge', result: 'ok' }, 0.5);
  c.inc({ outcome: 'busy', kind: 'hotline' }, 4);
  const hs = new HistogramSeries(h, { command: 'bridge', result: 'ok' }, BUCKETS);
  const cs = new CounterSeries(c, { outcome: 'busy', kind: 'hotline' });
  hs.observe(0.05);
  cs.inc();
  const count = async (): Promise<number | undefined> => (await h.get()).values.find((v) => v.metricName === 'x_seconds_count')?.value;
  t.equal(await count(), 3, 'the two observed before are kept');
  t.equal((await c.get()).values[0]?.value, 5);
  h.remove({ command: 'bridge', result: 'ok' });
  h.observe({ command: 'bridge', result: 'ok' }, 0.5);
  hs.observe(0.05);
  t.equal(await count(), 2, 'the one observed after the removal is kept');
});

t.test('beside prom-client\'s own inc and observe on the same series: one series, both counted', async (t) => {
  const registry = new Registry();
  const c = counter(registry);
  const h = histogram(registry);
  const cs = new CounterSeries(c, { outcome: 'answered', kind: 'hotline' });
  const hs = new HistogramSeries(h, { command: 'bridge', result: 'ok' }, BUCKETS);
  cs.inc(2);
  c.inc({ kind: 'hotline', outcome: 'answered' }, 3);
  cs.inc();
  hs.observe(0.5);
  h.observe({ command: 'bridge', result: 'ok' }, 2);
  hs.observe(0.004);
  t.same((await c.get()).values.map((v) => [v.labels, v.value]), [[{ outcome: 'answered', kind: 'hotline' }, 6]]);
  const count = (await h.get()).values.find((v) => v.metricName === 'x_seconds_count');
  const sum = (await h.get()).values.find((v) => v.metricName === 'x_seconds_sum');
  t.equal(count?.value, 3);
  t.equal(sum?.value, 2.504);
});

t.test('after the registry is reset, the next addition makes the series again', async (t) => {
  const registry = new Registry();
  const c = counter(registry);
  const h = histogram(registry);
  const cs = new CounterSeries(c, { outcome: 'busy', kind: 'hotline' });
  const hs = new HistogramSeries(h, { command: 'answer', result: 'ok' }, BUCKETS);
  cs.inc(5);
  hs.observe(0.02);
  registry.resetMetrics();
  t.same((await c.get()).values, [], 'gone with the reset');
  t.same((await h.get()).values, []);
  cs.inc();
  hs.observe(0.03);
  t.same((await c.get()).values.map((v) => v.value), [1]);
  t.equal((await h.get()).values.find((v) => v.metricName === 'x_seconds_count')?.value, 1);
  t.equal((await h.get()).values.find((v) => v.metricName === 'x_seconds_sum')?.value, 0.03);
});

t.test('a prom-client that keeps its series elsewhere: each addition goes through its own inc and observe, none lost, no error', async (t) => {
  // Stand-ins for a prom-client whose table is not where metric-series.ts looks: they record the calls made to them.
  const calls: string[] = [];
  const counterLike = { name: 'x_total', hashMap: {}, inc: (labels: object, n: number) => calls.push(`inc ${JSON.stringify(labels)} ${n}`) };
  const histogramLike = { name: 'x_seconds', labels: () => ({}), zero: () => undefined, observe: (labels: object, v: number) => calls.push(`observe ${JSON.stringify(labels)} ${v}`) };
  const cs = new CounterSeries(counterLike as unknown as Counter<string>, { outcome: 'busy' });
  const hs = new HistogramSeries(histogramLike as unknown as Histogram<string>, { command: 'answer' }, BUCKETS);
  cs.inc(2);
  cs.inc();
  hs.observe(0.5);
  hs.observe(7);
  t.same(calls.filter((c) => !c.endsWith(' 0')), ['inc {"outcome":"busy"} 2', 'inc {"outcome":"busy"} 1', 'observe {"command":"answer"} 0.5', 'observe {"command":"answer"} 7']);
  t.equal(calls.filter((c) => c.endsWith(' 0')).length, 1, 'the record looked for once, not every time');
  // A real prom-client whose records changed shape (no bucket counts): the same fallback.
  const registry = new Registry();
  const h = histogram(registry);
  const records = (h as unknown as { hashMap: Record<string, unknown> }).hashMap;
  const zero = h.zero.bind(h);
  h.zero = (labels) => {
    zero(labels);
    for (const key of Object.keys(records)) records[key] = { labels, sum: 0, count: 0, buckets: [] };
  };
  const observed: number[] = [];
  h.observe = ((_labels: object, v: number) => observed.push(v)) as unknown as typeof h.observe;
  const series = new HistogramSeries(h, { command: 'answer', result: 'ok' }, BUCKETS);
  series.observe(1);
  series.observe(2);
  t.same(observed, [1, 2], 'observed through prom-client');
});

t.test('Metrics.callStarted and callEnded: the counters the call server incremented one by one before', async (t) => {
  const kept = new Metrics({ tenantIds: [7] });
  const reference = new Metrics({ tenantIds: [7] });
  const calls: Array<[string, string, { tenant_id: number | null; billsec: number } | undefined]> = [
    ['answered', 'hotline', { tenant_id: 7, billsec: 42 }], ['busy', 'switchboard', { tenant_id: 9, billsec: 0 }], ['failed', 'unknown', undefined],
    ['answered', 'hotline', { tenant_id: null, billsec: 3 }], ['abandoned', 'hotline', { tenant_id: 7, billsec: 0 }], ['answered', 'switchboard', { tenant_id: 9, billsec: 61 }],
  ];
  for (const [outcome, kind, cdr] of calls) {
    kept.callStarted(kind);
    reference.callsStarted.inc({ number_kind: kind });
    kept.callEnded(outcome, kind, cdr);
    reference.callsEnded.inc({ outcome, number_kind: kind });
    if (cdr === undefined) continue;
    reference.tenantCallsEnded.inc({ tenant: reference.tenantLabel(cdr.tenant_id), outcome });
    if (cdr.billsec > 0) {
      reference.talkSeconds.inc({ number_kind: kind }, cdr.billsec);
      reference.tenantTalkSeconds.inc({ tenant: reference.tenantLabel(cdr.tenant_id) }, cdr.billsec);
    }
  }
  const lines = async (m: Metrics): Promise<string[]> => (await m.registry.metrics()).split('\n').filter((l) => /^hotline_(calls_|tenant_calls_|talk_|tenant_talk_)/.test(l));
  const ours = await lines(kept);
  t.same(ours, await lines(reference));
  t.ok(ours.includes('hotline_tenant_talk_seconds_total{tenant="7"} 42'), 'a listed tenant by its id');
  t.ok(ours.includes('hotline_tenant_calls_ended_total{tenant="other",outcome="answered"} 2'), 'the rest as other');
});

t.test('Metrics.countLeg, countCallerNumber, countCallerMemoryLookup and timeDb: the series prom-client\'s own calls made', async (t) => {
  const kept = new Metrics({ tenantIds: [7] });
  const reference = new Metrics({ tenantIds: [7] });
  const legs: Array<[number | null, number | null, string]> = [[7, 3, 'answered'], [7, null, 'busy'], [9, 4, 'no_answer'], [7, 3, 'answered'], [null, null, 'failed']];
  for (const [tenantId, groupId, result] of legs) {
    kept.countLeg(tenantId, groupId, result);
    reference.legs.inc({ tenant: reference.tenantLabel(tenantId), group: groupId === null ? 'extension' : reference.groupLabel(tenantId, groupId), result });
  }
  for (const form of ['plain', 'reduced', 'plain', 'withheld']) {
    kept.countCallerNumber(form);
    reference.callerNumbers.inc({ form });
  }
  for (const from of ['memory', 'database', 'memory'] as const) {
    kept.countCallerMemoryLookup(from);
    reference.callerMemoryLookups.inc({ answered_from: from });
  }
  await kept.timeDb('admission', () => Promise.resolve(1));
  await kept.timeDb('admission', () => Promise.resolve(2));
  await t.rejects(kept.timeDb('caller_memory', () => Promise.reject(new Error('gone'))), /gone/);
  // The reference times through prom-client's startTimer, as timeDb did before.
  for (const result of ['ok', 'ok']) reference.dbQuerySeconds.startTimer({ operation: 'admission' })({ result });
  reference.dbQuerySeconds.startTimer({ operation: 'caller_memory' })({ result: 'error' });
  reference.dbErrors.inc({ operation: 'caller_memory' });
  const lines = async (m: Metrics): Promise<string[]> => (await m.registry.metrics()).split('\n')
    .filter((l) => /^hotline_(destination_legs|caller_numbers|caller_memory_lookups)_total|^hotline_db_query_duration_seconds_count|^hotline_db_errors_total/.test(l));
  const ours = await lines(kept);
  t.same(ours, await lines(reference));
  t.ok(ours.includes('hotline_destination_legs_total{tenant="7",group="3",result="answered"} 2'), 'a listed tenant\'s group by its id');
  t.ok(ours.includes('hotline_destination_legs_total{tenant="7",group="extension",result="busy"} 1'), 'an extension\'s phones');
  t.ok(ours.includes('hotline_db_query_duration_seconds_count{operation="admission",result="ok"} 2'));
  t.ok(ours.includes('hotline_db_query_duration_seconds_count{operation="caller_memory",result="error"} 1'));
});
