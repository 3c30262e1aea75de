/**
 * The bookkeeping of one snapshot build: which version of each row is in force, and one finding
 * per row that is not (or not as edited). Pure; build.ts drives it table by table, parents first.
 *
 * The rules it implements (issue 10, "a DBA's typo never takes a hotline down"):
 * - A row whose current version fails (a bad value, or a reference that does not hold) keeps its
 *   last good version, the one in force at the previous build, when that version still passes.
 *   The finding says `last_good`. A row that was never valid is `skipped`.
 * - A row that fails only because a row it belongs to (its tenant, group, menu, schedule,
 *   extension) is not in force gets no finding of its own: it is counted in the parent's finding
 *   (`dependents`), so a skipped tenant with 10,000 blacklist rows is one finding, not 10,001.
 *   Rows naming a parent that does not exist at all are counted in one `missing` finding per parent.
 * - A deleted row is deleted: the last good version only stands in for a row that is still there.
 * - Rows whose current version equals their last good one are taken first, so for a unique key
 *   (an access number, an extension …) the row that was in force keeps it against a new edit;
 *   and when that row is edited too (a valid edit of its other columns), it still goes before a
 *   row edited into its key (uniqueClaims), whatever their ids.
 */
import { nationalNumber } from '../domain/access-number';
import { RowError, RowReader, showValue, type Row } from './rows';
import type { ConfigFinding, FindingStatus, RowsByTable } from './types';

/**
 * Rows a table validates between two pauses of the build (Ledger.table yields): a few
 * milliseconds of work at about 3 µs a row, so a reload of 10,000 tenants' configuration does not
 * hold the event loop for a third of a second (bench/PROFILE.md, release 18).
 */
export const ROWS_PER_STEP = 500;

/** Why a row cannot be in force as it is. */
export type Problem =
  /** The row's own fault: a value, or a reference to a row that does not exist or is another tenant's. */
  | { readonly kind: 'value'; readonly column: string | null; readonly value: unknown; readonly reason: string }
  /** It names a row (`table` `id`) that exists but is not in force, or a parent that does not exist. */
  | { readonly kind: 'needs'; readonly column: string; readonly table: string; readonly id: number }
  /**
   * A link the row can do without (a voicemail's box): a row edited into it keeps its last good
   * version like any other; otherwise the row stays in force with `drop()` applied to it, reported
   * `link_ignored`, never skipped.
   */
  | { readonly kind: 'ignore'; readonly column: string; readonly value: unknown; readonly reason: string; drop(): void }
  /**
   * A value the row can use as written but that likely says other than what was meant (a phone
   * number that lost its trunk 0, a slot 09:00-09:00): a row edited into it keeps its last good
   * version like any other; one that had it already, or has no earlier version, stays in force as
   * written, reported `doubtful`, never skipped (a row that worked before the check must not stop).
   */
  | { readonly kind: 'doubt'; readonly column: string; readonly value: unknown; readonly reason: string };

type MutableFinding = { -readonly [K in keyof ConfigFinding]: ConfigFinding[K] } & { dependents: Record<string, number> };

/** For findings: the tenant of a row of a table without tenant_id, through its parent's row. */
const PARENT_OF: Readonly<Record<string, { column: string; table: string }>> = {
  destinations: { column: 'group_id', table: 'destination_groups' },
  schedule_slots: { column: 'schedule_id', table: 'schedules' },
  ivr_options: { column: 'menu_id', table: 'ivr_menus' },
  extension_phones: { column: 'extension_id', table: 'extensions' },
};

const SINGULAR: Readonly<Record<string, string>> = {
  tenants: 'tenant', access_numbers: 'access number', destination_groups: 'destination group', destinations: 'destination',
  routing_rules: 'routing rule', prompts: 'prompt', schedules: 'schedule', schedule_slots: 'schedule slot', holidays: 'holiday',
  call_filters: 'call filter', rates: 'rate', ivr_menus: 'IVR menu', ivr_options: 'IVR option', extensions: 'extension',
  extension_phones: 'extension phone', click_to_call_widgets: 'click-to-call widget',
};

