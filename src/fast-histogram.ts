/**
 * A Prometheus histogram for the call path: what prom-client's Histogram exports, for a fraction
 * of its cost an observation.
 *
 * prom-client's `observe(labels, value)` builds a labels object, checks every label name, joins
 * the label values into a key string and looks that string up, then converts the bucket bound to a
 * property name, on every observation. On the calls' path (every ESL command's round trip, the
 * setup, the answer) that cost the daemon about 4 % of its CPU a call (bench/PROFILE.md, release
 * 28: with the ESL command histogram's observations left out, CPU a call 0.957× and 0.959× in two
 * runs of `bench:ab`). Here a label set is resolved once to a `HistogramChild` (kept, so the next
 * observation with the same labels finds it with one Map lookup a label), whose observation is a
 * walk over the bounds and three additions.
 *
 * It registers itself in a prom-client Registry, which needs of a metric only `name`, `get()` and
 * `reset()` (prom-client/lib/registry.js), and `get()` gives exactly what prom-client's Histogram
 * gives for the same observations: the same /metrics text and the same JSON for the cluster's
 * aggregation (test/fast-histogram.test.ts compares both with a prom-client Histogram).
 */
import type { Histogram, Registry } from 'prom-client';

/** One label set's counts: per bucket (not cumulative; the last is above every bound), sum, count. */
export class HistogramChild {
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: Float64Array,
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    // prom-client throws for NaN and ±Infinity; a metric must never take the call down, so a
    // value that is not a number is dropped instead.
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** The count at or below each bound, in order (Prometheus buckets are cumulative). */
  cumulative(): number[] {
    const out: number[] = [];
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) out.push((acc += this.counts[i]));
    return out;
  }
}

interface HistogramValue {
  value: number;
  metricName: string;
  exemplar: null | undefined;
  labels: Record<string, string | number>;
}

export interface FastHistogramConfig<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  /** Upper bounds, ascending (prom-client's `buckets`). */
  buckets: readonly number[];
  registers: readonly Registry[];
}

export class FastHistogram<L extends string = never> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly L[];
  private readonly bounds: Float64Array;
  /** Children by their label values, one level a label (the last level holds the child). */
  private children = new Map<string, unknown>();
  /** In the order they were first observed, as prom-client exports them. */
  private ordered: HistogramChild[] = [];
  private unlabelled: HistogramChild | null = null;

  constructor(config: FastHistogramConfig<L>) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames ?? [];
    if (this.labelNames.includes('le' as L)) throw new Error(`${config.name}: le is a reserved label name`);
    for (let i = 1; i < config.buckets.length; i++) {
      if (!(config.buckets[i] > config.buckets[i - 1])) throw new Error(`${config.name}: bucket bounds must ascend`);
    }
    this.bounds = Float64Array.from(config.buckets);
    // The Registry reads name, get() and reset() only; its type names prom-client's own classes.
    for (const registry of config.registers) registry.registerMetric(this as unknown as Histogram<string>);
    // As prom-client: a histogram without labels is exported (zeros) before its first observation.
    if (this.labelNames.length === 0) this.ordered.push((this.unlabelled = new HistogramChild(this.bounds, {})));
  }

  /** The child of one label set, values in `labelNames` order (made on first use). */
  labels(...values: string[]): HistogramChild {
    if (this.labelNames.length === 0) throw new Error(`${this.name} has no labels: observe() it`);
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected, ${values.length} given`);
    let level = this.children;
    for (let i = 0; i < values.length - 1; i++) {
      let next = level.get(values[i]) as Map<string, unknown> | undefined;
      if (!next) level.set(values[i], (next = new Map()));
      level = next;
    }
    const last = values[values.length - 1];
    let child = level.get(last) as HistogramChild | undefined;
    if (!child) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i]));
      child = new HistogramChild(this.bounds, labels);
      level.set(last, child);
      this.ordered.push(child);
    }
    return child;
  }

  /** An observation of a histogram without labels. */
  observe(value: number): void {
    if (this.labelNames.length > 0) throw new Error(`${this.name}: observe needs its labels (labels(...).observe)`);
    if (!this.unlabelled) {
      this.unlabelled = new HistogramChild(this.bounds, {});
      this.ordered.push(this.unlabelled);
    }
    this.unlabelled.observe(value);
  }

  /** What prom-client's Histogram.get() gives: per label set its buckets, +Inf, sum and count. */
  get(): Promise<{ name: string; help: string; type: 'histogram'; values: HistogramValue[]; aggregator: 'sum' }> {
    const values: HistogramValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const child of this.ordered) {
      const cumulative = child.cumulative();
      for (let i = 0; i < cumulative.length; i++) values.push({ value: cumulative[i], metricName: bucket, exemplar: null, labels: { le: this.bounds[i], ...child.labels } });
      values.push({ value: child.count, metricName: bucket, exemplar: null, labels: { le: '+Inf', ...child.labels } });
      values.push({ value: child.sum, metricName: `${this.name}_sum`, exemplar: undefined, labels: { ...child.labels } });
      values.push({ value: child.count, metricName: `${this.name}_count`, exemplar: undefined, labels: { ...child.labels } });
    }
    // A promise, as prom-client's get(): the Registry awaits every metric's.
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /**
   * Forgets every observation (Registry.resetMetrics); children handed out before are not counted
   * any more. As prom-client, a histogram without labels is then not exported until observed.
   */
  reset(): void {
    this.children = new Map();
    this.ordered = [];
    this.unlabelled = null;
  }
}
