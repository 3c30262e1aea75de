/**
 * Money and counts read live from the hand-edited tenants row (the balance changes with every
 * call, so admission, the spend guards and the caps job read it from the database, not from the
 * snapshot). A DBA's typo there ('abc', '1,000.00', '' on SQLite) must neither cut a prepaid
 * tenant's calls (read as 0) nor lift its limit without a word (read as no balance).
 *
 * The rule, one place for every live reader: a value that cannot be read is replaced by the last
 * value this process read for the same tenant and column; when there is none, it limits nothing
 * (calls go through: the guards fail open, as they do when the database is away). Each time it
 * happens it is reported (the reporter logs it once per value and counts
 * hotline_live_values_unreadable_total{column}); the snapshot refuses the same row with a
 * `tenants` finding (readers.ts), which `npm run config:lint` lists.
 *
 * A cap is read by domain/caps.ts, as the snapshot reads it: a negative one is refused like junk,
 * 0 is doubtful. For those, the daemon's live reads take the cap the snapshot in force keeps for
 * the tenant (followSnapshot: its last good version, or 0 as written), which admission counts
 * against, so that the guards and the caps job never limit by another cap than admission does.
 */
import { capVerdict, type CapColumn } from '../domain/caps';
import { parseColumnMoney, type Money } from '../domain/money';

export const LIVE_COLUMNS = ['balance', 'max_spend_day', 'max_spend_month', 'max_calls_day', 'max_calls_month'] as const;
export type LiveColumn = (typeof LIVE_COLUMNS)[number];

/**
 * What a reader could make of a live cell: NULL (no limit), a value, junk (or a value the snapshot
 * refuses, a negative cap), or a doubtful value (a cap of 0: domain/caps.ts).
 */
export type LiveRead<T> =
  | { readonly kind: 'null' }
  | { readonly kind: 'ok'; readonly value: T }
  | { readonly kind: 'unreadable' }
  | { readonly kind: 'doubtful'; readonly value: T };

const NULL: LiveRead<never> = { kind: 'null' };
const UNREADABLE: LiveRead<never> = { kind: 'unreadable' };

/** A balance: NULL is postpaid; a blank cell is junk (a cleared balance is not "postpaid"). Negative is a real balance. */
export function readLiveBalance(value: unknown): LiveRead<Money> {
  if (value === null || value === undefined) return NULL;
  try {
    return { kind: 'ok', value: parseColumnMoney(value) };
  } catch {
    return UNREADABLE;
  }
}

/**
 * A spend cap as the snapshot takes it (domain/caps.ts, the one reading): NULL or blank is no cap;
 * below 0 ('-1' for "no cap") is refused, as junk is (never a headroom below zero that would cut
 * each call as it is answered); 0 is doubtful.
 */
export function readLiveCap(value: unknown): LiveRead<Money> {
  if (isBlank(value)) return NULL;
  return asCap(readLiveBalance(value));
}

/** A whole-number cap (max_calls_day …), by the same rule as readLiveCap. */
export function readLiveCount(value: unknown): LiveRead<number> {
  return asCap(wholeNumber(value));
}

function asCap<T extends number>(read: LiveRead<T>): LiveRead<T> {
  if (read.kind !== 'ok') return read;
  const verdict = capVerdict(read.value);
  return verdict === 'negative' ? UNREADABLE : verdict === 'zero' ? { kind: 'doubtful', value: read.value } : read;
}

/** A whole number (NULL or blank: null); a negative one is null too (not a count the daemon writes). */
export function liveIntOrNull(value: unknown): LiveRead<number> {
  const read = wholeNumber(value);
  return read.kind === 'ok' && read.value < 0 ? NULL : read;
}

/** A whole number as it is (NULL or blank: null). */
function wholeNumber(value: unknown): LiveRead<number> {
  if (isBlank(value)) return NULL;
  const n = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) return UNREADABLE;
  return { kind: 'ok', value: n };
}

function isBlank(value: unknown): boolean {
  return value === null || value === undefined || (typeof value === 'string' && value.trim() === '');
}

/** What the reporter is told: never the value itself in a metric label (the log may show it). */
export interface UnreadableLiveValue {
  readonly tenantId: number;
  readonly column: LiveColumn;
  readonly value: unknown;
  /** The value used instead: the last good one, or null (limits nothing). */
  readonly used: number | null;
  /** The first read of this value for this tenant and column (the log says it once per edit). */
  readonly first: boolean;
}

