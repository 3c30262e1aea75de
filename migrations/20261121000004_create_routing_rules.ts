// routing_rules: which target a call goes to, by priority, caller region, time and percentage.
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'routing_rules', 'how calls of a tenant are routed', (t) => {
    ref(t, 'tenant_id').notNullable().comment('tenants.id');
    ref(t, 'access_number_id').nullable().comment("access_numbers.id; NULL = all the tenant's numbers");
    t.integer('priority').notNullable().defaultTo(100).comment('lower first; first matching level wins');
    t.string('regions', 1024).nullable().comment('comma-separated province/city/area-code tokens (北京,020,CN-44); NULL = anywhere');
    ref(t, 'schedule_id').nullable().comment('schedules.id; NULL = always');
    t.integer('percent').notNullable().defaultTo(100).comment('1-100 share among matching rules of a level');
    t.string('action', 16).notNullable().comment('group | ivr | switchboard | voicemail | announce | reject');
    ref(t, 'target_id').nullable().comment('group, menu or prompt id the action needs');
    t.boolean('enabled').notNullable().defaultTo(1).comment('0/1');
    // Also serves lookups by tenant_id alone (leftmost prefix).
    t.index(['tenant_id', 'priority']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'routing_rules');
}
