// Runs the knex migrations in migrations/ (TypeScript under ts-node) or dist/migrations/ (compiled).
//
// A custom migration source instead of knex's directory loader, because:
// - migration names are recorded WITHOUT extension ('20261121000001_create_tenants'), so a
//   database migrated by the tests under ts-node (.ts) is not "corrupt" for the compiled daemon (.js);
// - only top-level YYYYMMDDHHMMSS_*.ts|js files are migrations: migrations/lib (shared helpers),
//   .d.ts and .js.map files are not.
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { createKnex, dbKind } from './connect';

const RUNNING_TS = __filename.endsWith('.ts');
// src/db -> migrations, dist/src/db -> dist/migrations
const MIGRATIONS_DIR = path.resolve(__dirname, '..', '..', 'migrations');
const EXTENSION = RUNNING_TS ? '.ts' : '.js';
const MIGRATION_FILE = /^\d{14}_[a-z0-9_]+$/;

class MigrationFiles implements Knex.MigrationSource<string> {
  getMigrations(): Promise<string[]> {
    const files = fs
      .readdirSync(MIGRATIONS_DIR)
      .filter((f) => f.endsWith(EXTENSION) && !f.endsWith('.d.ts') && MIGRATION_FILE.test(stripExt(f)))
      .sort();
    return Promise.resolve(files);
  }

  getMigrationName(file: string): string {
    return stripExt(file);
  }

  async getMigration(file: string): Promise<Knex.Migration> {
    return (await import(path.join(MIGRATIONS_DIR, file))) as Knex.Migration;
  }
}

function stripExt(file: string): string {
  return file.replace(/\.(ts|js)$/, '');
}

function config(): Knex.MigratorConfig {
  return { migrationSource: new MigrationFiles(), tableName: 'knex_migrations' };
}

/** Apply every pending migration; returns the names applied (empty when up to date). */
export async function migrateLatest(knex: Knex): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest(config())) as [number, string[]];
  return applied;
}

/** Undo every applied migration (knex_migrations bookkeeping tables remain); returns the names undone. */
export async function migrateDownAll(knex: Knex): Promise<string[]> {
  const [, undone] = (await knex.migrate.rollback(config(), true)) as [number, string[]];
  return undone;
}

/** A session of the database holding a transaction open while a migration waited (best effort: MySQL's INNODB_TRX). */
export interface OpenTransaction {
  threadId: number;
  user: string | null;
  host: string | null;
  /** What the session does now (`Sleep`: idle inside its transaction, a DBA's client left open). */
  command: string | null;
  openS: number | null;
}

/**
 * A migration gave up waiting for a table's lock (MySQL's metadata lock: another session, a DBA's
 * client say, holds a transaction open on the table). The statement that waited did nothing and
 * the migration stays pending, to be run again later (`Migrator`): MySQL cannot roll DDL back, so
 * a migration of several statements must be written to run again over its own first part (as
 * 20261206100000_index_config_tables_updated_at is).
 */
export class MigrationLockWaitError extends Error {
  readonly code = 'MIGRATION_LOCK_WAIT';
  constructor(
    message: string,
    /** The oldest open transactions of other sessions when it gave up (empty when they cannot be read). */
    readonly holders: readonly OpenTransaction[],
    /** When the next attempt may run (Migrator), ms from the failure. */
    public retryAfterMs: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** MySQL's ER_LOCK_WAIT_TIMEOUT (1205): a metadata lock past lock_wait_timeout, or a row lock past innodb_lock_wait_timeout. */
function isLockWaitTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | null;
  return e?.code === 'ER_LOCK_WAIT_TIMEOUT' || e?.errno === 1205;
}

/** The oldest open transactions of the other sessions (at most 5), or none when the server does not say. */
/** A session as the server lists it (columns thread_id, user, host, command, open_s). */
function sessionRow(r: Record<string, unknown>): OpenTransaction {
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);
  return { threadId: Number(r.thread_id), user: text(r.user), host: text(r.host), command: text(r.command), openS: r.open_s === null ? null : Number(r.open_s) };
}

