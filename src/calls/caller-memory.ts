/**
 * Caller memory (主叫记忆) lookups, batched: the phone that last answered each caller within its
 * tenant's window, for many calls in one statement (on SQLite, a few: batchQuery).
 *
 * Every hunt of a tenant with caller memory asks the database once, before its greeting plays.
 * One statement per call was the daemon's largest per-call cost under load (bench/PROFILE.md: the
 * mysql2 write, knex's query building and the pool, about a fifth of the daemon's CPU). Lookups
 * made in the same turn of the event loop (calls that reached the same point in the same read of
 * the sockets) leave as one `UNION ALL` of the same indexed `ORDER BY answered_at DESC LIMIT 1`
 * query `lastAnsweredBy` (call-state.ts) runs alone; while `maxInFlight` batches are out, new
 * lookups wait and leave together when one returns (group commit). An idle daemon sends one
 * lookup at once, as before. Each lookup is bounded from the moment it is asked (`timeoutMs`, the
 * call's CALL_DB_TIMEOUT_MS); one whose call stopped waiting is not sent, and on MariaDB a
 * statement still running when all its lookups gave up is cancelled.
 *
 * On an SQLite file none of that: each lookup is one statement on the daemon's own read-only
 * connection (db/sqlite-reader.ts), run as it is asked (lookupNow).
 *
 * The answer for each lookup is exactly `lastAnsweredBy(knex, tenantId, caller, since)`:
 * test/calls/caller-memory.test.ts compares the two on SQLite and MariaDB.
 */
import type { Knex } from 'knex';
import { dbKind, rawRows, toDbTimestamp } from '../db/connect';
import type { SqliteReader } from '../db/sqlite-reader';
import { itemsThatStayCompiled, repeatableChunks } from '../db/sqlite-statements';

export type CallerMemoryLookup = (tenantId: number, caller: string, since: Date) => Promise<string | null>;

interface Waiter {
  tenantId: number;
  caller: string;
  since: string;
  /** performance.now() after which nobody waits for the answer any more (the call's own bound). */
  deadline: number;
  resolve(phone: string | null): void;
  reject(err: Error): void;
}

export interface CallerMemoryOptions {
  /** A lookup's bound, from the moment it is asked: queueing counts (the call waits that long at most). */
  timeoutMs: number;
  /** Lookups in one batch at most. */
  maxBatch?: number;
  /** Batches out at once (1); more lookups wait for one to return. */
  maxInFlight?: number;
  /** Lookups waiting at most; beyond, a lookup fails at once (a database that stopped answering). */
  maxQueued?: number;
  /**
   * On an SQLite file, the daemon's read-only connection (db/sqlite-reader.ts): the statements run
   * on it, synchronously, instead of through knex. Without it, through knex (as on MariaDB).
   */
  reader?: SqliteReader | null;
}

/** Lookups in one batch unless told otherwise. */
const DEFAULT_MAX_BATCH = 64;

export class CallerMemoryTimeout extends Error {
  override readonly name = 'CallerMemoryTimeout';
  readonly code = 'CALLER_MEMORY_TIMEOUT';
  constructor(reason: string) {
    super(`caller memory: ${reason}`);
  }
}

export class CallerMemory {
  private queue: Waiter[] = [];
  private inFlight = 0;
  private flushScheduled = false;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  /** Batches sent (one statement each, on SQLite a few) and lookups answered, for tests (batching factor). */
  readonly stats = { batches: 0, lookups: 0, expired: 0, cancelled: 0 };
  /**
   * A lookup is answered within the turn of the event loop it is asked in: better-sqlite3 runs a
   * statement synchronously, on the reader as it is asked, through knex by the immediate that sends
   * its batch. MariaDB answers over the network.
   */
  readonly answersInTurn: boolean;

  constructor(
    private readonly knex: Knex,
    private readonly options: CallerMemoryOptions,
  ) {
    this.answersInTurn = dbKind(knex) === 'sqlite';
    this.maxBatch = Math.max(1, options.maxBatch ?? DEFAULT_MAX_BATCH);
    // One: a hunt after a greeting asks before it plays (run-action.ts), so waiting for the
    // statement out is heard by nobody, and the bigger batches cut the statements a call from 0.35
    // to 0.22 and mariadbd's CPU a call by 14 % (bench/PROFILE.md). A hunt with no greeting left
    // (after a PIN, a menu) waits at most one statement more.
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.maxQueued = Math.max(1, options.maxQueued ?? 10_000);
  }

  /**
   * The phone that last answered `caller` at `tenantId` since `since`, or null. Through knex it
   * rejects with CallerMemoryTimeout after `timeoutMs` (the call hunts in the normal order), or
   * with the database's error; on the reader it is answered at once, or rejects with SQLite's.
   */
  readonly lookup: CallerMemoryLookup = (tenantId, caller, since) =>
    this.options.reader ? this.lookupNow(this.options.reader, tenantId, caller, since) : this.queued(tenantId, caller, since);

