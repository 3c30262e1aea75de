// click_to_call_requests.cdr_pending: set in the same UPDATE that ends an attempt the daemon writes
// the CDR for (the visitor never reached the call flow), cleared once that CDR is spooled. A row
// still marked a minute after it ended lost its CDR (the daemon died between the two, or the spool
// refused the write): the sweeper of any daemon rebuilds the CDR from the row and writes it.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('click_to_call_requests', (t) => {
    t.boolean('cdr_pending').notNullable().defaultTo(0).comment('0/1 ended by the daemon, its CDR not yet spooled');
    t.index(['cdr_pending', 'ended_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('click_to_call_requests', (t) => {
    t.dropIndex(['cdr_pending', 'ended_at']);
  });
  // Plain DROP COLUMN: knex's SQLite dropColumn copies the table and loses its updated_at trigger.
  await knex.raw('ALTER TABLE click_to_call_requests DROP COLUMN cdr_pending');
}
