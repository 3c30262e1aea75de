// tenant_usage.excess_calls: admitted calls the last caps run found neither as a CDR nor as a
// live call. Calls in flight on another daemon can be missing for up to a minute, so the caps job
// only takes off the calls still missing on a second run (those of a daemon that died).
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('tenant_usage', (t) => {
    t.integer('excess_calls').notNullable().defaultTo(0).comment('admitted calls without CDR or live call at the last caps run');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE tenant_usage DROP COLUMN excess_calls');
}
