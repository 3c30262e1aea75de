/**
 * Keeps AnsweredCallers up to date from `cdrs`, whoever wrote the rows (this daemon, its cluster
 * workers, other nodes, a replayed spool): one load of the hours it covers at start, then a read
 * of the new rows every `pollMs`. Caller memory trusts the filters' "nobody answered" only while
 * the feed is current (loaded, and its last read succeeded within `staleAfterMs`); otherwise every
 * lookup asks the database, as without the filters.
 *
 * Completeness, which a "nobody" rests on:
 *  - The load takes every answered row from the lowest id among rows that started at most
 *    `hours` + ANSWER_MARGIN_MS ago. A row answered within the hours and not among them started
 *    more than a day before it was answered: no call rings or queues that long.
 *  - New rows are read by id, above the highest id read. Ids are handed out as rows are inserted
 *    and become visible when their transaction commits, so a batch that commits after a later
 *    one can appear below the highest id already read: in a hole, a run of ids the reads skipped.
 *    Each hole is remembered with the time it was seen, and every `recheckMs` the answered rows
 *    in the holes are read (only those rows: a hole holds no row already read); a hole is
 *    forgotten once a look-back that began `lookbackMs` after it was seen has read it, so a
 *    database that was down meanwhile leaves it open. A row whose transaction took longer than
 *    that to commit is the one the filters can miss: a CDR batch's transaction that stayed open
 *    over 120 s. Holes that never fill (ids burnt by a rollback or a duplicate, Galera's
 *    auto_increment_increment) cost a range each until they are forgotten; past `holesPerRead`
 *    the holes one read found are merged with their neighbours, which reads some rows again and
 *    misses none (with one hole a row, as under Galera, the look-back reads every answered row of
 *    the last 120 s, a page at a time). The load treats the newest `loadTailIds` ids as a hole:
 *    a transaction open while it read, with more rows inserted after it than that, is missed.
 *  - Between reads the filters lag the table by up to `pollMs` (and a late commit by up to
 *    `recheckMs`). Caller memory already lags the calls themselves: a CDR reaches the table when
 *    its batch is written, after the call ended.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { dbKind, fromDbTimestamp, rawRows, toDbTimestamp } from '../db/connect';
import { AnsweredCallers } from './answered-callers';

export interface AnsweredCallersFeedOptions {
  /** Hours the filters cover (CALLER_MEMORY_INDEX_HOURS); lookups with a longer window ask the database. */
  hours: number;
  bitsPerHour: number;
  /** How often new rows are read. */
  pollMs: number;
  /** A read older than this and the filters are not trusted. Default 3 × pollMs + 1 s. */
  staleAfterMs?: number;
  /** How long after a hole is seen its rows are still read again (a late commit). Default 120 s. */
  lookbackMs?: number;
  /** How often the holes are read. Default 10 s. */
  recheckMs?: number;
  /**
   * Rows a statement reads at most. Default 2,000: the rows of one statement are added to the
   * filters in one stretch of the event loop that calls wait behind. Loading a million-row
   * `cdrs` (`npm run bench:caller-index`), 2,000 against 5,000 made the loop's p99 stall 3.1-3.3
   * against 4.5 ms and took as long (1.8-1.9 s).
   */
  pageRows?: number;
  /** Holes one read keeps at most (its neighbours merged beyond). Default 8. */
  holesPerRead?: number;
  /** Ids at the top of the table the load treats as a hole (transactions still open as it read). Default 20,000. */
  loadTailIds?: number;
}

/** Ids the reads skipped, [lo, hi], and when the hole was seen. */
interface Hole {
  lo: number;
  hi: number;
  seenAt: number;
}

/** Holes one look-back statement reads. */
const HOLES_A_STATEMENT = 100;

/** The lowest id among rows that started from a moment on: a range of the index on started_at. */
export const ANCHOR = 'SELECT MIN(id) AS anchor FROM cdrs WHERE started_at >= ?';
/**
 * SQLite's planner, without ANALYZE statistics, takes MIN(id) for a walk up the rowids from the
 * oldest row until one started late enough: every older row, on the event loop (159 ms on a
 * 100,000-row scratch table). `+id` is no longer the bare rowid, so it uses the covering index on
 * started_at instead (0.08 ms).
 */
export const ANCHOR_SQLITE = 'SELECT MIN(+id) AS anchor FROM cdrs WHERE started_at >= ?';

/** A call is answered within a day of arriving (rings, queues): the load's margin on started_at. */
export const ANSWER_MARGIN_MS = 24 * 3_600_000;

interface CdrKey {
  id: number | string;
  tenant_id: number | string | null;
  caller: string;
  answered_at: Date | string | null;
  answered_by: string | null;
}

