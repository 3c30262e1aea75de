// An index on updated_at for every table the configuration is read from. The daemon polls for a
// DBA's edit every CONFIG_POLL_INTERVAL_MS with COUNT(*), MAX(id) and MAX(updated_at) a table
// (src/snapshot/store.ts FINGERPRINT_SQL): without this index MAX(updated_at) reads every row of
// every table. On SQLite that read runs on the calls' event loop (6.8-7.3 ms every 2 s at 10,000
// tenants, bench/PROFILE.md release 32); with it each MAX is one seek. The daemon's own frequent
// write to these tables (tenants.balance) leaves updated_at as it is (migration 26), so it never
// updates this index. The list is fixed here, as the tables stood when this migration was written.
//
// Each index is added only where it is missing and dropped only where it is there: MariaDB cannot
// roll DDL back, so a run stopped half-way (a lock wait on one table) leaves some indexes built,
// and the next start must go on from there; a DBA may have dropped one (README: the poll then reads
// that table whole, nothing worse) or made one of that name. MySQL 8 has no CREATE/DROP INDEX IF
// [NOT] EXISTS, so the catalogue is asked first.
import type { Knex } from 'knex';
import { dbKind } from '../src/db/connect';

const CONFIG_TABLES_OF_20261206 = [
  'tenants', 'access_numbers', 'destination_groups', 'destinations', 'routing_rules', 'prompts', 'schedules', 'schedule_slots',
  'holidays', 'call_filters', 'rates', 'ivr_menus', 'ivr_options', 'extensions', 'extension_phones',
  'click_to_call_widgets',
] as const;

const indexName = (table: string): string => `${table}_updated_at_index`;

async function hasIndex(knex: Knex, table: string, name: string): Promise<boolean> {
  if (dbKind(knex) === 'sqlite') {
    const rows = await knex.raw<Array<{ name: string }>>(`PRAGMA index_list(${table})`);
    return rows.some((row) => row.name === name);
  }
  const [rows] = (await knex.raw(
    'SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ? LIMIT 1',
    [table, name],
  )) as [unknown[]];
  return rows.length > 0;
}

export async function up(knex: Knex): Promise<void> {
  for (const table of CONFIG_TABLES_OF_20261206) {
    if (await hasIndex(knex, table, indexName(table))) continue;
    await knex.schema.alterTable(table, (t) => {
      t.index(['updated_at'], indexName(table));
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of CONFIG_TABLES_OF_20261206) {
    if (!(await hasIndex(knex, table, indexName(table)))) continue;
    await knex.schema.alterTable(table, (t) => {
      t.dropIndex(['updated_at'], indexName(table));
    });
  }
}
