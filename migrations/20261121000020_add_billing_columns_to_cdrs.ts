// Columns billing needs on cdrs: the call type the call was rated as (reports split local / long
// distance by it), whether the call was admitted (counted in tenant_usage.calls), and which
// writer batch inserted the row (spend and balance are applied exactly once, for new rows only).
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('cdrs', (t) => {
    t.string('call_type', 16).nullable().comment('local | long_distance | mobile | international, as rated; NULL = not rated');
    t.boolean('admitted').nullable().comment('1 = counted against the call caps at admission; NULL = not said (outcome decides)');
    t.string('write_batch', 36).nullable().comment('the CDR writer batch that inserted the row (billing applies each new row once)');
  });
}

export async function down(knex: Knex): Promise<void> {
  // Plain DROP COLUMN: knex's SQLite dropColumn copies the table and loses its updated_at trigger.
  for (const column of ['write_batch', 'admitted', 'call_type']) await knex.raw(`ALTER TABLE cdrs DROP COLUMN ${column}`);
}