export function singular(table: string): string {
  return SINGULAR[table] ?? table;
}

/** The row's id as a key, or null when it is not a positive whole number. */
export function rowKey(row: Row): number | null {
  const id = typeof row.id === 'string' && /^\d+$/.test(row.id.trim()) ? Number(row.id) : row.id;
  return typeof id === 'number' && Number.isSafeInteger(id) && id > 0 ? id : null;
}

/** Same column values (timestamps aside: a cached row spells them differently than the driver). */
export function sameRow(a: Row, b: Row): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    if (k === 'created_at' || k === 'updated_at') continue;
    if (comparable(a[k]) !== comparable(b[k])) return false;
  }
  return true;
}

function comparable(v: unknown): unknown {
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'bigint') return String(v);
  if (v === undefined) return null;
  return v;
}

/** A row of a table being built: as read, its id, its last good version, whether it is unchanged since. */
interface Entry<T> {
  row: Row;
  id: number | null;
  last: Row | undefined;
  unchanged: boolean;
  /** The row as `read` gave it, and its unique key, when uniqueClaims read it already. */
  read: RowRead<T> | null;
  key?: string | null;
  /** Its last good version had the same key: it was in force with it. */
  holdsKey?: boolean;
}

type RowRead<T> = { ok: true; value: T | null } | { ok: false; problem: Problem & { kind: 'value' } };

/** A table's unique key: what it is of a row as read, and the columns it is made of. */
export interface UniqueKey<T> {
  key: (value: T) => string | null;
  /** A row whose last good version has these columns as they are now holds the same key: its last good version is not read again. */
  columns: readonly string[];
}

/**
 * The unique keys the edited rows contest, each with the row that has the right to it (key → its
 * id), so that a row edited into another row's key never takes it just because its id is lower:
 * - the row whose last good version has the key (it was in force with it), whatever it is now;
 * - else, of the rows whose current version has it, the one edited longest ago (updated_at), then
 *   the lower id: with no last good version to go by (a first load without a cache), a row that
 *   has held a number since last year keeps it against one typed into it this morning.
 * Keys only one row wants are not in the map. A row that claims a key another has the right to
 * is settled after that one (Ledger.table): it gets the key only if that one does not keep it.
 * Reads each edited row (kept in `read`, its key in `key`), and the last good version of one
 * whose key's columns changed.
 */
function* uniqueClaims<T>(edited: Array<Entry<T>>, readRow: (row: Row) => RowRead<T>, unique: UniqueKey<T>): Generator<void, Map<string, number>, undefined> {
  const keyOf = (r: RowRead<T>): string | null => (r.ok && r.value !== null ? unique.key(r.value) : null);
  const sameKeyColumns = (a: Row, b: Row): boolean => unique.columns.every((c) => comparable(a[c]) === comparable(b[c]));
  /** Keys a row's last good version had and its current one does not: key → that row. */
  const movedFrom = new Map<string, number>();
  /** The claimant with the best right so far to each key its current version has. */
  const best = new Map<string, Entry<T>>();
  const contested = new Set<string>();
  const better = (a: Entry<T>, b: Entry<T>): boolean => (a.holdsKey !== b.holdsKey ? a.holdsKey === true : editedMs(a.row) < editedMs(b.row));
  let n = 0;
  for (const entry of edited) {
    if (++n % ROWS_PER_STEP === 0) yield;
    entry.read = readRow(entry.row);
    if (entry.id === null) continue;
    const key = (entry.key = keyOf(entry.read));
    const held = !entry.last ? null : sameKeyColumns(entry.last, entry.row) && key !== null ? key : keyOf(readRow(entry.last));
    if (held !== null && held === key) entry.holdsKey = true;
    else if (held !== null) movedFrom.set(held, entry.id);
    if (key === null) continue;
    const other = best.get(key);
    if (!other) {
      best.set(key, entry);
    } else {
      contested.add(key);
      if (better(entry, other)) best.set(key, entry);
    }
  }
  // A key its holder left that another row now claims: the holder settles first (it may keep it
  // on its last good version, should its edit fail).
  for (const key of movedFrom.keys()) if (best.has(key)) contested.add(key);
  const claims = new Map<string, number>();
  for (const key of contested) claims.set(key, movedFrom.get(key) ?? best.get(key)!.id!);
  return claims;
}

