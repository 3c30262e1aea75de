// report_late_cdrs: report periods (tenant, day or month) that received CDRs after the period had
// ended REPORT_SETTLE_MS ago, so after its report may have been made (a spool replayed after an
// outage). Written in the CDR batch's own transaction; the reports job remakes those reports and
// deletes the mark, only if no batch added to it meanwhile (late_cdrs unchanged).
import type { Knex } from 'knex';
import { createTable, dropTable, ref, utcDatetime } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'report_late_cdrs', 'report periods that received CDRs late: the reports job remakes them (written by the daemon)', (t) => {
    ref(t, 'tenant_id').notNullable().comment('tenants.id');
    t.string('period_kind', 8).notNullable().comment('day | month');
    t.string('period_start', 10).notNullable().comment("YYYY-MM-DD, first day in the tenant's timezone");
    t.integer('late_cdrs').notNullable().defaultTo(0).comment('late CDRs written since the mark was made (the job deletes the mark only if unchanged)');
    utcDatetime(knex, t, 'marked_at', { defaultNow: true }).comment('last late CDR batch (UTC)');
    t.unique(['tenant_id', 'period_kind', 'period_start']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'report_late_cdrs');
}
