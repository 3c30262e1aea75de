// Database connection factory: one URL picks MySQL/MariaDB (production) or SQLite (embedded).
//
// What callers get back from each driver (the rest of the code must handle both):
// - DECIMAL money: MySQL returns exact strings ('12.3400'); SQLite has no decimal type and
//   returns JS numbers. Convert at the edge, never do money arithmetic on SQLite floats you
//   cannot round.
// - Timestamps: MySQL returns JS Date objects (UTC, because timezone 'Z' and the session
//   time_zone is +00:00); SQLite returns the stored text 'YYYY-MM-DD HH:MM:SS.SSS' (UTC).
//   Write timestamps with toDbTimestamp() and read them with fromDbTimestamp(): knex's SQLite
//   driver would store a Date as epoch milliseconds, which breaks text comparisons.
// - 0/1 flags come back as numbers from both.
import fs from 'node:fs';
import path from 'node:path';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { cachePreparedStatements, type SqliteStatementSource } from './sqlite-statements';

export type DbKind = 'mysql' | 'sqlite';

export interface ConnectOptions {
  /** Largest MySQL pool size (SQLite always uses one connection). Default 10. */
  poolMax?: number;
  /** How long a query waits for a pooled connection before failing. Default 10 s. */
  acquireTimeoutMs?: number;
  /**
   * MySQL: the sessions' `lock_wait_timeout` (seconds), the longest a statement waits for a
   * table's metadata lock; the server's own otherwise (a day by default). For migrations
   * (migrate.ts migrateWithLockWait): an ALTER waiting for the lock queues every later statement
   * on that table behind it.
   */
  lockWaitTimeoutS?: number;
  /** knex's own warnings (a failed migration's "migration file … failed") to the caller instead of the console. */
  onKnexWarning?: (message: string) => void;
  /**
   * Where knex's own messages go instead of the console (knexLogTo: the daemon's JSON log). knex
   * writes them with console.log: multi-line, with stacks ("Acquire connection error" on every
   * query while MySQL is away, thousands a minute), between the daemon's JSON lines on stdout.
   */
  knexLog?: KnexLog;
}

/** knex's `log` option: what it would otherwise print with console.log. */
export interface KnexLog {
  warn(message: unknown): void;
  error(message: unknown): void;
  deprecate(message: unknown): void;
  debug(message: unknown): void;
}

/** The least a JSON-line logger offers (pino's). */
interface LineLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/**
 * knex's messages as JSON lines on `log`: the first line of a message as the line, the whole
 * message (its stack) as `knex`. The same first line is logged at most once every `everyMs`, with
 * how many were left out since: knex says "Acquire connection error" for every query while MySQL
 * is away (5,383 lines in 20 s in a review), which the database metrics and alerts already count.
 */
export function knexLogTo(log: LineLogger, everyMs = 10_000, now: () => number = Date.now): KnexLog {
  const last = new Map<string, { at: number; left: number }>();
  const emit = (level: 'warn' | 'error' | 'debug', message: unknown): void => {
    const text = typeof message === 'string' ? message : message instanceof Error ? (message.stack ?? message.message) : JSON.stringify(message) ?? String(message);
    const first = (text.split('\n', 1)[0] ?? '').slice(0, 200);
    const key = `${level} ${first}`;
    const seen = last.get(key);
    const t = now();
    if (seen && t - seen.at < everyMs) {
      seen.left++;
      return;
    }
    if (!seen && last.size >= 100) last.clear();
    last.set(key, { at: t, left: 0 });
    log[level]({ knex: text, ...(seen && seen.left > 0 ? { alsoLeftOut: seen.left } : {}) }, `knex: ${first}`);
  };
  return {
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    deprecate: (m) => emit('warn', m),
    debug: (m) => emit('debug', m),
  };
}

/** mysql2 connection as seen by the pool hook (callback API). */
interface MysqlRawConnection {
  query(sql: string, cb: (err: Error | null) => void): void;
}

/** better-sqlite3 Database as seen by the pool hook (synchronous API). */
interface SqliteRawConnection extends SqliteStatementSource {
  pragma(source: string): unknown;
}