/** updated_at in ms for comparing rows of one read (the driver's Date, or SQLite's UTC text); unreadable: never the oldest. */
function editedMs(row: Row): number {
  const v = row.updated_at;
  const ms = v instanceof Date ? v.getTime() : typeof v === 'string' ? Date.parse(/^\d{4}-\d{2}-\d{2} /.test(v) ? `${v.replace(' ', 'T')}Z` : v) : typeof v === 'number' ? v : NaN;
  return Number.isNaN(ms) ? Infinity : ms;
}

export class Ledger {
  private readonly findings: MutableFinding[] = [];
  private readonly kept = new Map<string, Map<number, Row>>();
  /** "table:id" of a row that is not in force → the finding it is reported in (its own or its parent's). */
  private readonly causes = new Map<string, MutableFinding>();
  private readonly missing = new Map<string, MutableFinding>();
  private readonly tenantIndex = new Map<string, Map<number, number>>();
  private readonly ids = new Map<string, Set<number>>();
  readonly numbersNotInForce = new Map<string, ConfigFinding>();

  constructor(
    private readonly raw: Readonly<Record<string, readonly Row[] | undefined>>,
    private readonly lastGood: RowsByTable,
  ) {}

  /**
   * Validates every row of `table`: `read` its columns (throws RowError; null = a disabled row,
   * kept but not used), `check` its references against what is in force so far, then `accept`
   * it into the caller's maps. See the header for what happens to a row that fails.
   */
  *table<T>(
    table: string,
    read: (r: RowReader, row: Row) => T | null,
    check: (value: T) => Problem | null,
    accept: (value: T) => void,
    /** A table with a unique key (an access number, a menu's key …): see uniqueClaims. */
    unique?: UniqueKey<T>,
  ): Generator<void, void, undefined> {
    const previous = this.lastGood.get(table);
    // Unchanged rows first, then the others, each by id (the order the header explains). Compared
    // a step at a time, and sorted only when the rows did not come in id order (the store reads
    // them so): at 10,000 tenants' 40,000 rates the comparison and the sort of a whole table were
    // one step of 22-46 ms (bench/PROFILE.md, releases 18 and 30).
    const same: Array<Entry<T>> = [];
    const edited: Array<Entry<T>> = [];
    let compared = 0;
    for (const row of this.raw[table] ?? []) {
      if (++compared % ROWS_PER_STEP === 0) yield;
      const id = rowKey(row);
      const last = id === null ? undefined : previous?.get(id);
      const unchanged = last !== undefined && sameRow(last, row);
      (unchanged ? same : edited).push({ row, id, last, unchanged, read: null });
    }
    const byId = (a: Entry<T>, b: Entry<T>): number => (a.id ?? Infinity) - (b.id ?? Infinity);
    const inIdOrder = (list: ReadonlyArray<Entry<T>>): boolean => list.every((e, i) => i === 0 || byId(list[i - 1], e) <= 0 || (list[i - 1].id === null && e.id === null));
    for (const list of [same, edited]) if (!inIdOrder(list)) list.sort(byId);
    const readRow = (row: Row): RowRead<T> => {
      try {
        return { ok: true, value: read(new RowReader(row), row) };
      } catch (err) {
        if (!(err instanceof RowError)) throw err;
        return { ok: false, problem: { kind: 'value', column: err.column, value: err.value, reason: err.message } };
      }
    };
    type Usable = Problem & { kind: 'ignore' | 'doubt' };
    type Attempt = { ok: true; value: T | null; usable?: undefined } | { ok: true; value: T; usable: Usable } | { ok: false; problem: Problem };
    const attempt = (row: Row, pre?: RowRead<T> | null): Attempt => {
      const r = pre ?? readRow(row);
      if (!r.ok || r.value === null) return r;
      const problem = check(r.value);
      if (!problem) return { ok: true, value: r.value };
      return problem.kind === 'ignore' || problem.kind === 'doubt' ? { ok: true, value: r.value, usable: problem } : { ok: false, problem };
    };
    const sameDoubt = (a: Usable | undefined, b: Usable | undefined): boolean =>
      a?.kind === 'doubt' && b?.kind === 'doubt' && a.column === b.column && comparable(a.value) === comparable(b.value);
    const settle = ({ row, id, last, unchanged, read: pre }: Entry<T>): void => {
      const current = attempt(row, pre);
      if (current.ok && !current.usable) {
        this.keep(table, id, row);
        if (current.value !== null) accept(current.value);
        return;
      }
      if (last && !unchanged) {
        const fallback = attempt(last);
        // The last good version stands in when it holds (a doubtful value of its own is reported
        // again), unless the edit did not bring the doubt (a new label beside a number that was
        // already doubtful): such an edit is not undone.
        if (fallback.ok && fallback.usable?.kind !== 'ignore' && !(current.ok && sameDoubt(current.usable, fallback.usable))) {
          this.report(table, row, current.ok ? current.usable : current.problem, 'last_good', last);
          this.keep(table, id, last);
          if (fallback.usable) this.report(table, last, fallback.usable, 'doubtful');
          if (fallback.value !== null) accept(fallback.value);
          return;
        }
      }
      if (current.ok && current.usable) {
        this.keep(table, id, row);
        if (current.usable.kind === 'ignore') {
          this.report(table, row, current.usable, 'link_ignored');
          current.usable.drop();
        } else {
          this.report(table, row, current.usable, 'doubtful');
        }
        accept(current.value);
        return;
      }
      if (!current.ok) this.drop(table, row, id, current.problem);
    };
    let validated = 0;
    // A pause for a build that lets the event loop run (build.ts buildSnapshotYielding).
    for (const entry of same) {
      if (++validated % ROWS_PER_STEP === 0) yield;
      settle(entry);
    }
    const claims = unique && edited.length > 0 ? yield* uniqueClaims(edited, readRow, unique) : null;
    const contested = claims !== null && claims.size > 0;
    // A row waiting for the row with the right to its key settles right after that one, and
    // releases in turn the rows waiting for it (a chain: 1 typed into 2's key, 2 into 3's).
    const settled = new Set<number>();
    // Of the rows released by one row, one with the right to a contested key of its own (the other
    // half of a swap) first, then the one edited longest ago, then the lower id.
    const rightful = new Set(claims?.values());
    const first = (e: Entry<T>): number => (e.id !== null && rightful.has(e.id) ? 0 : 1);
    const rightOrder = (a: Entry<T>, b: Entry<T>): number => first(a) - first(b) || editedMs(a.row) - editedMs(b.row) || byId(a, b);
    const waiting = new Map<number, Array<Entry<T>>>();
    const ready: Array<Entry<T>> = [];
    const settleWithWaiters = function* (entry: Entry<T>): Generator<void, void, undefined> {
      ready.push(entry);
      for (let next = ready.pop(); next !== undefined; next = ready.pop()) {
        // In a cycle a row can be released after it was settled from the leftovers below.
        if (contested && next.id !== null && settled.has(next.id)) continue;
        if (++validated % ROWS_PER_STEP === 0) yield;
        settle(next);
        if (!contested || next.id === null) continue;
        settled.add(next.id);
        const released = waiting.get(next.id);
        if (released) {
          waiting.delete(next.id);
          // ready is a stack: the best right goes on last.
          released.sort((a, b) => rightOrder(b, a));
          ready.push(...released);
        }
      }
    };
    for (const entry of edited) {
      if (contested) {
        const rightful = entry.key === undefined || entry.key === null ? undefined : claims.get(entry.key);
        if (rightful !== undefined && rightful !== entry.id && !settled.has(rightful)) {
          let list = waiting.get(rightful);
          if (!list) waiting.set(rightful, (list = []));
          list.push(entry);
          continue;
        }
      }
      yield* settleWithWaiters(entry);
    }
    // What still waits is a cycle (two rows typed into each other's keys): by id, each releasing its waiters.
    // Broken at the lowest id among the rows others wait for (each one waits itself): a row that
    // only waits (a typo into a swapped key) is never settled before the row it waits for.
    const byEntryId = new Map(edited.filter((e) => e.id !== null).map((e) => [e.id!, e]));
    while (waiting.size > 0) {
      let lowest = Infinity;
      for (const id of waiting.keys()) if (id < lowest) lowest = id;
      yield* settleWithWaiters(byEntryId.get(lowest)!);
    }
  }