/** Most tenant/column pairs remembered (bounded; an evicted one falls back to "limits nothing"). */
const MEMORY_MAX = 100_000;

/** The last good live values of this process, and where unreadable ones are reported. */
export class LiveValues {
  private readonly lastGood = new Map<string, number>();
  /** tenant/column → the unreadable value last reported (so that each edit is logged once). */
  private readonly reported = new Map<string, string>();
  private reporter: (u: UnreadableLiveValue) => void = () => undefined;
  private inForce: (tenantId: number) => InForceCaps | undefined = () => undefined;

  /** The daemon sets this (log + metric); tests read what was reported. */
  onUnreadable(reporter: (u: UnreadableLiveValue) => void): void {
    this.reporter = reporter;
  }

  /**
   * The tenants of the snapshot in force (the daemon sets it): a cap that is refused or doubtful
   * live (a negative one, 0, junk) is read as the cap the snapshot keeps for the tenant (its last
   * good version, or 0 as written), so the guards and the caps job limit by what admission does.
   */
  followSnapshot(tenants: (() => ReadonlyMap<number, InForceCaps>) | null): void {
    this.inForce = tenants === null ? () => undefined : (tenantId) => tenants().get(tenantId);
  }

  /** The value to use for a live read: the read value, or by the rule in the header; null = no limit. */
  resolve<T extends number>(tenantId: number, column: LiveColumn, value: unknown, read: LiveRead<T>): T | null {
    const key = `${tenantId}/${column}`;
    const kept = column === 'balance' ? undefined : this.inForce(tenantId)?.[CAP_FIELDS[column]];
    if (read.kind === 'doubtful') {
      // The snapshot's decision; else the last good value read (an edit into 0 keeps it); else
      // 0 as written, which then stands as the last good one (as the snapshot keeps the row).
      if (kept !== undefined) return kept as T | null;
      const last = this.lastGood.get(key);
      if (last !== undefined) return last as T;
      this.lastGood.set(key, read.value);
      this.reported.delete(key);
      return read.value;
    }
    if (read.kind === 'ok') {
      if (!this.lastGood.has(key) && this.lastGood.size >= MEMORY_MAX) this.lastGood.delete(this.lastGood.keys().next().value!);
      this.lastGood.set(key, read.value);
      this.reported.delete(key);
      return read.value;
    }
    if (read.kind === 'null') {
      this.lastGood.delete(key);
      this.reported.delete(key);
      return null;
    }
    const used = (kept !== undefined ? kept : this.lastGood.get(key) ?? null) as T | null;
    const shown = typeof value === 'string' ? value : String(value);
    const first = this.reported.get(key) !== shown;
    if (first) {
      if (this.reported.size >= MEMORY_MAX) this.reported.clear();
      this.reported.set(key, shown);
    }
    this.reporter({ tenantId, column, value, used, first });
    return used;
  }

  balance(tenantId: number, value: unknown): Money | null {
    return this.resolve(tenantId, 'balance', value, readLiveBalance(value));
  }

  cap(tenantId: number, column: 'max_spend_day' | 'max_spend_month', value: unknown): Money | null {
    return this.resolve(tenantId, column, value, readLiveCap(value));
  }

  count(tenantId: number, column: 'max_calls_day' | 'max_calls_month', value: unknown): number | null {
    return this.resolve(tenantId, column, value, readLiveCount(value));
  }
}

/** A snapshot tenant's caps (snapshot/types.ts Tenant). */
export interface InForceCaps {
  readonly maxCallsDay: number | null;
  readonly maxCallsMonth: number | null;
  readonly maxSpendDay: number | null;
  readonly maxSpendMonth: number | null;
}

const CAP_FIELDS: Readonly<Record<CapColumn, keyof InForceCaps>> = {
  max_calls_day: 'maxCallsDay',
  max_calls_month: 'maxCallsMonth',
  max_spend_day: 'maxSpendDay',
  max_spend_month: 'maxSpendMonth',
};

/** The process's live values (admission, spend guards, caps job). */
export const LIVE_VALUES = new LiveValues();