type Done = (err: Error | null, conn: unknown) => void;

/** knex's `log` option for `opts`: onKnexWarning takes the warnings, knexLog the rest; the console when neither is set. */
function knexLogOption(opts: ConnectOptions): { log?: Partial<KnexLog> } {
  const onWarning = opts.onKnexWarning;
  const log: Partial<KnexLog> = { ...opts.knexLog };
  if (onWarning) log.warn = (m: unknown) => onWarning(String(m));
  return Object.keys(log).length > 0 ? { log } : {};
}

export function createKnex(databaseUrl: string, opts: ConnectOptions = {}): Knex {
  const acquireConnectionTimeout = opts.acquireTimeoutMs ?? 10_000;
  if (/^(mysql|mariadb):\/\//i.test(databaseUrl)) {
    return knexFactory({
      client: 'mysql2',
      connection: mysqlConnection(databaseUrl),
      pool: {
        min: 0,
        max: opts.poolMax ?? 10,
        // The connection option `timezone` only tells mysql2 how to convert Dates; the server
        // session must be UTC too, or NOW()/CURRENT_TIMESTAMP and TIMESTAMP columns shift.
        afterCreate(conn: MysqlRawConnection, done: Done) {
          const lockWait = opts.lockWaitTimeoutS === undefined ? '' : `, lock_wait_timeout = ${Math.max(1, Math.floor(opts.lockWaitTimeoutS))}`;
          conn.query(`SET time_zone = '+00:00'${lockWait}`, (err) => done(err, conn));
        },
      },
      acquireConnectionTimeout,
      ...knexLogOption(opts),
    });
  }
  if (/^sqlite:/i.test(databaseUrl)) {
    const filename = sqliteFilename(databaseUrl);
    if (filename !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(filename)), { recursive: true });
    return knexFactory({
      client: 'better-sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      // SQLite has one writer; a single connection avoids SQLITE_BUSY between our own
      // connections (and keeps ':memory:' one database instead of one per connection).
      pool: {
        min: 1,
        max: 1,
        afterCreate(conn: SqliteRawConnection, done: Done) {
          try {
            conn.pragma('journal_mode = WAL'); // readers (lint CLI, sqlite3 shell) do not block us
            // Every commit on disk before it returns (the WAL synced at each commit). The default in
            // WAL mode as better-sqlite3 builds SQLite syncs only at checkpoints: a power cut could
            // take back a CDR batch whose spool segment was already deleted. Cost: one fsync a write
            // transaction, 0.98x calls/s (npm run bench:ab; bench/PROFILE.md release 12). Tested with
            // strace in test/db/sqlite-durable.test.ts.
            conn.pragma('synchronous = FULL');
            conn.pragma('busy_timeout = 5000'); // wait for another process' write lock
            // A big batch's statement journal and RETURNING's rows in memory, not in etilqs_* files
            // in /var/tmp (about 3 writes a CDR), which a full /var/tmp would fail (sqlite-durable.test.ts).
            conn.pragma('temp_store = MEMORY');
            conn.pragma('foreign_keys = ON');
            cachePreparedStatements(conn); // knex prepares every query anew (sqlite-statements.ts)
            done(null, conn);
          } catch (err) {
            done(err as Error, conn);
          }
        },
      },
      acquireConnectionTimeout,
      ...knexLogOption(opts),
    });
  }
  throw new Error(
    `Unsupported database URL "${redact(databaseUrl)}": expected mysql://user:pass@host:port/db, ` +
      'mariadb://…, sqlite:./relative/path.db, sqlite:/absolute/path.db or sqlite::memory:',
  );
}

function mysqlConnection(databaseUrl: string): Knex.MySql2ConnectionConfig {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new Error(`Invalid database URL "${redact(databaseUrl)}": cannot parse it`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!url.hostname || !database || database.includes('/')) {
    throw new Error(`Invalid database URL "${redact(databaseUrl)}": expected mysql://user:pass@host:port/db`);
  }
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : 3306,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database,
    charset: 'utf8mb4', // Chinese names (北京) need 4-byte UTF-8; knex also uses it as the table default
    timezone: 'Z',
    dateStrings: false,
    supportBigNumbers: true,
    // decimalNumbers stays false (mysql2's default): DECIMAL money arrives as an exact string.
  };
}