  /**
   * On the daemon's own SQLite connection: answered now, one statement. Nothing to batch for: a
   * statement run directly costs what knex's query machinery alone did (7 against 25-29 µs), and
   * an answer in the tick it is asked in puts no turn of the loop between the greeting's write and
   * the first bridge's.
   */
  private lookupNow(reader: SqliteReader, tenantId: number, caller: string, since: Date): Promise<string | null> {
    try {
      const rows = reader.all<MemberRow>(ONE_LOOKUP, bindingsOf([{ tenantId, caller, since: toDbTimestamp(since) }], 0));
      this.stats.batches++;
      this.stats.lookups++;
      return Promise.resolve(rows.length > 0 ? String(rows[0].answered_by) : null);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private queued(tenantId: number, caller: string, since: Date): Promise<string | null> {
    return new Promise<string | null>((resolve, reject) => {
      if (this.queue.length >= this.maxQueued) {
        reject(new CallerMemoryTimeout(`${this.queue.length} lookups already waiting for the database`));
        return;
      }
      const { timeoutMs } = this.options;
      let settled = false;
      const timer = setTimeout(() => settle(() => reject(new CallerMemoryTimeout(`no answer within ${timeoutMs} ms`))), timeoutMs);
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      this.queue.push({
        tenantId, caller, since: toDbTimestamp(since), deadline: performance.now() + timeoutMs,
        resolve: (phone) => settle(() => resolve(phone)),
        reject: (err) => settle(() => reject(err)),
      });
      this.schedule();
    });
  }

  /** After the I/O callbacks of this turn of the loop: every lookup they made leaves together. */
  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    // Lookups whose call stopped waiting (timed out in the queue) are not sent.
    const now = performance.now();
    const live = this.queue.filter((w) => w.deadline > now);
    this.stats.expired += this.queue.length - live.length;
    this.queue = live;
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.queue.splice(0, this.maxBatch);
      // The slot is held until the statement settles: a database that stopped answering holds
      // maxInFlight connections, not one more per timeout. On MariaDB a statement still running
      // when the last of its lookups gave up is cancelled (KILL QUERY), so a table lock or a
      // metadata-lock wait frees the slot after CALL_DB_TIMEOUT_MS, not when the lock ends.
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.schedule();
      });
    }
  }

  private async send(batch: Waiter[]): Promise<void> {
    try {
      const rows = await batchQuery(this.knex, batch, Math.max(...batch.map((w) => w.deadline)));
      this.stats.batches++;
      this.stats.lookups += batch.length;
      const found = new Map<number, string>();
      for (const row of rows) found.set(Number(row.k), String(row.answered_by));
      batch.forEach((w, i) => w.resolve(found.get(i) ?? null));
    } catch (err) {
      if ((err as Error).name === 'KnexTimeoutError') this.stats.cancelled++;
      for (const w of batch) w.reject(err as Error);
    }
  }
}

/**
 * One statement for a batch: per lookup, the newest answered CDR of (caller, tenant) since its
 * window's start, tagged with the lookup's position. Each member is a derived table so that
 * SQLite accepts its ORDER BY and LIMIT inside the compound select; the index
 * cdrs(caller, tenant_id, answered_at) serves every member.
 *
 * On SQLite a batch goes as several shorter unions of a few fixed sizes (`repeatableChunks`),
 * one after another: SQLite compiles every text its statement cache does not keep, and a union
 * of 64 lookups (12 KB) is longer than it keeps; compiling it for every batch was 2 % of the
 * daemon's CPU under load (bench/PROFILE.md, release 8). MariaDB parses every text anyway: one
 * statement, one round trip.
 */
async function batchQuery(knex: Knex, batch: readonly Waiter[], deadline: number): Promise<MemberRow[]> {
  if (dbKind(knex) !== 'sqlite') return rawRows(knex, unionOf(batch.length), bindingsOf(batch, 0), { timeoutMs: Math.max(1, deadline - performance.now()) });
  const rows: MemberRow[] = [];
  let start = 0;
  for (const size of repeatableChunks(batch.length, SQLITE_UNION_MEMBERS)) {
    rows.push(...(await rawRows<MemberRow>(knex, unionOf(size), bindingsOf(batch.slice(start, start + size), start))));
    start += size;
  }
  return rows;
}

/** One member's answer: the lookup's position in its batch, and the phone. */
interface MemberRow {
  k: number | string;
  answered_by: string;
}

const MEMBER =
  'SELECT ? AS k, answered_by FROM (SELECT answered_by FROM cdrs WHERE tenant_id = ? AND caller = ? AND answered_at >= ? AND answered_by IS NOT NULL ORDER BY answered_at DESC LIMIT 1) AS m';
const UNION = ' UNION ALL ';

/** The statement for `members` lookups; its text depends on nothing else. */
function unionOf(members: number): string {
  return Array.from({ length: members }, (_, i) => `${MEMBER}${i}`).join(UNION);
}

/** The statement of one lookup on the reader: built once, not for every call. */
const ONE_LOOKUP = unionOf(1);

/** The lookups' bindings; `k` is each lookup's position in the whole batch (from `first`). */
function bindingsOf(lookups: ReadonlyArray<Pick<Waiter, 'tenantId' | 'caller' | 'since'>>, first: number): Knex.RawBinding[] {
  return lookups.flatMap((w, i) => [first + i, w.tenantId, w.caller, w.since]);
}

/**
 * Lookups in one SQLite union whose text the statement cache keeps (20: unions of up to 16),
 * each member's alias as wide as the widest a batch can have.
 */
const SQLITE_UNION_MEMBERS = itemsThatStayCompiled(0, `${MEMBER}${DEFAULT_MAX_BATCH - 1}`.length, UNION.length);
