/**
 * Compiled statements kept per SQLite connection.
 *
 * knex's better-sqlite3 client calls `connection.prepare(sql)` for every query, so SQLite parses
 * and plans the same text again each time: 3.7 % of the daemon's CPU under load on SQLite
 * (`npm run bench:profile` with BENCH_PROFILE_DB=sqlite; bench/PROFILE.md), for a handful of
 * statement texts (the batched caller-memory lookup and the CDR INSERT in a few fixed sizes, the
 * CDR charge and live-call statements, the config poll). Here `prepare` answers a text it has seen
 * from a bounded cache, least recently used out first.
 *
 * Why reuse is safe (better-sqlite3 11-12, SQLite's own rules):
 * - knex runs a statement with `all()` or `run()`, which finish before they return; nothing here
 *   iterates, so a cached statement is never busy when it is handed out again.
 * - After a schema change (a migration, a DBA's ALTER) SQLite re-prepares the statement from
 *   its text on its next step (sqlite3_prepare_v3 semantics); `SELECT *` sees the new columns.
 * - knex changes a statement's integer mode only for a query that asks (`options({ safeIntegers
 *   })`, which this code never does); a reused statement is put back to the connection's default
 *   first, so a mode set once cannot leak into the next query of the same text.
 * - Texts longer than STATEMENT_CACHE_MAX_SQL are not kept: they rarely repeat (a text whose
 *   length follows a batch's row count: the live_calls delete of a CDR batch, a long IN list),
 *   and a compiled statement of thousands of values holds up to a megabyte outside the V8 heap.
 *   The multi-row CDR INSERT and the batched caller-memory UNION repeat: src/cdr/batch.ts and
 *   src/calls/caller-memory.ts cut every batch into statements of a few fixed sizes
 *   (`repeatableChunks`), each short enough to be kept (`itemsThatStayCompiled`).
 */

/** The part of a better-sqlite3 Statement this cache touches. */
export interface SqliteStatement {
  safeIntegers(on?: boolean): unknown;
}

/** The part of a better-sqlite3 Database this cache touches. */
export interface SqliteStatementSource {
  prepare(sql: string): SqliteStatement;
}

/** Statements kept per connection. */
export const STATEMENT_CACHE_SIZE = 200;
/** Longer texts are prepared each time, as before. */
export const STATEMENT_CACHE_MAX_SQL = 4096;

/**
 * How many items (rows of a multi-row INSERT, members of a UNION ALL) one statement may carry
 * for its text to stay within STATEMENT_CACHE_MAX_SQL and so be kept: `fixedChars` of text
 * around the items, each at most `itemChars` long, `separatorChars` between two. At least 1 (a
 * statement longer than that is compiled each time, as any long text is).
 */
export function itemsThatStayCompiled(fixedChars: number, itemChars: number, separatorChars: number): number {
  return Math.max(1, Math.floor((STATEMENT_CACHE_MAX_SQL - fixedChars + separatorChars) / (itemChars + separatorChars)));
}

/**
 * Cuts `count` items into statements whose sizes are powers of two, none above `max`: as many
 * of the largest power of two allowed as fit, then the rest in falling powers of two (300 items,
 * max 64: 64, 64, 64, 64, 32, 8, 4). A statement whose text follows its item count then comes
 * back in at most log2(max) + 1 texts, whatever the counts, and stays compiled; one text per
 * count would be compiled anew for nearly every batch.
 */
export function repeatableChunks(count: number, max: number): number[] {
  let size = 1;
  // Bounded, so that an unbounded `max` (Infinity) still ends.
  while (size * 2 <= max && size < 2 ** 30) size *= 2;
  const sizes: number[] = [];
  let left = count;
  for (; left >= size; left -= size) sizes.push(size);
  // What is left is below `size`: its binary digits.
  for (let part = size / 2; part >= 1; part /= 2) {
    if (left >= part) {
      sizes.push(part);
      left -= part;
    }
  }
  return sizes;
}

export interface StatementCacheStats {
  /** Statements handed out from the cache. */
  hits: number;
  /** Statements compiled (not cached, or not kept). */
  misses: number;
  /** Statements currently kept. */
  readonly size: number;
}

/** The cache's counters: a class, as an object literal with a getter is kept past the young generation (eslint.config.mjs). */
class CacheCounters implements StatementCacheStats {
  hits = 0;
  misses = 0;

  constructor(private readonly cache: ReadonlyMap<string, unknown>) {}

  get size(): number {
    return this.cache.size;
  }
}

/**
 * Makes `db.prepare` answer repeated texts from a cache (in place: knex holds `db`). Returns the
 * cache's counters.
 */
export function cachePreparedStatements(
  db: SqliteStatementSource,
  options: { size?: number; maxSqlLength?: number; defaultSafeIntegers?: boolean } = {},
): StatementCacheStats {
  const size = Math.max(1, options.size ?? STATEMENT_CACHE_SIZE);
  const maxSqlLength = options.maxSqlLength ?? STATEMENT_CACHE_MAX_SQL;
  const safeDefault = options.defaultSafeIntegers ?? false;
  const compile = db.prepare.bind(db);
  const cache = new Map<string, SqliteStatement>();
  const stats = new CacheCounters(cache);
  db.prepare = (sql: string): SqliteStatement => {
    const kept = cache.get(sql);
    if (kept !== undefined) {
      stats.hits++;
      // Most recently used last: the Map's first key is the one to drop.
      cache.delete(sql);
      cache.set(sql, kept);
      kept.safeIntegers(safeDefault);
      return kept;
    }
    stats.misses++;
    // A text SQLite refuses throws here, as before, and is not kept.
    const statement = compile(sql);
    if (sql.length <= maxSqlLength) {
      cache.set(sql, statement);
      if (cache.size > size) cache.delete(cache.keys().next().value as string);
    }
    return statement;
  };
  return stats;
}
