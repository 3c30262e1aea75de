// extensions (switchboard short numbers) and the phones each member is reached on.
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'extensions', 'switchboard extensions', (t) => {
    ref(t, 'tenant_id').notNullable().comment('tenants.id');
    t.string('ext', 16).notNullable().comment('short number, unique per tenant');
    t.string('name', 255).nullable().comment('member name');
    t.string('department', 255).nullable().comment('department');
    t.boolean('voicemail_enabled').notNullable().defaultTo(1).comment('0/1 personal voicemail box');
    // Also serves lookups by tenant_id alone (leftmost prefix).
    t.unique(['tenant_id', 'ext']);
  });
  await createTable(knex, 'extension_phones', 'phones of an extension, tried in order', (t) => {
    ref(t, 'extension_id').notNullable().comment('extensions.id');
    t.string('number', 32).notNullable().comment('landline, mobile or long-distance number');
    t.integer('position').notNullable().defaultTo(1).comment('order tried, lower first');
    t.index(['extension_id', 'position']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'extension_phones');
  await dropTable(knex, 'extensions');
}
