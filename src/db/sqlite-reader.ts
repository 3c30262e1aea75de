/**
 * A read-only connection of the daemon's own to its SQLite file, for the one read on a call's
 * setup path: caller memory (src/calls/caller-memory.ts). Its statements run synchronously, in
 * the turn the lookup is sent in, and go through nothing else.
 *
 * Through knex the same statement cost 25-29 µs of CPU against 7 µs run on a better-sqlite3
 * statement directly (a scratch loop of 20,000 lookups, bench/PROFILE.md release 24): the query
 * builder, the pool's acquire and release, the runner's promises. And knex has ONE connection to
 * an SQLite file (connect.ts): a lookup asked while a configuration read, an admission or a cron
 * job held it waited for that to finish. WAL lets this connection read while that one or the CDR
 * writer's thread writes; it sees what they committed.
 *
 * What it assumes about SQLite: the file exists and is in WAL mode (the migrations ran on knex's
 * connection before the daemon takes calls); a reader in WAL mode is not blocked by a writer. It
 * keeps knex's connection's busy timeout, for the rare moments SQLite makes a reader wait (the
 * WAL's recovery after another process crashed). `query_only` refuses any write.
 */
import Database from 'better-sqlite3';
import { sqliteFile } from './connect';
import { cachePreparedStatements } from './sqlite-statements';

export interface SqliteReader {
  /** The rows of one statement, run now; throws SQLite's error (SQLITE_ERROR, SQLITE_BUSY …). */
  all<T>(sql: string, bindings: readonly unknown[]): T[];
  close(): void;
}

/**
 * A reader of the database `databaseUrl` names, or null where there is no file to open a second
 * connection to (MariaDB answers over the network; an in-memory SQLite database is its
 * connection's own). Opening it throws when the file does not exist: the caller runs after the
 * migrations.
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
  return {
    all<T>(sql: string, bindings: readonly unknown[]): T[] {
      return db.prepare(sql).all(...bindings) as T[];
    },
    close(): void {
      if (db.open) db.close();
    },
  };
}