export class AnsweredCallersFeed {
  readonly index: AnsweredCallers;
  private cursor = 0;
  /** Runs of ids the reads skipped, by id. */
  private holes: Hole[] = [];
  private loaded = false;
  private lastReadAt = Number.NEGATIVE_INFINITY;
  /** When start() was called: the read age counts from it until the first load is done. */
  private startedAt: number | null = null;
  private lastRecheckAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private failing = false;
  private readonly staleAfterMs: number;
  private readonly lookbackMs: number;
  private readonly recheckMs: number;
  private readonly pageRows: number;
  private readonly holesPerRead: number;
  private readonly loadTailIds: number;
  /** Reads made and rows added, for tests. */
  readonly stats = { reads: 0, rows: 0, rechecks: 0, failures: 0 };
  /** Answered rows within the hours that the last load added (its re-read of the newest ids not counted twice). */
  loadedRows = 0;

  constructor(
    private readonly knex: Knex,
    private readonly options: AnsweredCallersFeedOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.index = new AnsweredCallers({ hours: options.hours, bitsPerHour: options.bitsPerHour });
    this.staleAfterMs = options.staleAfterMs ?? 3 * options.pollMs + 1000;
    this.lookbackMs = options.lookbackMs ?? 120_000;
    this.recheckMs = options.recheckMs ?? 10_000;
    this.pageRows = options.pageRows ?? 2000;
    this.holesPerRead = Math.max(1, options.holesPerRead ?? 8);
    this.loadTailIds = Math.max(1, options.loadTailIds ?? 20_000);
  }

