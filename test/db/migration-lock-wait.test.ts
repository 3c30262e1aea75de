// A migration that meets a DBA's open transaction on a table it alters. Assumed of MySQL/MariaDB
// (and checked here on the real server): an ALTER waits for the table's metadata lock while any
// other session has a transaction open on the table, and every later statement on the table
// queues behind the waiting ALTER, for as long as the session's lock_wait_timeout (a day by
// default). With the daemon's own bound the migration gives up, the queue behind it goes on, the
// open transaction is named, and the migration runs once the transaction has ended.
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { createKnex } from '../../src/db/connect';
import { MIGRATION_RETRY_MAX_MS, MigrationLockWaitError, Migrator, migrateLatest, migrateWithLockWait } from '../../src/db/migrate';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { ConfigStore, StartCancelledError } from '../../src/snapshot/store';
import { dbTargets } from '../helpers/db';
import { LAST_MIGRATION as LAST, dbaHoldsTenants, dbaReadsTenants, oneMigrationPending } from '../helpers/migration-lock';

async function tenantsIndexed(knex: Knex): Promise<boolean> {
  const rows = await knex.raw<[Array<{ Key_name: string }>]>('SHOW INDEX FROM tenants');
  return rows[0].some((r) => r.Key_name === 'tenants_updated_at_index');
}

/** Resolves once an ALTER of the migration waits for a table's metadata lock (seen in the process list). */
async function alterWaiting(knex: Knex): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const rows = await knex.raw<[unknown[]]>("SELECT ID FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for table metadata lock' AND INFO LIKE 'alter table%'");
    if (rows[0].length > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no ALTER waited for a metadata lock');
}

const mariadb = dbTargets().find((d) => d.name === 'mariadb')!;

/** Another session on the database (a daemon's), its own connection. */
function otherSession(t: Test, url: string): Knex {
  const other = createKnex(url, { poolMax: 1 });
  t.teardown(() => other.destroy());
  return other;
}

void t.test('MariaDB: the migration gives up on a DBA\'s open transaction, the table stays usable, and it runs once the transaction ends', async (t) => {
  const { db, trx, thread: dbaThread } = await dbaHoldsTenants(t);

  let dbaOpen = true;
  const migrating = migrateWithLockWait(db.knex, db.url, 1).then(
    () => null,
    (err: unknown) => ({ err, dbaOpen }),
  );
  // A daemon's statement on the same table while the migration waits: it queues behind the ALTER.
  const other = otherSession(t, db.url);
  await alterWaiting(other);
  const read = other('tenants').count({ n: '*' }).then(() => dbaOpen);

  const failed = await migrating;
  t.ok(failed, 'the migration did not wait for the transaction to end');
  t.equal(failed?.dbaOpen, true, 'it gave up while the transaction was still open');
  const err = failed?.err as MigrationLockWaitError;
  t.ok(err instanceof MigrationLockWaitError, `a MigrationLockWaitError: ${String(err)}`);
  t.equal(err.code, 'MIGRATION_LOCK_WAIT');
  t.match(err.message, new RegExp(`^database migration ${LAST} gave up after waiting 1 s for a table's lock \\(DATABASE_MIGRATION_LOCK_WAIT_S\\)`), err.message);
  t.ok(err.holders.some((h) => h.threadId === dbaThread), `the DBA's session is named (thread ${dbaThread}): ${JSON.stringify(err.holders)}`);
  t.match(err.message, new RegExp(`thread ${dbaThread} \\(root@`), 'and its thread, user and host are in the message');
  t.equal(await read, true, "the other session's read on tenants went on while the DBA's transaction was still open");
  t.equal(await db.knex('knex_migrations').where({ name: LAST }).first(), undefined, 'the migration is still pending');
  t.equal(await tenantsIndexed(db.knex), false);

  await trx.commit();
  dbaOpen = false;
  t.same(await migrateWithLockWait(db.knex, db.url, 1), [LAST], 'once the transaction ended it runs');
  t.equal(await tenantsIndexed(db.knex), true);
  t.same(await migrateWithLockWait(db.knex, db.url, 1), [], 'and is done');
});

void t.test('MariaDB: without the bound (the server\'s lock_wait_timeout) the read queues behind the ALTER until the transaction ends', async (t) => {
  // The case the bound is for, shown on the server: what the test above would see without it.
  const { db, trx } = await dbaHoldsTenants(t);
  let dbaOpen = true;
  const migrating = migrateLatest(db.knex);
  const other = otherSession(t, db.url);
  await alterWaiting(other);
  const read = other('tenants').count({ n: '*' }).then(() => dbaOpen);
  // Long enough for a 1 s bound to have let the read through above.
  await new Promise((r) => setTimeout(r, 2500));
  dbaOpen = false;
  await trx.commit();
  t.equal(await read, false, 'the read finished only after the transaction ended');
  t.same(await migrating, [LAST]);
});

