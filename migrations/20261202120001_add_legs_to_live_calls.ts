// How many legs a live call pays at its rate: 2 for a click-to-call (the platform's call to the
// visitor and the call to the tenant, as its CDR is rated), else 1. The caps job and every
// daemon's live-call guard price published calls with it.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('live_calls', (t) => {
    t.tinyint('legs').notNullable().defaultTo(1).comment('legs paid at the rate: 2 = click-to-call, else 1');
  });
}

export async function down(knex: Knex): Promise<void> {
  // Plain DROP COLUMN: knex's SQLite dropColumn copies the table and loses its updated_at trigger.
  await knex.raw('ALTER TABLE live_calls DROP COLUMN legs');
}
