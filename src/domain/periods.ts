/**
 * Caps periods and report periods in a tenant's timezone: "today" and "this month" begin at
 * local midnight, which is a different UTC instant for every zone and, where clocks change,
 * a different number of hours per day (23 or 25 on DST days). Pure: the instant is passed in.
 *
 * A period is named by its first local day, `YYYY-MM-DD` (months: `YYYY-MM-01`), which is how
 * tenant_usage.period_start and the report tables store it. `from`/`to` are the UTC instants
 * bounding it (`to` exclusive), for range queries on cdrs.started_at.
 */
import { DateTime } from 'luxon';
import { isValidTimeZone, legacyZoneAlias } from './timezone';

export type PeriodKind = 'day' | 'month';
export const PERIOD_KINDS: readonly PeriodKind[] = ['day', 'month'];

/** tenants.timezone default (SCHEMA.md); also used for a zone the runtime does not know. */
export const DEFAULT_TIMEZONE = 'Asia/Shanghai';

export interface Period {
  readonly kind: PeriodKind;
  /** First local day, YYYY-MM-DD. */
  readonly start: string;
  readonly zone: string;
  /** First instant of the period (UTC). */
  readonly from: Date;
  /** First instant after the period (UTC), exclusive. */
  readonly to: Date;
}

/**
 * The zone to use for a tenants.timezone value read live (caps, reports, spend guards): itself
 * when valid, else the default; an old abbreviation the runtime reads as another zone (CST:
 * America/Chicago) is the default too, as the snapshot takes it (build.ts linkTenants).
 */
export function tenantZone(zone: string | null | undefined): string {
  const z = typeof zone === 'string' ? zone.trim() : '';
  return z !== '' && isValidTimeZone(z) && legacyZoneAlias(z) === null ? z : DEFAULT_TIMEZONE;
}

function unit(kind: PeriodKind): 'day' | 'month' {
  return kind;
}

function build(kind: PeriodKind, local: DateTime, zone: string): Period {
  const start = local.startOf(unit(kind));
  // plus() on a local calendar date, then startOf again: the next local midnight even when
  // that day starts at 01:00 because of a DST jump at midnight.
  const next = start.plus(kind === 'day' ? { days: 1 } : { months: 1 }).startOf(unit(kind));
  return { kind, start: start.toISODate()!, zone, from: start.toJSDate(), to: next.toJSDate() };
}

/**
 * Periods already computed, by zone, kind and 15-minute UTC slot. Every zone in use today has an
 * offset that is a whole number of quarter hours, so its local midnights fall on slot boundaries
 * and every slot lies inside one day; a period is remembered for a slot only when it covers the
 * whole slot (a historical offset such as LMT +08:05:43 is then computed each time, never
 * answered wrongly). FIFO-bounded: a backlog spread over many days recomputes, it does not grow.
 */
const SLOT_MS = 15 * 60_000;
const PERIOD_CACHE_MAX = 8192;
const periodCache = new Map<string, Period>();

/** Entries in the period cache and its bound (for tests). */
export function periodCacheSize(): { size: number; max: number } {
  return { size: periodCache.size, max: PERIOD_CACHE_MAX };
}

function copy(p: Period): Period {
  return { kind: p.kind, start: p.start, zone: p.zone, from: new Date(p.from.getTime()), to: new Date(p.to.getTime()) };
}

/** The period of `kind` that contains `instant` in `zone`. Memoised (see periodCache). */
export function periodOf(kind: PeriodKind, instant: Date, zone: string): Period {
  return copy(cachedPeriod(kind, instant, zone));
}

/** periodOf(…).start without a copy of the period: for charging every CDR of a batch. */
export function periodStartOf(kind: PeriodKind, instant: Date, zone: string): string {
  return cachedPeriod(kind, instant, zone).start;
}

