// knex's own lock (knex_migrations_lock.is_locked) left set by a migration that did not finish.
// Assumed of MySQL/MariaDB (and checked here on the real server): DDL commits the transaction it
// runs in, so knex's `UPDATE knex_migrations_lock SET is_locked = 1`, made in the batch's
// transaction, is committed by the first ALTER; when a later statement fails, knex's "free the
// lock" runs in a transaction that is then rolled back, and the lock stays set. So does the lock
// of a process killed during a migration. knex then refuses every later run ("Migration table is
// already locked") until somebody runs `knex migrate:unlock` by hand: each daemon start waited for
// ever (or routed from its cache for ever), never migrating, never reading the database.
import t from 'tap';
import type { Knex } from 'knex';
import { createKnex } from '../../src/db/connect';
import { MIGRATION_ADVISORY_LOCK_SQL, MigrationLockWaitError, migrateLatest, migrateWithLockWait, RUNS_TABLE } from '../../src/db/migrate';
import { dbTargets } from '../helpers/db';
import { LAST_MIGRATION as LAST, dbaReadsTenants, oneMigrationPending } from '../helpers/migration-lock';

const mariadb = dbTargets().find((d) => d.name === 'mariadb')!;

async function isLocked(knex: Knex): Promise<number> {
  return Number((await knex('knex_migrations_lock').first<{ is_locked: number }>('is_locked'))?.is_locked);
}

void t.test('MariaDB: a migration whose connection ends after one of its ALTERs leaves knex\'s lock set; the next attempt frees it and runs', async (t) => {
  const db = await mariadb.create();
  t.teardown(() => db.destroy());
  await oneMigrationPending(db.knex);
  // Two ALTERs left: tenants (done first, and with it the lock committed) and access_numbers,
  // where a DBA's open transaction holds the migration until its connection is killed: on the
  // server that is what a daemon killed during the migration (or a connection lost) looks like.
  await db.knex.schema.alterTable('access_numbers', (table) => table.dropIndex(['updated_at'], 'access_numbers_updated_at_index'));
  const dba = createKnex(db.url, { poolMax: 1 });
  t.teardown(() => dba.destroy());
  const trx = await dba.transaction();
  t.teardown(() => (trx.isCompleted() ? undefined : trx.rollback()));
  await trx('access_numbers').count({ n: '*' });

  const warnings: string[] = [];
  const migrating = migrateWithLockWait(db.knex, db.url, 60, (m) => warnings.push(m)).then(() => null, (e: unknown) => e);
  let alter: number | undefined;
  for (let i = 0; i < 500 && alter === undefined; i++) {
    const [rows] = await db.knex.raw<[Array<{ ID: number }>]>("SELECT ID FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for table metadata lock' AND INFO LIKE 'alter table `access_numbers`%'");
    alter = rows[0]?.ID;
    if (alter === undefined) await new Promise((r) => setTimeout(r, 10));
  }
  t.ok(alter !== undefined, 'the ALTER of access_numbers waits for the DBA');
  await db.knex.raw(`KILL CONNECTION ${Number(alter)}`);
  t.ok((await migrating) instanceof Error, 'the migration failed');
  // knex could not free its lock on the killed connection (the ALTER of tenants had committed it):
  // the run that set it frees it, as it ends.
  t.equal(await isLocked(db.knex), 0, "knex's lock freed by the run whose connection went");
  t.match(warnings, [/^knex_migrations_lock was left locked by a migration of this daemon that did not finish .* it was freed$/], `one warning says so: ${JSON.stringify(warnings)}`);
  await trx.commit();

  t.same(await migrateWithLockWait(db.knex, db.url, 1, (m) => warnings.push(m)), [LAST], 'the next attempt runs the migration, not "Migration table is already locked"');
  t.equal(await isLocked(db.knex), 0, 'and leaves the lock free');
  t.equal((await db.knex(RUNS_TABLE).count({ n: '*' }).first() as { n: number }).n, 0, 'no run of ours is marked after it');
});

void t.test('MariaDB: a lock left set by a daemon killed during a migration (its run still marked, its connection gone) is freed, with nothing pending too', async (t) => {
  const db = await mariadb.create();
  t.teardown(() => db.destroy());
  // What a daemon killed mid-migration leaves: knex's lock set, and its run marked with the
  // connection it held the advisory lock on, which the server dropped with the process.
  const gone = createKnex(db.url, { poolMax: 1 });
  const [[{ id }]] = await gone.raw<[[{ id: number }]]>('SELECT CONNECTION_ID() AS id');
  await gone.destroy();
  await db.knex.raw(`CREATE TABLE IF NOT EXISTS ${RUNS_TABLE} (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, connection_id BIGINT UNSIGNED NOT NULL, started_at DATETIME NOT NULL)`);
  await db.knex(RUNS_TABLE).insert({ id: 1, connection_id: id, started_at: new Date() });
  await db.knex('knex_migrations_lock').update({ is_locked: 1 });
  const warnings: string[] = [];
  t.same(await migrateWithLockWait(db.knex, db.url, 1, (m) => warnings.push(m)), [], 'nothing to run, and no "already locked"');
  t.equal(await isLocked(db.knex), 0);
  t.equal(warnings.length, 1, warnings.join('\n'));
});