async function openTransactions(knex: Knex): Promise<OpenTransaction[]> {
  try {
    const rows = await knex
      .select<Array<Record<string, unknown>>>(
        knex.raw('t.trx_mysql_thread_id AS thread_id'),
        knex.raw('p.USER AS user'),
        knex.raw('p.HOST AS host'),
        knex.raw('p.COMMAND AS command'),
        knex.raw('TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS open_s'),
      )
      .from('information_schema.INNODB_TRX as t')
      .leftJoin('information_schema.PROCESSLIST as p', 'p.ID', 't.trx_mysql_thread_id')
      .whereRaw('t.trx_mysql_thread_id <> CONNECTION_ID()')
      .orderBy('t.trx_started')
      .limit(5);
    return rows.map(sessionRow);
  } catch {
    // No PROCESS privilege, a server without these tables: the error says what it can without them.
    return [];
  }
}

function describeHolders(holders: readonly OpenTransaction[]): string {
  if (holders.length === 0) return 'no open transaction of another session could be read (SHOW PROCESSLIST shows who holds it)';
  return `open transactions, oldest first: ${holders.map(describeSession).join('; ')}`;
}

/** `thread 12 (root@10.0.0.5:4410, Sleep, open 30 s)`. */
function describeSession(h: OpenTransaction): string {
  return `thread ${h.threadId} (${h.user ?? '?'}@${h.host ?? '?'}, ${h.command ?? '?'}, open ${h.openS ?? '?'} s)`;
}

/**
 * The advisory lock every process of ours migrates under (MySQL's GET_LOCK, one per database:
 * lock names are the server's, and at most 64 characters). Held on a connection of its own, the
 * server releases it when that connection ends, however the process ended.
 */
export const MIGRATION_ADVISORY_LOCK_SQL = "CONCAT('hotline_migrations:', MD5(DATABASE()))";

/**
 * Applies every pending migration with each wait for a table's lock bounded by `lockWaitS`
 * (MySQL; on SQLite, migrateLatest as it is: a DBA's write lock there is SQLITE_BUSY after
 * busy_timeout and readers do not queue behind a writer).
 *
 * Why: an ALTER waits for the table's metadata lock while any other session has a transaction
 * open on the table (a DBA's client left in a transaction), and every later statement on that
 * table, from every daemon, queues behind the waiting ALTER: with the server's lock_wait_timeout
 * (a day by default) one forgotten transaction stopped the table for everyone for as long as it
 * stayed open. Now the migration gives up after `lockWaitS`, the queue behind it goes on, and
 * MigrationLockWaitError names the open transactions. The migrations run on a connection of their
 * own (the setting is the session's), closed afterwards.
 *
 * knex's own lock (knex_migrations_lock.is_locked) is a row, not a session's: the batch sets it in
 * its transaction, and on MySQL the first ALTER commits that, so a process killed, or a connection
 * lost, during a migration left it set, and knex refused every later run ("Migration table is
 * already locked") until someone ran `knex migrate:unlock` by hand: no daemon start ever migrated
 * or read the database again. So every run takes the advisory lock first (waiting `lockWaitS` for
 * another process of ours that migrates, then giving up as a lock wait naming it) and marks itself
 * in RUNS_TABLE. A set row is freed only when it is a dead run's of ours: the run whose connection
 * went, as it fails, or a later run finding a marked run whose connection the server no longer has
 * (freeDeadRunsLock). A set row no run of ours marked (a `knex migrate` by hand, an earlier release)
 * is never freed. A server without GET_LOCK (Galera) migrates as knex does.
 *
 * `onWarning`: knex's warnings other than the failed migration's name (which goes into the error),
 * and the freed lock's.
 */
