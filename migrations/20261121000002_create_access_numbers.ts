// access_numbers: the dialed 400 / switchboard numbers; the first lookup of every call.
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'access_numbers', 'dialed numbers routed to a tenant', (t) => {
    t.string('number', 32).notNullable().unique().comment('digits as dialed, e.g. 4001012345');
    ref(t, 'tenant_id').notNullable().index().comment('tenants.id');
    t.string('kind', 16).notNullable().defaultTo('hotline').comment('hotline | switchboard');
    t.boolean('enabled').notNullable().defaultTo(1).comment('0/1');
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'access_numbers');
}
