// tenant_usage: calls and spend per tenant and period, counted atomically for caps.
import type { Knex } from 'knex';
import { createTable, dropTable, money, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'tenant_usage', 'calls and spend per tenant and period', (t) => {
    ref(t, 'tenant_id').notNullable().comment('tenants.id');
    t.string('period_kind', 8).notNullable().comment('day | month');
    t.string('period_start', 10).notNullable().comment("YYYY-MM-DD in the tenant's timezone");
    t.integer('calls').notNullable().defaultTo(0).comment('calls admitted in the period');
    money(t, 'spend').notNullable().defaultTo(0).comment('cost in the period');
    // One row per period so admission can upsert and increment atomically.
    t.unique(['tenant_id', 'period_kind', 'period_start']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'tenant_usage');
}