  /** A parent the row belongs to (tenant_id, group_id …): fine when in force, else a `needs` problem. */
  owner(column: string, table: string, id: number, inForce: boolean): Problem | null {
    return inForce ? null : { kind: 'needs', column, table, id };
  }

  /**
   * A reference to another row (a rule's target_id, access_number_id …): fine when `ok`; when the
   * row exists but is not in force, a `needs` problem; otherwise the row's own fault, `reason`.
   */
  ref(column: string, table: string, id: number | null, ok: boolean, reason: string): Problem | null {
    if (ok) return null;
    if (id !== null && this.causes.has(`${table}:${id}`)) return { kind: 'needs', column, table, id };
    // A row that is not there at all (deleted under the rows naming it, or a typed id): said, so
    // that the finding points at the delete, not only at the row that still names it.
    if (id !== null && !this.idsOf(table).has(id)) return { kind: 'value', column, value: id, reason: `${reason}: ${singular(table)} ${id} does not exist (deleted, or never written)` };
    return { kind: 'value', column, value: id, reason };
  }

  /** The last good version of a row in force as edited, when there is one that differs. */
  lastGoodOf(table: string, id: number): Row | undefined {
    const last = this.lastGood.get(table)?.get(id);
    const current = this.kept.get(table)?.get(id);
    return last && current && !sameRow(last, current) ? last : undefined;
  }

