// call_filters: block / allow lists by number, prefix or region.
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'call_filters', 'caller screening lists', (t) => {
    ref(t, 'tenant_id').notNullable().index().comment('tenants.id');
    t.string('list', 8).notNullable().comment('block | allow');
    t.string('kind', 8).notNullable().comment('number (exact) | prefix | region');
    t.string('value', 64).notNullable().comment('number, prefix or region token');
    t.string('note', 255).nullable().comment('free text');
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'call_filters');
}
