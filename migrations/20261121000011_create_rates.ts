// rates: per-minute prices by call type; tenant_id NULL rows are the defaults.
import type { Knex } from 'knex';
import { createTable, dropTable, money, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'rates', 'call prices by call type', (t) => {
    ref(t, 'tenant_id').nullable().comment('tenants.id; NULL = default rate');
    t.string('call_type', 16).notNullable().comment('local | long_distance | mobile | international');
    money(t, 'per_minute').notNullable().comment('price per minute');
    t.integer('increment_s').notNullable().defaultTo(60).comment('billing increment, 60 or 6 seconds');
    money(t, 'connect_fee').notNullable().defaultTo(0).comment('charged once per answered call');
    t.index(['tenant_id', 'call_type']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'rates');
}