  /** Starts the load and the reads after it; never rejects (a failed read is tried again). */
  start(): void {
    this.stopped = false;
    if (!this.loaded) this.startedAt = this.now();
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** The filters may be trusted now. */
  current(): boolean {
    return this.loaded && this.now() - this.lastReadAt <= this.staleAfterMs;
  }

  /**
   * Milliseconds the filters have gone without a complete read of `cdrs`: since the last read
   * that succeeded, or since start() while the first load is not done; null before start() and
   * after stop() (a daemon draining its calls has stopped reading on purpose). Above
   * `staleAfterMs` they are not trusted (current()).
   */
  readAgeMs(): number | null {
    if (this.stopped) return null;
    if (this.loaded) return Math.max(0, this.now() - this.lastReadAt);
    return this.startedAt === null ? null : Math.max(0, this.now() - this.startedAt);
  }

  /** True only when, as far as the table was read, no phone of the tenant answered the caller since `since`. */
  answeredNone(tenantId: number, caller: string, since: Date): boolean {
    return this.current() && this.index.answeredNone(tenantId, caller, since.getTime(), this.now());
  }

  /**
   * A CDR this daemon spooled: in the filters at once, before its batch reaches the table (the
   * caller who calls straight back is the one caller memory is for). The read adds it again.
   */
  noteCdr(cdr: Pick<CdrKey, 'tenant_id' | 'caller' | 'answered_at' | 'answered_by'>): void {
    this.add(cdr);
  }

  /** One load or read now (tests); resolves when it is done. */
  async readNow(): Promise<void> {
    await this.running;
    this.running = this.step();
    await this.running;
  }

  private tick(): void {
    if (this.stopped) return;
    this.running = this.step().finally(() => {
      // Unref'd: the feed never keeps the process alive (stop() ends it on shutdown).
      if (!this.stopped) this.timer = setTimeout(() => this.tick(), this.options.pollMs).unref();
    });
  }

  private async step(): Promise<void> {
    try {
      if (!this.loaded) await this.load();
      else await this.follow();
      if (this.failing) this.log.info('answered-callers feed reads cdrs again');
      this.failing = false;
    } catch (err) {
      if (this.stopped) return; // stop() ended it: nothing failed
      this.stats.failures++;
      if (!this.failing) this.log.warn({ err: (err as Error).message }, 'answered-callers feed cannot read cdrs; caller memory asks the database until it can');
      this.failing = true;
    }
  }

  private async load(): Promise<void> {
    const startedAt = this.now();
    const from = startedAt - this.options.hours * 3_600_000;
    const [{ max }] = await rawRows<{ max: number | string | null }>(this.knex, 'SELECT MAX(id) AS max FROM cdrs');
    const top = Number(max ?? 0);
    const [{ anchor }] = await rawRows<{ anchor: number | string | null }>(this.knex, dbKind(this.knex) === 'sqlite' ? ANCHOR_SQLITE : ANCHOR, [toDbTimestamp(new Date(from - ANSWER_MARGIN_MS))]);
    const rowsBefore = this.stats.rows;
    if (anchor !== null) await this.readAnswered([{ lo: Number(anchor), hi: top, seenAt: startedAt }]);
    const loadedRows = this.stats.rows - rowsBefore;
    this.cursor = top;
    // A transaction still open while the load read has its rows below `top`, among the newest
    // ids: the load's last `loadTailIds` ids are a hole, seen as the load ends.
    if (top > 0) this.holes = [{ lo: Math.max(1, top - this.loadTailIds + 1), hi: top, seenAt: this.now() }];
    this.lastRecheckAt = Number.NEGATIVE_INFINITY;
    await this.follow();
    this.index.coverFrom(from);
    this.loaded = true;
    this.loadedRows = loadedRows;
    this.log.info({ rows: loadedRows, ms: this.now() - startedAt, hours: this.options.hours }, 'answered-callers index loaded; caller memory answers first callers from memory');
  }

  private async follow(): Promise<void> {
    const readAt = this.now();
    const found: Hole[] = [];
    for (;;) {
      this.stopping();
      const rows = await rawRows<CdrKey>(this.knex, 'SELECT id, tenant_id, caller, answered_at, answered_by FROM cdrs WHERE id > ? ORDER BY id LIMIT ?', [this.cursor, this.pageRows]);
      this.stats.reads++;
      for (const row of rows) {
        const id = Number(row.id);
        if (id > this.cursor + 1) found.push({ lo: this.cursor + 1, hi: id - 1, seenAt: readAt });
        this.cursor = Math.max(this.cursor, id);
        this.add(row);
      }
      if (rows.length < this.pageRows) break;
    }
    // One read's holes were seen together: merging them widens none in time.
    this.holes.push(...mergeHoles(found, this.holesPerRead));
    if (readAt - this.lastRecheckAt >= this.recheckMs) {
      await this.readAnswered(this.holes);
      // Forgotten only once read by a look-back that began after it was `lookbackMs` old: a
      // database that was down meanwhile leaves them open until it answers again.
      this.holes = this.holes.filter((h) => h.seenAt + this.lookbackMs > readAt);
      this.stats.rechecks++;
      this.lastRecheckAt = readAt;
    }
    this.index.prune(readAt);
    this.lastReadAt = readAt;
  }

  /** Adds the answered rows with ids in the holes, a page at a time. */
  private async readAnswered(holes: readonly Hole[]): Promise<void> {
    for (let i = 0; i < holes.length; i += HOLES_A_STATEMENT) {
      const part = holes.slice(i, i + HOLES_A_STATEMENT);
      const ranges = part.map(() => 'id BETWEEN ? AND ?').join(' OR ');
      for (let after = 0; ;) {
        this.stopping();
        const rows = await rawRows<CdrKey>(
          this.knex,
          `SELECT id, tenant_id, caller, answered_at, answered_by FROM cdrs WHERE answered_by IS NOT NULL AND id > ? AND (${ranges}) ORDER BY id LIMIT ?`,
          [after, ...part.flatMap((h) => [h.lo, h.hi]), this.pageRows],
        );
        for (const row of rows) this.add(row);
        if (rows.length < this.pageRows) break;
        after = Number(rows[rows.length - 1].id);
      }
    }
  }

  /** Ends a load or a read that stop() interrupted (step() counts it as a failed read). */
  private stopping(): void {
    if (this.stopped) throw new Error('answered-callers feed stopped');
  }

  private add(row: Pick<CdrKey, 'tenant_id' | 'caller' | 'answered_at' | 'answered_by'>): void {
    if (row.answered_by === null || row.tenant_id === null) return;
    if (row.answered_at === null) return; // not answered, as lastAnsweredBy reads it
    let at: number;
    try {
      at = fromDbTimestamp(row.answered_at)?.getTime() ?? Number.NaN;
    } catch {
      at = Number.NaN;
    }
    const now = this.now();
    // An unreadable time (a zero date, say) is filed under now: "perhaps" for every window that
    // reaches it, so the lookups for that caller ask the database; never a wrong "nobody".
    if (!Number.isFinite(at)) at = now;
    // Rows the load's margin brings in from before the window: no filter for them.
    if (at < now - this.options.hours * 3_600_000 - 3_600_000) return;
    this.index.add(Number(row.tenant_id), String(row.caller), at);
    this.stats.rows++;
  }
}

/**
 * At most `max` holes, none lost: neighbours merged pairwise (a merged hole also covers the ids
 * read between them, read again at the look-back). Holes of one read only, so of one time.
 */
export function mergeHoles(holes: readonly Hole[], max: number): Hole[] {
  let out = [...holes].sort((a, b) => a.lo - b.lo);
  while (out.length > max) {
    const merged: Hole[] = [];
    for (let i = 0; i < out.length; i += 2) {
      const a = out[i];
      const b = out[i + 1];
      merged.push(b ? { lo: a.lo, hi: Math.max(a.hi, b.hi), seenAt: Math.max(a.seenAt, b.seenAt) } : a);
    }
    out = merged;
  }
  return out;
}
