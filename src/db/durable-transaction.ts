/**
 * A write transaction that is on disk when it resolves, without a disk sync on the event loop.
 *
 * MariaDB: a plain transaction (InnoDB syncs its log in the server at commit).
 *
 * SQLite: better-sqlite3 is synchronous, so with `synchronous = FULL` (the connection's setting,
 * connect.ts) every commit waits for an fsync of the -wal file on the main thread: 0.8 ms at the
 * median on the bench VM and 5 ms at worst, every CDR batch, while every call waits (bench/PROFILE.md,
 * release 14). Here the transaction commits with `synchronous = NORMAL` (no sync at commit) and the
 * -wal file is then synced with fdatasync on libuv's thread pool before the promise resolves, so
 * what the caller does next (the CDR spool deletes its segment) still comes after the data is on
 * disk. Should the sync fail, the transaction counts as not written: the caller keeps its copy
 * (the spool replays it; its inserts are idempotent).
 *
 * Why the sync of our own descriptor is the commit's: a WAL commit appends the transaction's
 * frames to the -wal file (sqlite.org/wal.html) and fdatasync flushes the file's data whatever the
 * descriptor (the inode's dirty pages). A checkpoint that ran meanwhile synced the WAL and the
 * database file itself (NORMAL syncs at checkpoints). `PRAGMA synchronous` may not change inside
 * a transaction ("Safety level may not be changed inside a transaction"), so the connection is
 * taken from the pool (one connection on SQLite) for the switch, the transaction and the switch
 * back: no other statement runs with NORMAL. test/db/sqlite-durable.test.ts watches the order with
 * strace.
 */
import fs from 'node:fs/promises';
import type { Knex } from 'knex';
import { dbKind } from './connect';

/** better-sqlite3's Database, as the pool hands it out. */
interface SqliteConnection {
  pragma(source: string, options?: { simple?: boolean }): unknown;
}

interface PoolClient {
  acquireConnection(): Promise<SqliteConnection>;
  releaseConnection(connection: SqliteConnection): Promise<void>;
}

/** Each connection's -wal file, or null for an in-memory or temporary database (nothing to sync). */
const walFileOf = new WeakMap<SqliteConnection, string | null>();

function walFile(connection: SqliteConnection): string | null {
  let wal = walFileOf.get(connection);
  if (wal === undefined) {
    const main = (connection.pragma('database_list') as Array<{ name: string; file: string }>).find((d) => d.name === 'main');
    const journal = String(connection.pragma('journal_mode', { simple: true })).toLowerCase();
    // Not in WAL mode (a database the daemon did not open): no -wal file, FULL stays in force.
    wal = main?.file && journal === 'wal' ? `${main.file}-wal` : null;
    walFileOf.set(connection, wal);
  }
  return wal;
}

/** Flushes the -wal file's data to disk, on libuv's thread pool. */
async function syncFile(file: string): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** `sync`: how the -wal file is flushed (tests give a failing one). */
export async function durableTransaction<T>(knex: Knex, work: (trx: Knex.Transaction) => Promise<T>, sync: (file: string) => Promise<void> = syncFile): Promise<T> {
  if (dbKind(knex) !== 'sqlite') return knex.transaction(work);
  const pool = knex.client as PoolClient;
  const connection = await pool.acquireConnection();
  let result: T;
  let wal: string | null;
  try {
    wal = walFile(connection);
    if (wal === null) return await knex.transaction(work, { connection });
    connection.pragma('synchronous = NORMAL');
    try {
      result = await knex.transaction(work, { connection });
    } finally {
      connection.pragma('synchronous = FULL');
    }
  } finally {
    await pool.releaseConnection(connection);
  }
  await sync(wal);
  return result;
}
