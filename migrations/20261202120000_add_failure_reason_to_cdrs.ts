// Why a call failed inside the daemon (outcome failed): its CDR could not be built from what
// FreeSWITCH sent, or the call flow broke. NULL for every other call.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('cdrs', (t) => {
    t.string('failure_reason', 255).nullable().comment('why the call failed inside the daemon (outcome failed), e.g. "CDR could not be built: RangeError: …"; NULL otherwise');
  });
}

export async function down(knex: Knex): Promise<void> {
  // Plain DROP COLUMN: knex's SQLite dropColumn copies the table and loses its updated_at trigger.
  await knex.raw('ALTER TABLE cdrs DROP COLUMN failure_reason');
}