export async function migrateWithLockWait(knex: Knex, databaseUrl: string, lockWaitS: number, onWarning: (message: string) => void = () => {}): Promise<string[]> {
  if (dbKind(knex) !== 'mysql') return migrateLatest(knex);
  // knex says which migration failed only in a console warning: kept, and named in the error.
  const warnings: string[] = [];
  const own = createKnex(databaseUrl, {
    poolMax: 3,
    lockWaitTimeoutS: lockWaitS,
    onKnexWarning: (m) => {
      warnings.push(m);
      if (!/^migration (file "[^"]+" failed|failed with error: )/.test(m)) onWarning(m);
    },
  });
  try {
    const pool = own.client as PoolClient;
    const advisory = await pool.acquireConnection();
    let held = false;
    let marked = false;
    try {
      held = await takeAdvisoryLock(own, advisory, lockWaitS);
      if (!held) {
        onWarning('this server has no GET_LOCK (MariaDB Galera): migrations run without the advisory lock, and a knex_migrations_lock left set by a run that was killed is not freed here');
        return await migrateLatest(own);
      }
      if (await freeDeadRunsLock(own)) onWarning(FREED);
      await markRun(own, advisory);
      marked = true;
      try {
        return await migrateLatest(own);
      } catch (err) {
        // This run's own lock, left set because its connection went (knex frees it otherwise): a
        // refusal to start ("already locked") is another run's lock, never freed.
        if ((err as Error | null)?.name !== 'MigrationLocked' && (await lockSet(own).catch(() => false))) {
          await freeLock(own).then(() => onWarning(FREED), () => undefined);
        }
        throw err;
      }
    } finally {
      if (marked) await own(RUNS_TABLE).delete().catch(() => undefined);
      if (held) {
        await own.raw(`SELECT RELEASE_LOCK(${MIGRATION_ADVISORY_LOCK_SQL})`).connection(advisory).catch(() => undefined);
      }
      await pool.releaseConnection(advisory);
    }
  } catch (err) {
    if (err instanceof MigrationLockWaitError) throw err;
    const failed = warnings.map((w) => /migration file "([^"]+)" failed/.exec(w)?.[1]).find((name) => name !== undefined);
    if (!isLockWaitTimeout(err)) {
      if (failed !== undefined && err instanceof Error) err.message = `migration ${failed} failed: ${err.message}`;
      throw err;
    }
    const holders = await openTransactions(own);
    throw new MigrationLockWaitError(
      `database migration ${failed ?? '(unnamed)'} gave up after waiting ${lockWaitS} s for a table's lock (DATABASE_MIGRATION_LOCK_WAIT_S) held by another session, and stays pending: ${describeHolders(holders)}`,
      holders,
      0,
      { cause: err },
    );
  } finally {
    await own.destroy();
  }
}

/** knex's client as far as holding one of its pool's connections goes (typed `any` by knex). */
interface PoolClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
}

const FREED = 'knex_migrations_lock was left locked by a migration of this daemon that did not finish (its process or connection ended during it; MySQL commits the lock with the first ALTER), and no process of ours is migrating (the advisory lock is held): it was freed';

/**
 * Who is migrating now, one row, written under the advisory lock before knex runs and deleted
 * after: a row left behind names the connection of a run that died (its advisory lock went with
 * it). knex's own lock row says only that some run set it; this says it was ours.
 */
export const RUNS_TABLE = 'hotline_migration_runs';

async function markRun(knex: Knex, connection: unknown): Promise<void> {
  await knex.raw(`CREATE TABLE IF NOT EXISTS ${RUNS_TABLE} (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, connection_id BIGINT UNSIGNED NOT NULL, started_at DATETIME NOT NULL)`);
  const [[{ id }]] = await knex.raw<[[{ id: number }]]>('SELECT CONNECTION_ID() AS id').connection(connection);
  await knex.raw(`REPLACE INTO ${RUNS_TABLE} (id, connection_id, started_at) VALUES (1, ?, UTC_TIMESTAMP())`, [Number(id)]);
}

async function lockSet(knex: Knex): Promise<boolean> {
  if (!(await knex.schema.hasTable('knex_migrations_lock'))) return false;
  return (await knex('knex_migrations_lock').where('is_locked', '<>', 0).first()) !== undefined;
}

async function freeLock(knex: Knex): Promise<void> {
  await knex('knex_migrations_lock').where('is_locked', '<>', 0).update({ is_locked: 0 });
}

/**
 * GET_LOCK on `connection`, waiting at most `waitS`: true once held; false when the server has no
 * GET_LOCK (MariaDB Galera refuses it, ER_NOT_SUPPORTED_YET); a MigrationLockWaitError naming the
 * holder when another process holds it.
 */