/** The cache's own Period (never handed out: callers get a copy they may change). */
function cachedPeriod(kind: PeriodKind, instant: Date, zone: string): Period {
  const z = tenantZone(zone);
  const t = instant.getTime();
  if (!Number.isFinite(t)) return computePeriodOf(kind, instant, z);
  const slot = Math.floor(t / SLOT_MS);
  const key = `${z}\u0000${kind}\u0000${slot}`;
  const hit = periodCache.get(key);
  if (hit) return hit;
  const p = computePeriodOf(kind, instant, z);
  if (p.from.getTime() <= slot * SLOT_MS && p.to.getTime() >= (slot + 1) * SLOT_MS) {
    if (periodCache.size >= PERIOD_CACHE_MAX) {
      const oldest = periodCache.keys().next();
      if (!oldest.done) periodCache.delete(oldest.value);
    }
    periodCache.set(key, p);
  }
  return p;
}

/** periodOf without the cache: what the cache must always agree with. */
export function computePeriodOf(kind: PeriodKind, instant: Date, zone: string): Period {
  const z = tenantZone(zone);
  return build(kind, DateTime.fromJSDate(instant, { zone: z }), z);
}

/** The period named by its first day ('2026-11-20'; for months also '2026-11'). Throws on junk. */
export function periodByStart(kind: PeriodKind, start: string, zone: string): Period {
  const z = tenantZone(zone);
  const text = kind === 'month' && /^\d{4}-\d{2}$/.test(start) ? `${start}-01` : start;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) throw new Error(`not a day (YYYY-MM-DD): ${JSON.stringify(start)}`);
  const local = DateTime.fromISO(text, { zone: z });
  if (!local.isValid) throw new Error(`not a day (YYYY-MM-DD): ${JSON.stringify(start)}`);
  if (kind === 'month' && local.day !== 1) throw new Error(`a month starts on day 01: ${JSON.stringify(start)}`);
  return build(kind, local, z);
}

/** The period just before `p`. */
export function previousPeriod(p: Period): Period {
  return periodOf(p.kind, new Date(p.from.getTime() - 1), p.zone);
}

/** The period just after `p`. */
export function nextPeriod(p: Period): Period {
  return periodOf(p.kind, p.to, p.zone);
}

/** The latest period of `kind` that is over at `instant` (yesterday, last month). */
export function lastCompletePeriod(kind: PeriodKind, instant: Date, zone: string): Period {
  return previousPeriod(periodOf(kind, instant, zone));
}

/** How a period is written in file names and reports: 2026-11-20, or 2026-11 for a month. */
export function periodLabel(p: Pick<Period, 'kind' | 'start'>): string {
  return p.kind === 'month' ? p.start.slice(0, 7) : p.start;
}

/** Local hour of day (0–23) of an instant in a zone. */
export function localHour(instant: Date, zone: string): number {
  return DateTime.fromJSDate(instant, { zone: tenantZone(zone) }).hour;
}

const QUARTER_MS = 15 * 60_000;
/** Quarters a LocalHours keeps (a month is 2,976). */
const LOCAL_HOURS_KEPT = 10_000;

/**
 * localHour for many instants of one zone (a report's CDRs): luxon works the zone's offset out
 * through Intl for every instant, 4-5 µs each, a quarter of a month report's CPU (bench/PROFILE.md,
 * release 30). Every zone's offset is a whole number of quarters of an hour, so a UTC quarter
 * whose two ends have the same offset and the same local hour has that hour throughout: it is
 * asked once. A quarter with an offset change in it (a clock change) is asked per instant.
 */
export class LocalHours {
  private readonly byQuarter = new Map<number, number>();
  private readonly zone: string;

  constructor(zone: string) {
    this.zone = tenantZone(zone);
  }

  of(instant: Date): number {
    const quarter = Math.floor(instant.getTime() / QUARTER_MS);
    const known = this.byQuarter.get(quarter);
    if (known !== undefined) return known;
    const first = DateTime.fromMillis(quarter * QUARTER_MS, { zone: this.zone });
    const last = DateTime.fromMillis((quarter + 1) * QUARTER_MS - 1, { zone: this.zone });
    if (first.offset !== last.offset || first.hour !== last.hour) return localHour(instant, this.zone);
    if (this.byQuarter.size >= LOCAL_HOURS_KEPT) this.byQuarter.clear();
    this.byQuarter.set(quarter, first.hour);
    return first.hour;
  }
}