  /** Puts a row's last good version in force instead of its current one (a link that does not hold). */
  useLastGood(table: string, id: number, last: Row, problem: Problem): void {
    const current = this.kept.get(table)?.get(id);
    if (current) this.report(table, current, problem, 'last_good', last);
    this.keep(table, id, last);
  }

  /** The row stays in force without one of its links. */
  linkIgnored(table: string, id: number, column: string, value: unknown, reason: string): void {
    const row = this.kept.get(table)?.get(id) ?? { id };
    this.report(table, row, { kind: 'value', column, value, reason }, 'link_ignored');
  }

  /** The row stays in force as written, though `column` likely says other than what was meant. */
  doubtful(table: string, id: number | null, column: string | null, value: unknown, reason: string): void {
    const row = (id === null ? undefined : this.kept.get(table)?.get(id)) ?? { id };
    this.report(table, row, { kind: 'value', column, value, reason }, 'doubtful');
  }

  /** The findings in table order (as `order` lists the tables), then id; and the rows in force. */
  result(order: readonly string[]): { findings: ConfigFinding[]; lastGood: RowsByTable } {
    const rank = (t: string): number => (order.includes(t) ? order.indexOf(t) : order.length);
    const idOf = (f: ConfigFinding): number => (typeof f.id === 'number' ? f.id : Infinity);
    const findings = [...this.findings].sort((a, b) => rank(a.table) - rank(b.table) || idOf(a) - idOf(b));
    return { findings, lastGood: this.kept };
  }

