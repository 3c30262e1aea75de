// tenant_usage.calls_at_recount: `calls` as the caps job last wrote it. Only admissions add to
// `calls` after that, so `calls - calls_at_recount` is how many calls were admitted since: the most
// of the job's next excess (calls neither a CDR nor a published live call) that can be calls still
// in flight. The job takes off only the rest (src/billing/caps.ts correctedCalls). Without it, a
// call admitted after the daemons' last publication stood in for one that had been missing the run
// before, and the count went below the calls in progress: a calls cap was overshot.
// Rerun-safe: a run stopped after the column was added (MariaDB cannot roll DDL back) goes on.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasColumn('tenant_usage', 'calls_at_recount')) return;
  await knex.schema.alterTable('tenant_usage', (t) => {
    t.integer('calls_at_recount').nullable().comment('calls as the caps job last wrote them; NULL: never written by it');
  });
}

export async function down(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasColumn('tenant_usage', 'calls_at_recount'))) return;
  // Plain DROP COLUMN: knex's SQLite dropColumn copies the table and loses its updated_at trigger.
  await knex.raw('ALTER TABLE tenant_usage DROP COLUMN calls_at_recount');
}
