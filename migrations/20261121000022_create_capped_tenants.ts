// capped_tenants: tenants the caps job found over a cap or out of balance, one row per reason;
// the row goes away when the reason does (new day or month in the tenant's zone, cap raised, top-up).
import type { Knex } from 'knex';
import { createTable, dropTable, ref, utcDatetime } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'capped_tenants', 'tenants over a call or spend cap, or out of balance', (t) => {
    ref(t, 'tenant_id').notNullable().comment('tenants.id');
    t.string('reason', 16).notNullable().comment('calls_day | calls_month | spend_day | spend_month | balance');
    t.string('period_start', 10).nullable().comment("YYYY-MM-DD (tenant's zone) of the capped period; NULL for balance");
    utcDatetime(knex, t, 'capped_at', { defaultNow: true }).comment('when the caps job first saw it (UTC)');
    t.string('detail', 255).nullable().comment('usage against the limit when capped');
    t.unique(['tenant_id', 'reason']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'capped_tenants');
}