  private keep(table: string, id: number | null, row: Row): void {
    if (id === null) return;
    let rows = this.kept.get(table);
    if (!rows) this.kept.set(table, (rows = new Map<number, Row>()));
    rows.set(id, row);
  }

  private drop(table: string, row: Row, id: number | null, problem: Problem): void {
    const cause = problem.kind === 'needs' ? this.causeOf(problem.table, problem.id) : undefined;
    let finding: MutableFinding;
    if (cause) {
      cause.dependents[table] = (cause.dependents[table] ?? 0) + 1;
      finding = cause;
    } else {
      finding = this.report(table, row, problem, 'skipped');
    }
    if (id !== null) this.causes.set(`${table}:${id}`, finding);
    const number = row.number;
    const key = table === 'access_numbers' && (typeof number === 'string' || typeof number === 'number' || typeof number === 'bigint') ? nationalNumber(String(number)) : null;
    if (key !== null) this.numbersNotInForce.set(key, finding);
  }

  /** The finding a row not in force is reported in, or (a parent that is not there at all) a `missing` one. */
  private causeOf(table: string, id: number): MutableFinding | undefined {
    const known = this.causes.get(`${table}:${id}`);
    if (known) return known;
    if (this.idsOf(table).has(id)) return undefined;
    const key = `${table}:${id}`;
    let finding = this.missing.get(key);
    if (!finding) {
      finding = {
        table, id, status: 'missing', tenantId: table === 'tenants' ? id : null, column: null, value: null,
        reason: `${singular(table)} ${id} does not exist`, dependents: {}, editedAt: null,
      };
      this.missing.set(key, finding);
      this.findings.push(finding);
    }
    return finding;
  }

  /** The ids present in a raw table (in force or not). */
  private idsOf(table: string): Set<number> {
    let ids = this.ids.get(table);
    if (!ids) {
      ids = new Set();
      for (const r of this.raw[table] ?? []) {
        const id = rowKey(r);
        if (id !== null) ids.add(id);
      }
      this.ids.set(table, ids);
    }
    return ids;
  }

  /** A finding about `row`; its tenant from `fallback` (the last good version) when the row does not tell. */
  private report(table: string, row: Row, problem: Problem, status: FindingStatus, fallback?: Row): MutableFinding {
    const finding: MutableFinding = {
      table,
      id: typeof row.id === 'number' || typeof row.id === 'string' ? row.id : null,
      status,
      tenantId: this.tenantOf(table, row) ?? (fallback ? this.tenantOf(table, fallback) : null),
      column: problem.column,
      value: problem.column === null ? null : showValue(problem.column, problem.kind === 'needs' ? problem.id : problem.value),
      reason: problem.kind !== 'needs'
        ? problem.reason
        : `${problem.column} ${problem.id}: ${singular(problem.table)} ${problem.id} ${this.idsOf(problem.table).has(problem.id) ? 'is not in force' : 'does not exist'}`,
      dependents: {},
      editedAt: editedAt(row),
    };
    this.findings.push(finding);
    return finding;
  }

  private tenantOf(table: string, row: Row): number | null {
    if (table === 'tenants') return rowKey(row);
    const parent = PARENT_OF[table];
    if (!parent) return positive(row.tenant_id);
    const parentId = positive(row[parent.column]);
    if (parentId === null) return null;
    let index = this.tenantIndex.get(parent.table);
    if (!index) {
      index = new Map();
      for (const r of this.raw[parent.table] ?? []) {
        const id = rowKey(r);
        const tenant = positive(r.tenant_id);
        if (id !== null && tenant !== null) index.set(id, tenant);
      }
      this.tenantIndex.set(parent.table, index);
    }
    return index.get(parentId) ?? null;
  }
}

function positive(v: unknown): number | null {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : null;
}

function editedAt(row: Row): string | null {
  const v = row.updated_at;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  return typeof v === 'string' ? v : typeof v === 'number' ? new Date(v).toISOString() : null;
}
