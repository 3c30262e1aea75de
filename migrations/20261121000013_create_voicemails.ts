// voicemails: messages left when nobody answered.
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'voicemails', 'voicemail messages', (t) => {
    ref(t, 'tenant_id').notNullable().comment('tenants.id');
    ref(t, 'extension_id').nullable().comment("extensions.id; NULL = the tenant's box");
    t.string('call_uuid', 64).notNullable().comment('cdrs.call_uuid');
    t.string('caller', 64).nullable().comment('caller number');
    t.string('file_path', 1024).notNullable().comment('recorded message');
    t.integer('duration_s').notNullable().defaultTo(0).comment('message length');
    t.boolean('heard').notNullable().defaultTo(0).comment('0/1');
    // created_at is added by createTable; the index serves listing and retention purges.
    t.index(['tenant_id', 'created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'voicemails');
}
