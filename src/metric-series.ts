/**
 * Series of prom-client counters and histograms held by reference, for the calls' path.
 *
 * prom-client's `inc(labels, n)` and `observe(labels, v)` build a labels record, check it against
 * the label names and join the series' key on every call, also through a `labels(…)` child. On
 * the calls' path, thirteen updates a call (seven ESL commands, the call, leg, caller and
 * database series) took 5.0 µs and 3 KB a call; held by reference 1.3 µs, and a call allocates
 * 87.4 KB instead of 90.4 (bench/PROFILE.md, release 42). Here a series' record in the metric's
 * own table is found once by its labels and then added to exactly as prom-client adds to it
 * (lib/counter.js: `{ labels, value }`; lib/histogram.js: `{ labels, bucketValues, sum, count }`),
 * so the metric exports it as ever: /metrics, the workers' merge, `get()`. When the table is
 * replaced (the registry's `resetMetrics()`), the next addition makes the record again, as
 * prom-client would. test/metrics/series.test.ts holds the exposition equal to prom-client's own
 * inc and observe, and that they are added to by reference; should prom-client keep its series
 * another way (a new version), the series go through its own inc and observe, and that test fails.
 */
import type { Counter, Histogram } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

interface CounterRecord {
  labels: Labels;
  value: number;
}

interface HistogramRecord {
  labels: Labels;
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

/** A metric's table of series records, by prom-client's key (which is never built here). */
type Table<R> = Record<string, R | undefined>;

/**
 * The record in `table` with `labels`, and its key; null when there is none. Every record of a
 * metric has all its label names, so a record with these values for them is the series; it may
 * carry more (the registry's default labels, which getMetricsAsJSON writes into the records).
 */
function findRecord<R extends { labels: Labels }>(table: Table<R>, labels: Labels): { key: string; record: R } | null {
  const names = Object.keys(labels);
  for (const key of Object.keys(table)) {
    const record = table[key];
    if (record === undefined || typeof record.labels !== 'object' || record.labels === null) continue;
    if (names.every((name) => record.labels[name] === labels[name])) return { key, record };
  }
  return null;
}

/** The record with `labels` in `table`, made by `make` (prom-client's own call) when it is not there yet; null when it cannot be found. */
function findOrMake<R extends { labels: Labels }>(table: Table<R> | null, labels: Labels, make: () => void): { key: string; record: R } | null {
  if (table === null) return null;
  const found = findRecord(table, labels);
  if (found !== null) return found;
  make();
  return findRecord(table, labels);
}

/** The metric's name, for messages (prom-client's types do not declare it). */
function nameOf(metric: Counter<string> | Histogram<string>): string {
  const { name } = metric as unknown as { name?: unknown };
  return typeof name === 'string' ? name : 'a metric';
}

/** The metric's table of series records; null when prom-client keeps none where expected. */
function tableOf<R>(metric: Counter<string> | Histogram<string>): Table<R> | null {
  const table = (metric as unknown as { hashMap?: unknown }).hashMap;
  return typeof table === 'object' && table !== null ? (table as Table<R>) : null;
}

/**
 * One series of a labelled counter. Should prom-client keep its series some other way than
 * this module expects (a new version), every addition goes through `counter.inc(labels, n)`:
 * slower, never lost, and never an error on a call's path.
 */
export class CounterSeries {
  private key = '';
  private record: CounterRecord | null = null;
  /** False once the record was not where expected: prom-client's own inc from then on. */
  private byReference = true;

  constructor(
    private readonly counter: Counter<string>,
    private readonly labels: Labels,
  ) {}

  /**
   * As `counter.inc(labels, n)`, but stricter: a negative, NaN or infinite `n` throws (prom-client
   * adds a NaN) and counts nothing, not even an empty series.
   */
  inc(n = 1): void {
    if (!(n >= 0) || n === Infinity) throw new TypeError(`counter ${nameOf(this.counter)}: cannot add ${n}`);
    const record = this.byReference ? this.current() : null;
    if (record === null) this.counter.inc(this.labels, n);
    else record.value += n;
  }

