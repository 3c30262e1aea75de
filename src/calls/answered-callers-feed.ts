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
 *    in the holes younger than `lookbackMs` are read (only those rows: a hole holds no row
 *    already read). A row whose transaction took longer than that to commit is the one the
 *    filters can miss (MariaDB gives up a lock wait after 50 s by default; the look-back is
 *    120 s). Holes that never fill (ids burnt by a rollback or a duplicate, Galera's
 *    auto_increment_increment) cost a range each until they expire; past `maxHoles` neighbours
 *    are merged, which reads some rows again and misses none.
 *  - Between reads the filters lag the table by up to `pollMs` (and a late commit by up to
 *    `recheckMs`). Caller memory already lags the calls themselves: a CDR reaches the table when
 *    its batch is written, after the call ended.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { fromDbTimestamp, rawRows, toDbTimestamp } from '../db/connect';
import { AnsweredCallers } from './answered-callers';

export interface AnsweredCallersFeedOptions {
  /** Hours the filters cover (CALLER_MEMORY_INDEX_HOURS); lookups with a longer window ask the database. */
  hours: number;
  bitsPerHour: number;
  /** How often new rows are read. */
  pollMs: number;
  /** A read older than this and the filters are not trusted. Default 3 × pollMs + 1 s. */
  staleAfterMs?: number;
  /** How far back (by the time a highest id was read) rows are read again. Default 120 s. */
  lookbackMs?: number;
  /** How often they are. Default 10 s. */
  recheckMs?: number;
  /** Rows a statement reads at most. Default 5,000. */
  pageRows?: number;
  /** Holes remembered at most (neighbours merged beyond). Default 1,000. */
  maxHoles?: number;
}

/** Ids the reads skipped, [lo, hi], and when the hole was seen. */
interface Hole {
  lo: number;
  hi: number;
  seenAt: number;
}

/** Holes one look-back statement reads. */
const HOLES_A_STATEMENT = 100;

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
  private lastRecheckAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private failing = false;
  private readonly staleAfterMs: number;
  private readonly lookbackMs: number;
  private readonly recheckMs: number;
  private readonly pageRows: number;
  private readonly maxHoles: number;
  /** Reads made and rows added, for tests. */
  readonly stats = { reads: 0, rows: 0, rechecks: 0, failures: 0 };

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
    this.pageRows = options.pageRows ?? 5000;
    this.maxHoles = Math.max(2, options.maxHoles ?? 1000);
  }

  /** Starts the load and the reads after it; never rejects (a failed read is tried again). */
  start(): void {
    this.stopped = false;
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
    const [{ anchor }] = await rawRows<{ anchor: number | string | null }>(this.knex, 'SELECT MIN(id) AS anchor FROM cdrs WHERE started_at >= ?', [toDbTimestamp(new Date(from - ANSWER_MARGIN_MS))]);
    if (anchor !== null) {
      let after = Number(anchor) - 1;
      for (;;) {
        const rows = await this.answeredRows(after, top);
        if (rows.length === 0) break;
        after = Number(rows[rows.length - 1].id);
        if (rows.length < this.pageRows) break;
      }
    }
    this.cursor = top;
    // A transaction still open while the load read has its rows below `top`, among the newest:
    // the load's last `pageRows` ids are a hole until the look-back has read them.
    if (top > 0) this.holes = [{ lo: Math.max(1, top - this.pageRows + 1), hi: top, seenAt: startedAt }];
    this.lastRecheckAt = startedAt - this.recheckMs;
    await this.follow();
    this.index.coverFrom(from);
    this.loaded = true;
  }

  private async follow(): Promise<void> {
    const readAt = this.now();
    for (;;) {
      const rows = await rawRows<CdrKey>(this.knex, 'SELECT id, tenant_id, caller, answered_at, answered_by FROM cdrs WHERE id > ? ORDER BY id LIMIT ?', [this.cursor, this.pageRows]);
      this.stats.reads++;
      for (const row of rows) {
        const id = Number(row.id);
        if (id > this.cursor + 1) this.holes.push({ lo: this.cursor + 1, hi: id - 1, seenAt: readAt });
        this.cursor = Math.max(this.cursor, id);
        this.add(row);
      }
      if (rows.length < this.pageRows) break;
    }
    if (this.holes.length > this.maxHoles) this.holes = mergeHoles(this.holes, this.maxHoles);
    if (readAt - this.lastRecheckAt >= this.recheckMs) {
      this.holes = this.holes.filter((h) => h.seenAt >= readAt - this.lookbackMs);
      for (let i = 0; i < this.holes.length; i += HOLES_A_STATEMENT) {
        const part = this.holes.slice(i, i + HOLES_A_STATEMENT);
        // A hole holds no row read before: what this finds committed late (or is found again).
        const rows = await rawRows<CdrKey>(
          this.knex,
          `SELECT id, tenant_id, caller, answered_at, answered_by FROM cdrs WHERE answered_by IS NOT NULL AND (${part.map(() => 'id BETWEEN ? AND ?').join(' OR ')})`,
          part.flatMap((h) => [h.lo, h.hi]),
        );
        for (const row of rows) this.add(row);
      }
      this.stats.rechecks++;
      this.lastRecheckAt = readAt;
    }
    this.index.prune(readAt);
    this.lastReadAt = readAt;
  }

  /** The answered rows with ids in (after, upTo], oldest first, a page at most; each added. */
  private async answeredRows(after: number, upTo: number): Promise<CdrKey[]> {
    const rows = await rawRows<CdrKey>(
      this.knex,
      'SELECT id, tenant_id, caller, answered_at, answered_by FROM cdrs WHERE id > ? AND id <= ? AND answered_by IS NOT NULL ORDER BY id LIMIT ?',
      [after, upTo, this.pageRows],
    );
    for (const row of rows) this.add(row);
    return rows;
  }

  private add(row: Pick<CdrKey, 'tenant_id' | 'caller' | 'answered_at' | 'answered_by'>): void {
    if (row.answered_by === null || row.tenant_id === null) return;
    const answered = fromDbTimestamp(row.answered_at);
    if (answered === null) return;
    this.index.add(Number(row.tenant_id), row.caller, answered.getTime());
    this.stats.rows++;
  }
}

/**
 * Fewer holes, none lost: neighbours merged pairwise (each merged hole also covers the ids read
 * between them, read again at the look-back) until at most `max` remain; a merged hole lives as
 * long as its younger part.
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