void t.test('Migrator: after a lock wait, a pause (twice the wait, doubling up to the most) before the next attempt', async (t) => {
  const { db, trx } = await dbaHoldsTenants(t);

  let now = 1_000_000;
  const migrator = new Migrator(db.knex, db.url, 1, () => now);
  const first = await migrator.latest().catch((err: unknown) => err);
  t.ok(first instanceof MigrationLockWaitError);
  t.equal((first as MigrationLockWaitError).retryAfterMs, 2000, 'the first pause: twice the wait');

  // Within the pause: the same error at once, no statement (the DBA's transaction has even ended).
  await trx.commit();
  now += 500;
  const started = Date.now();
  const again = await migrator.latest().catch((err: unknown) => err);
  t.equal(again, first, 'the same error');
  t.equal((again as MigrationLockWaitError).retryAfterMs, 1500, 'with what is left of the pause');
  t.ok(Date.now() - started < 500, 'answered without waiting on the server');
  t.equal(await tenantsIndexed(db.knex), false, 'nothing ran');

  now += 1500;
  t.same(await migrator.latest(), [LAST], 'after the pause it runs');
  t.same(await migrator.latest(), [], 'and the next asks find nothing to do');
});

void t.test('Migrator: the pauses double, up to MIGRATION_RETRY_MAX_MS, and a success starts them over', async (t) => {
  const db = await mariadb.create();
  t.teardown(() => db.destroy());
  let now = 0;
  const migrator = new Migrator(db.knex, db.url, 1, () => now);
  /** The pauses after `n` attempts that each wait the server's 1 s for a DBA's open transaction. */
  const pausesOf = async (n: number): Promise<number[]> => {
    await oneMigrationPending(db.knex);
    const { trx } = await dbaReadsTenants(t, db.url);
    const pauses: number[] = [];
    for (let i = 0; i < n; i++) {
      const err = await migrator.latest().catch((e: unknown) => e);
      if (!(err instanceof MigrationLockWaitError)) throw new Error(`attempt ${i + 1}: ${String(err)}`);
      pauses.push(err.retryAfterMs);
      now += err.retryAfterMs;
    }
    await trx.commit();
    t.same(await migrator.latest(), [LAST], 'the transaction ended: it runs');
    return pauses;
  };
  t.same(await pausesOf(7), [2000, 4000, 8000, 16_000, 32_000, MIGRATION_RETRY_MAX_MS, MIGRATION_RETRY_MAX_MS]);
  t.same(await pausesOf(1), [2000], 'after a success the pauses start over');
});

void t.test('SQLite: migrateWithLockWait is migrateLatest (no metadata-lock queue there)', async (t) => {
  const sqlite = dbTargets().find((d) => d.name === 'sqlite')!;
  const db = await sqlite.create({ migrate: false });
  t.teardown(() => db.destroy());
  const applied = await migrateWithLockWait(db.knex, db.url, 1);
  t.ok(applied.includes(LAST), `${applied.length} migrations applied`);
  t.same(await migrateWithLockWait(db.knex, db.url, 1), []);
});

void t.test('ConfigStore.start without a cache waits out a prepare that says when to try again; a stop ends the wait', async (t) => {
  const sqlite = dbTargets().find((d) => d.name === 'sqlite')!;
  const db = await sqlite.create();
  t.teardown(() => db.destroy());
  const OPTIONS = { pollIntervalMs: 60_000, fullReloadIntervalS: 3600 };
  const log = createLogger('silent');
  const lockWait = (): Error => Object.assign(new Error('a migration waited for a lock'), { retryAfterMs: 30 });

  let attempts = 0;
  const store = new ConfigStore(db.knex, OPTIONS, log, new Metrics(), undefined, {
    prepare: () => (++attempts < 3 ? Promise.reject(lockWait()) : Promise.resolve()),
  });
  await store.start();
  t.teardown(() => store.stop());
  t.equal(attempts, 3, 'tried again after each pause, then loaded');
  t.equal(store.source, 'database');
  t.equal(store.databaseReachable, true);

  // A SIGTERM while it waits: the start ends with StartCancelledError (main exits 0), not a failure.
  const stopping = new AbortController();
  let tries = 0;
  const waiting = new ConfigStore(db.knex, OPTIONS, log, new Metrics(), undefined, {
    prepare: () => {
      tries++;
      setImmediate(() => stopping.abort());
      return Promise.reject(Object.assign(new Error('a migration waited for a lock'), { retryAfterMs: 3_600_000 }));
    },
  });
  const err = await waiting.start(stopping.signal).catch((e: unknown) => e);
  t.ok(err instanceof StartCancelledError, String(err));
  t.match((err as Error).message, /a migration waited for a lock/);
  t.equal(tries, 1, 'no attempt after the stop');

  // An error that does not say when to try again still ends the start at once (as before).
  const failing = new ConfigStore(db.knex, OPTIONS, log, new Metrics(), undefined, { prepare: () => Promise.reject(new Error('no such table')) });
  await t.rejects(failing.start(), { code: 'CONFIG_UNAVAILABLE' });
});
