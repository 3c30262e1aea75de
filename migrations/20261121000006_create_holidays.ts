// holidays: days excluded by schedules with exclude_holidays = 1.
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'holidays', 'public and company holidays', (t) => {
    ref(t, 'tenant_id').nullable().comment('tenants.id; NULL = every tenant');
    t.string('day', 10).notNullable().comment('YYYY-MM-DD');
    t.string('name', 255).nullable().comment('e.g. 春节');
    t.index(['tenant_id', 'day']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'holidays');
}