async function takeAdvisoryLock(knex: Knex, connection: unknown, waitS: number): Promise<boolean> {
  let got: number | null;
  try {
    [[{ got }]] = await knex.raw<[[{ got: number | null }]]>(`SELECT GET_LOCK(${MIGRATION_ADVISORY_LOCK_SQL}, ?) AS got`, [waitS]).connection(connection);
  } catch (err) {
    if ((err as { errno?: unknown } | null)?.errno === 1235) return false;
    throw err;
  }
  if (Number(got) === 1) return true;
  let holders: OpenTransaction[] = [];
  try {
    const [rows] = await knex.raw<[Array<Record<string, unknown>>]>(
      `SELECT p.ID AS thread_id, p.USER AS user, p.HOST AS host, p.COMMAND AS command, p.TIME AS open_s FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK(${MIGRATION_ADVISORY_LOCK_SQL})`,
    );
    holders = rows.map(sessionRow);
  } catch {
    // Without PROCESS privilege the holder is not named; the error still says what waited.
  }
  const who = holders.length > 0 ? `another process (${describeSession(holders[0])})` : 'another process';
  throw new MigrationLockWaitError(
    `database migrations gave up after waiting ${waitS} s (DATABASE_MIGRATION_LOCK_WAIT_S): ${who} is migrating this database, and they stay pending here until it is done`,
    holders,
    0,
  );
}

/**
 * Frees knex's lock row when it is set by a run of ours that died (called under the advisory
 * lock): RUNS_TABLE names that run's connection, and the server no longer has it. True when it
 * freed it. Set with no such row (a `knex migrate` run by hand, a daemon of an earlier release,
 * which take no advisory lock and may be running now): never freed, a MigrationLockWaitError, so
 * the Migrator tries again after a pause.
 */
async function freeDeadRunsLock(knex: Knex): Promise<boolean> {
  if (!(await lockSet(knex))) return false;
  const run = (await knex.schema.hasTable(RUNS_TABLE)) ? await knex(RUNS_TABLE).first<{ connection_id: number } | undefined>('connection_id') : undefined;
  if (run !== undefined) {
    const [alive] = await knex.raw<[unknown[]]>('SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = ?', [Number(run.connection_id)]);
    if (alive.length === 0) {
      await freeLock(knex);
      return true;
    }
  }
  throw new MigrationLockWaitError(
    'database migrations wait: knex_migrations_lock is set by a migration run that is not this daemon\'s (a `knex migrate` by hand, or a daemon of an earlier release), which may still be running; they stay pending until it ends. If none runs (it was killed), free it: UPDATE knex_migrations_lock SET is_locked = 0',
    [],
    0,
  );
}

/** The longest pause between two attempts of a migration that waited for a lock. */
export const MIGRATION_RETRY_MAX_MS = 60_000;

/**
 * migrateWithLockWait, attempted again after a lock wait only once a pause has passed: twice the
 * wait after the first, doubling up to MIGRATION_RETRY_MAX_MS. The daemon asks at every poll of
 * the configuration (ConfigStore's `prepare`) and in its start-up loop; each attempt holds the
 * table's queue for up to `lockWaitS`, the pauses let it run. Asked within a pause, it throws the
 * last MigrationLockWaitError again (retryAfterMs: what is left of the pause) without a statement.
 */
export class Migrator {
  private failures = 0;
  private last: MigrationLockWaitError | null = null;
  private notBefore = 0;

  constructor(
    private readonly knex: Knex,
    private readonly databaseUrl: string,
    private readonly lockWaitS: number,
    private readonly now: () => number = Date.now,
    /** migrateWithLockWait's warnings (a dead run's lock freed, knex's own). */
    private readonly onWarning: (message: string) => void = () => {},
  ) {}

  async latest(): Promise<string[]> {
    const now = this.now();
    if (this.last && now < this.notBefore) {
      this.last.retryAfterMs = this.notBefore - now;
      throw this.last;
    }
    try {
      const applied = await migrateWithLockWait(this.knex, this.databaseUrl, this.lockWaitS, this.onWarning);
      this.failures = 0;
      this.last = null;
      return applied;
    } catch (err) {
      if (!(err instanceof MigrationLockWaitError)) throw err;
      this.failures++;
      err.retryAfterMs = Math.min(MIGRATION_RETRY_MAX_MS, this.lockWaitS * 1000 * 2 ** this.failures);
      this.notBefore = this.now() + err.retryAfterMs;
      this.last = err;
      throw err;
    }
  }
}
