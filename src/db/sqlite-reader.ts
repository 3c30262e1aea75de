/**
 * Read-only connections of the daemon's own to its SQLite file, for the reads that must not wait
 * for knex's one connection nor go through knex: caller memory on a call's setup path
 * (src/calls/caller-memory.ts) and the configuration store's reloads (src/snapshot/store.ts), one
 * connection each. Statements run synchronously, as better-sqlite3 runs them.
 *
 * Through knex the caller-memory statement cost 25-29 µs of CPU against 7 µs run on a
 * better-sqlite3 statement directly (a scratch loop of 20,000 lookups, bench/PROFILE.md release
 * 24): the query builder, the pool's acquire and release, the runner's promises. And knex has ONE
 * connection to an SQLite file (connect.ts): whatever is asked while a transaction holds it (the
 * configuration's read, an admission, a cron job) waits for that transaction to end. WAL lets
 * these connections read while that one or the CDR writer's thread writes; they see what was
 * committed.
 *
 * What it assumes about SQLite: the file exists and is in WAL mode (knex's connection set it when
 * it opened the file); a reader in WAL mode is not blocked by a writer. It keeps knex's
 * connection's busy timeout, for the rare moments SQLite makes a reader wait (the WAL's recovery
 * after another process crashed). `query_only` refuses any write.
 */
import Database from 'better-sqlite3';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { describeDbError } from './describe-error';
import { sqliteFile } from './connect';
import { cachePreparedStatements } from './sqlite-statements';

export interface SqliteReader {
  /** The rows of one statement, run now; throws SQLite's error (SQLITE_ERROR, SQLITE_BUSY …). */
  all<T>(sql: string, bindings: readonly unknown[]): T[];
  /** Runs statements that return no rows (`BEGIN`, `COMMIT`): a read transaction over several statements. */
  exec(sql: string): void;
  /** A transaction is open (SQLite may end one by itself after an I/O error). */
  readonly inTransaction: boolean;
  close(): void;
}

/**
 * A reader of the database `databaseUrl` names, or null where there is no file to open a second
 * connection to (MariaDB answers over the network; an in-memory SQLite database is its
 * connection's own). Throws when the file does not exist (it is not created here) or cannot be
 * opened.
 */
export function openSqliteReader(databaseUrl: string): SqliteReader | null {
  const file = sqliteFile(databaseUrl);
  if (file === null) return null;
  // `timeout` is busy_timeout, as knex's connection sets it.
  const db = new Database(file, { fileMustExist: true, timeout: 5000 });
  try {
    db.exec('PRAGMA query_only = ON');
  } catch (err) {
    db.close();
    throw err;
  }
  // The caller-memory unions come in a few fixed texts (repeatableChunks): compiled once each.
  cachePreparedStatements(db);
  return new BetterSqliteReader(db);
}

/**
 * Opens readers for a user that asks again and again (the configuration store at each load, the
 * caps job every minute) and reads through knex's connection while the file refuses. The refusal
 * is logged once while it lasts (again only when its reason changes), and the first open after it
 * says the reader is back: one line each, not one a minute.
 */
export class ReaderOpener {
  /** The reasons of the refusal under way, each logged once; empty while the reader opens. */
  private readonly refusals = new Set<string>();

  /** `refused`: the log line of a refusal, saying what is read instead; `what`: who reads, for the line when it opens again. */
  constructor(
    private readonly open: () => SqliteReader | null,
    private readonly log: Logger,
    private readonly text: { refused: string; what: string },
  ) {}

  /** A reader, or null: none for this database, or refused (logged as above, on `log` when given: a run's own). */
  tryOpen(log: Logger = this.log): SqliteReader | null {
    let reader: SqliteReader | null;
    try {
      reader = this.open();
    } catch (err) {
      const reason = describeDbError(err);
      // Reasons that take turns (A, B, A …) are each logged once while the refusal lasts.
      if (!this.refusals.has(reason)) log.warn({ err }, this.text.refused);
      this.refusals.add(reason);
      return null;
    }
    if (this.refusals.size > 0 && reader !== null) log.info({ refused: [...this.refusals] }, `${this.text.what} opened its own connection to the SQLite file again`);
    this.refusals.clear();
    return reader;
  }
}

/** A knex query's rows, run on `reader` (its SQL and bindings as knex makes them for SQLite). */
export function readerRows<T = Record<string, unknown>>(reader: SqliteReader, query: Knex.QueryBuilder): T[] {
  const { sql, bindings } = query.toSQL().toNative();
  return reader.all<T>(sql, bindings);
}

/**
 * Runs `read` in one read transaction on `reader`: every statement sees one snapshot, which WAL
 * keeps across turns of the event loop while other connections commit. On a failure the
 * transaction is rolled back (read only: nothing to undo) and `read`'s own error is thrown, not one
 * of the rollback's; nothing is left open to pin the WAL.
 */
export async function inReadTransaction<T>(reader: SqliteReader, read: () => Promise<T>): Promise<T> {
  reader.exec('BEGIN');
  let out: T;
  try {
    out = await read();
  } catch (err) {
    try {
      if (reader.inTransaction) reader.exec('ROLLBACK');
    } catch {
      // Reported: the first error.
    }
    throw err;
  }
  reader.exec('COMMIT');
  return out;
}

/** A class, not an object literal with a getter (eslint.config.mjs, bench/PROFILE.md release 15). */
class BetterSqliteReader implements SqliteReader {
  constructor(private readonly db: Database.Database) {}

  all<T>(sql: string, bindings: readonly unknown[]): T[] {
    return this.db.prepare(sql).all(...bindings) as T[];
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  get inTransaction(): boolean {
    return this.db.open && this.db.inTransaction;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