void t.test('MariaDB: a lock set by a run that is not ours (a `knex migrate` by hand, an earlier release) is never freed: the attempt waits, retryable', async (t) => {
  const db = await mariadb.create();
  t.teardown(() => db.destroy());
  await db.knex('knex_migrations_lock').update({ is_locked: 1 });
  const err = await migrateWithLockWait(db.knex, db.url, 1).then(() => null, (e: unknown) => e);
  t.ok(err instanceof MigrationLockWaitError, `a lock wait (the Migrator tries again after a pause): ${String(err)}`);
  t.match((err as Error).message, /knex_migrations_lock is set by a migration run that is not this daemon's .* UPDATE knex_migrations_lock SET is_locked = 0$/);
  t.equal(await isLocked(db.knex), 1, 'its lock left alone');
  // A live one shown on the server: plain knex migrating, waiting in an ALTER behind a DBA's transaction.
  await db.knex('knex_migrations_lock').update({ is_locked: 0 });
  await oneMigrationPending(db.knex);
  const { trx } = await dbaReadsTenants(t, db.url);
  const plain = migrateLatest(db.knex).then(() => null, (e: unknown) => e);
  for (let i = 0; i < 500 && (await isLocked(db.knex)) === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const second = await migrateWithLockWait(db.knex, db.url, 1).then(() => null, (e: unknown) => e);
  t.ok(second instanceof MigrationLockWaitError, 'while it runs, ours waits instead of freeing its lock and running the same migration');
  await trx.commit();
  t.equal(await plain, null, 'the hand-run migration finishes');
  t.equal(await isLocked(db.knex), 0);
});

void t.test('MariaDB: while another process migrates, the lock is not taken from it: the attempt gives up, retryable, and names it', async (t) => {
  const db = await mariadb.create();
  t.teardown(() => db.destroy());
  await oneMigrationPending(db.knex);
  // Another daemon mid-migration: it holds the advisory lock every daemon migrates under, and knex's.
  const other = createKnex(db.url, { poolMax: 1 });
  t.teardown(() => other.destroy());
  const pool = other.client as { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<void> };
  const conn = await pool.acquireConnection();
  t.teardown(() => pool.releaseConnection(conn));
  const [[{ locked, id }]] = await other.raw<[[{ locked: number; id: number }]]>(`SELECT GET_LOCK(${MIGRATION_ADVISORY_LOCK_SQL}, 0) AS locked, CONNECTION_ID() AS id`).connection(conn);
  t.equal(Number(locked), 1);
  await db.knex('knex_migrations_lock').update({ is_locked: 1 });

  const started = Date.now();
  const err = await migrateWithLockWait(db.knex, db.url, 1).then(() => null, (e: unknown) => e);
  t.ok(err instanceof MigrationLockWaitError, `gave up, as a lock wait (the Migrator tries again after a pause): ${String(err)}`);
  t.match((err as Error).message, new RegExp(`^database migrations gave up after waiting 1 s \\(DATABASE_MIGRATION_LOCK_WAIT_S\\): another process \\(thread ${id} \\(root@.*\\) is migrating this database`));
  t.same((err as MigrationLockWaitError).holders.map((h) => h.threadId), [Number(id)]);
  t.ok(Date.now() - started >= 900, 'after waiting DATABASE_MIGRATION_LOCK_WAIT_S for it');
  t.equal(await isLocked(db.knex), 1, 'its lock left alone');
  t.ok(await db.knex('knex_migrations').where({ name: LAST }).first() === undefined, 'nothing run');

  // It finishes (frees both): the next attempt runs.
  await db.knex('knex_migrations_lock').update({ is_locked: 0 });
  await other.raw(`SELECT RELEASE_LOCK(${MIGRATION_ADVISORY_LOCK_SQL})`).connection(conn);
  t.same(await migrateWithLockWait(db.knex, db.url, 1), [LAST]);
});

void t.test('MariaDB: a DBA\'s open transaction still ends the attempt as a lock wait (the advisory lock changes nothing there)', async (t) => {
  const db = await mariadb.create();
  t.teardown(() => db.destroy());
  await oneMigrationPending(db.knex);
  const { trx } = await dbaReadsTenants(t, db.url);
  const err = await migrateWithLockWait(db.knex, db.url, 1).then(() => null, (e: unknown) => e);
  t.ok(err instanceof MigrationLockWaitError, String(err));
  await trx.commit();
  t.same(await migrateWithLockWait(db.knex, db.url, 1), [LAST]);
  t.same(await migrateWithLockWait(db.knex, db.url, 1), [], 'and the advisory lock was released: a third attempt does not wait');
});