/**
 * The SQLite file a DATABASE_URL names, or null when it names none: MariaDB, or `sqlite::memory:`
 * (a database of its one connection's own, which no second connection or thread can open).
 */
export function sqliteFile(databaseUrl: string): string | null {
  if (!/^sqlite:/i.test(databaseUrl)) return null;
  const filename = sqliteFilename(databaseUrl);
  return filename === ':memory:' ? null : filename;
}

function sqliteFilename(databaseUrl: string): string {
  const rest = databaseUrl.slice('sqlite:'.length);
  if (rest === ':memory:') return rest;
  // 'sqlite://x' is ambiguous (host or path?): refuse it instead of guessing.
  if (rest === '' || rest.startsWith('//')) {
    throw new Error(
      `Invalid database URL "${databaseUrl}": expected sqlite:./relative/path.db, sqlite:/absolute/path.db or sqlite::memory:`,
    );
  }
  return rest;
}

/** Hide the password when a URL goes into an error message. */
function redact(databaseUrl: string): string {
  return databaseUrl.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

export function dbKind(knex: Knex): DbKind {
  // knex.client is untyped; its `dialect` is 'mysql' for mysql/mysql2, 'sqlite3' for both SQLite drivers.
  const dialect = (knex.client as { dialect?: string }).dialect;
  if (dialect === 'mysql') return 'mysql';
  if (dialect === 'sqlite3') return 'sqlite';
  throw new Error(`Unsupported knex dialect "${String(dialect)}"`);
}

/** A UTC instant in the text form both databases accept and compare correctly: 'YYYY-MM-DD HH:MM:SS.SSS'. */
export function toDbTimestamp(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

/** A timestamp as read from either driver (Date from MySQL, UTC text from SQLite) as a Date. */
export function fromDbTimestamp(value: Date | string | number | null | undefined): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value); // a Date written through knex on SQLite
  const date = new Date(`${value.replace(' ', 'T')}${/(?:[zZ]|[+-]\d\d:?\d\d)$/.test(value) ? '' : 'Z'}`);
  if (Number.isNaN(date.getTime())) throw new Error(`Unreadable database timestamp "${value}"`);
  return date;
}

/**
 * The rows of a raw SELECT on either client: mysql2 answers [rows, fields], better-sqlite3 the rows.
 * `timeoutMs`: on MariaDB the statement is cancelled (KILL QUERY) and rejects with knex's
 * KnexTimeoutError after that long; SQLite runs synchronously and is bounded by busy_timeout.
 */
export async function rawRows<T>(knex: Knex, sql: string, bindings: readonly Knex.RawBinding[] = [], opts: { timeoutMs?: number } = {}): Promise<T[]> {
  let query = knex.raw(sql, bindings as Knex.RawBinding[]);
  if (opts.timeoutMs !== undefined && dbKind(knex) === 'mysql') query = query.timeout(Math.ceil(opts.timeoutMs), { cancel: true });
  const result: unknown = await query;
  return (Array.isArray(result) && Array.isArray(result[0]) ? result[0] : result) as T[];
}

/** Rows a raw INSERT/UPDATE/DELETE changed: mysql2 answers [ResultSetHeader, …], better-sqlite3 { changes }. */
export function rawChanges(result: unknown): number {
  const h = resultHeader(result) as { affectedRows?: unknown; changes?: unknown } | null;
  return Number(h?.affectedRows ?? h?.changes ?? 0);
}

/** The insert id a raw statement's result carries (mysql2 insertId, better-sqlite3 lastInsertRowid), or NaN. */
export function rawInsertId(result: unknown): number {
  const h = resultHeader(result) as { insertId?: unknown; lastInsertRowid?: unknown } | null;
  return Number(h?.insertId ?? h?.lastInsertRowid ?? NaN);
}

function resultHeader(result: unknown): unknown {
  return Array.isArray(result) ? result[0] : result;
}