  /** The series' record in the counter's table, found again after a reset; null (and no more tries) when it is not there. */
  private current(): CounterRecord | null {
    const table = tableOf<CounterRecord>(this.counter);
    if (table !== null && this.record !== null && table[this.key] === this.record) return this.record;
    // Made when missing by prom-client itself (which checks the label names); one already there is kept.
    const found = findOrMake(table, this.labels, () => this.counter.inc(this.labels, 0));
    if (found === null || typeof found.record.value !== 'number') {
      this.byReference = false;
      return null;
    }
    this.key = found.key;
    this.record = found.record;
    return found.record;
  }
}

/**
 * One series of a labelled histogram with `upperBounds` (its buckets, ascending, as configured).
 * As CounterSeries, it falls back to `histogram.observe(labels, v)` should prom-client keep its
 * series another way.
 */
export class HistogramSeries {
  private key = '';
  private record: HistogramRecord | null = null;
  private byReference = true;

  constructor(
    private readonly histogram: Histogram<string>,
    private readonly labels: Labels,
    /** The histogram's buckets, all of them: a record with others is not used (prom-client's observe is). */
    private readonly upperBounds: readonly number[],
  ) {
    // The label names checked as observe checks them (zero() does not): a wrong one throws here.
    histogram.labels(labels);
  }

  /** As `histogram.observe(labels, v)`: a non-finite `v` throws and counts nothing, not even an empty series. */
  observe(v: number): void {
    if (!Number.isFinite(v)) throw new TypeError(`histogram ${nameOf(this.histogram)}: cannot observe ${v}`);
    const record = this.byReference ? this.current() : null;
    if (record === null) {
      this.histogram.observe(this.labels, v);
      return;
    }
    // The smallest bound at or above v (lib/histogram.js findBound); none past the last: +Inf only.
    for (const bound of this.upperBounds) {
      if (v <= bound) {
        record.bucketValues[bound] += 1;
        break;
      }
    }
    record.sum += v;
    record.count += 1;
  }

  private current(): HistogramRecord | null {
    const table = tableOf<HistogramRecord>(this.histogram);
    if (table !== null && this.record !== null && table[this.key] === this.record) return this.record;
    // zero() replaces a record already there: only for a series not in the table yet.
    const found = findOrMake(table, this.labels, () => this.histogram.zero(this.labels));
    const record = found?.record;
    const shaped = record !== undefined && typeof record.sum === 'number' && typeof record.count === 'number' && typeof record.bucketValues === 'object' && record.bucketValues !== null;
    const bucketed = shaped && Object.keys(record.bucketValues).length === this.upperBounds.length && this.upperBounds.every((b) => typeof record.bucketValues[b] === 'number');
    if (found === null || record === undefined || !bucketed) {
      this.byReference = false;
      return null;
    }
    this.key = found.key;
    this.record = record;
    return record;
  }
}

/**
 * A metric's series by up to three label values, each made on first use. The callers' label
 * values are bounded sets (outcomes, number kinds, command names, listed tenants and their
 * groups), so this never grows past them.
 */
export class SeriesByLabels<S> {
  private readonly byFirst = new Map<string, Map<string, Map<string, S>>>();

  constructor(private readonly make: (first: string, second: string, third: string) => S) {}

  get(first: string, second = '', third = ''): S {
    let bySecond = this.byFirst.get(first);
    if (bySecond === undefined) {
      bySecond = new Map();
      this.byFirst.set(first, bySecond);
    }
    let byThird = bySecond.get(second);
    if (byThird === undefined) {
      byThird = new Map();
      bySecond.set(second, byThird);
    }
    let series = byThird.get(third);
    if (series === undefined) {
      series = this.make(first, second, third);
      byThird.set(third, series);
    }
    return series;
  }
}
