// An index on updated_at for every table the configuration is read from. The daemon polls for a
// DBA's edit every CONFIG_POLL_INTERVAL_MS with COUNT(*), MAX(id) and MAX(updated_at) a table
// (src/snapshot/store.ts FINGERPRINT_SQL): without this index MAX(updated_at) reads every row of
// every table. On SQLite that read runs on the calls' event loop (6.7-7.1 ms every 2 s at 10,000
// tenants, bench/PROFILE.md release 32); with it each MAX is one seek. The daemon's own frequent
// write to these tables (tenants.balance) leaves updated_at as it is (migration 26), so it never
// updates this index. The list is fixed here, as the tables stood when this migration was written.
import type { Knex } from 'knex';

const CONFIG_TABLES_OF_20261206 = [
  'tenants', 'access_numbers', 'destination_groups', 'destinations', 'routing_rules', 'prompts', 'schedules', 'schedule_slots',
  'holidays', 'call_filters', 'rates', 'ivr_menus', 'ivr_options', 'extensions', 'extension_phones',
  'click_to_call_widgets',
] as const;

export async function up(knex: Knex): Promise<void> {
  for (const table of CONFIG_TABLES_OF_20261206) {
    await knex.schema.alterTable(table, (t) => {
      t.index(['updated_at'], `${table}_updated_at_index`);
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of CONFIG_TABLES_OF_20261206) {
    await knex.schema.alterTable(table, (t) => {
      t.dropIndex(['updated_at'], `${table}_updated_at_index`);
    });
  }
}
