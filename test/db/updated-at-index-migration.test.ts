// Migration 20261206100000 (an index on updated_at for each configuration table) goes on from
// wherever it finds the schema: MariaDB cannot roll DDL back, so a run stopped half-way leaves some
// indexes built and the next start runs `up` again; a DBA may have dropped one of them (README:
// the poll then reads that table whole) before a `down`. Either used to fail the migration, and a
// daemon whose migrations fail starts on its cached configuration or not at all.
import t from 'tap';
import type { Knex } from 'knex';
import { down, up } from '../../migrations/20261206100000_index_config_tables_updated_at';
import { CONFIG_TABLES } from '../../src/snapshot/types';
import { withDatabases, type TargetName } from '../helpers/db';

/** The configuration tables that have `<table>_updated_at_index`, as the database's catalogue says. */
async function indexed(knex: Knex, target: TargetName): Promise<string[]> {
  const names = target === 'sqlite'
    ? (await knex('sqlite_master').where({ type: 'index' }).select<Array<{ name: string }>>('name')).map((r) => r.name)
    : ((await knex.raw('SELECT DISTINCT index_name AS name FROM information_schema.statistics WHERE table_schema = DATABASE()')) as [Array<{ name: string }>])[0].map((r) => r.name);
  return CONFIG_TABLES.filter((table) => names.includes(`${table}_updated_at_index`));
}

withDatabases(t, async (t, knex, target) => {
  t.same(await indexed(knex, target), [...CONFIG_TABLES], 'migrated: every configuration table has the index');

  await knex.schema.alterTable('rates', (table) => table.dropIndex(['updated_at'], 'rates_updated_at_index'));
  await down(knex);
  t.same(await indexed(knex, target), [], 'down with one index dropped by hand: the others dropped, no error');

  // A run stopped after its first tables (and one of a later table made by hand, of that name).
  await knex.schema.alterTable('tenants', (table) => table.index(['updated_at'], 'tenants_updated_at_index'));
  await knex.schema.alterTable('access_numbers', (table) => table.index(['updated_at'], 'access_numbers_updated_at_index'));
  await knex.schema.alterTable('ivr_options', (table) => table.index(['updated_at'], 'ivr_options_updated_at_index'));
  await up(knex);
  t.same(await indexed(knex, target), [...CONFIG_TABLES], 'up again over a half-done run: the missing ones added, no error');
  await up(knex);
  t.same(await indexed(knex, target), [...CONFIG_TABLES], 'and once more: nothing to do');
});
