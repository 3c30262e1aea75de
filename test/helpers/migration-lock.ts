/**
 * A MariaDB database where a DBA's client holds a transaction open on `tenants` while the one
 * migration left to run (LAST_MIGRATION: the index on tenants.updated_at, dropped here) must
 * ALTER it (test/db/migration-lock-wait.test.ts, test/daemon/start-migration-lock-wait.test.ts).
 */
import type { Knex } from 'knex';
import type { Test } from 'tap';
import { createKnex } from '../../src/db/connect';
import { dbTargets, type TestDb } from './db';

export const LAST_MIGRATION = '20261206100000_index_config_tables_updated_at';

/** Puts LAST_MIGRATION back to pending, its only work left the index on `tenants`. */
export async function oneMigrationPending(knex: Knex): Promise<void> {
  await knex('knex_migrations').where({ name: LAST_MIGRATION }).delete();
  await knex.schema.alterTable('tenants', (table) => table.dropIndex(['updated_at'], 'tenants_updated_at_index'));
}

/** The DBA's client: a transaction on its own connection, left open after a read of tenants; its server thread id. */
export async function dbaReadsTenants(t: Test, url: string): Promise<{ trx: Knex.Transaction; thread: number }> {
  const dba = createKnex(url, { poolMax: 1 });
  t.teardown(() => dba.destroy());
  const trx = await dba.transaction();
  t.teardown(() => (trx.isCompleted() ? undefined : trx.rollback()));
  const thread = Number((await trx.raw<[Array<{ id: number }>]>('SELECT CONNECTION_ID() AS id'))[0][0].id);
  await trx('tenants').count({ n: '*' });
  return { trx, thread };
}

/** A fresh MariaDB database, migrated, LAST_MIGRATION pending, and the DBA's transaction open. */
export async function dbaHoldsTenants(t: Test): Promise<{ db: TestDb; trx: Knex.Transaction; thread: number }> {
  const db = await dbTargets().find((d) => d.name === 'mariadb')!.create();
  t.teardown(() => db.destroy());
  await oneMigrationPending(db.knex);
  return { db, ...(await dbaReadsTenants(t, db.url)) };
}
