// destination_groups and their destinations (the phones a group rings).
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'destination_groups', 'groups of phones answering calls', (t) => {
    ref(t, 'tenant_id').notNullable().index().comment('tenants.id');
    t.string('name', 255).notNullable().comment('group name');
    t.string('strategy', 16).notNullable().defaultTo('sequential')
      .comment('sequential | random | round_robin | simultaneous | weighted');
    t.integer('ring_timeout_s').nullable().comment("per-leg ring timeout; NULL = tenant's");
    t.integer('max_queue').notNullable().defaultTo(0).comment('callers waiting when all busy; 0 = no queue');
    t.integer('queue_timeout_s').notNullable().defaultTo(60).comment('longest wait in the queue');
    ref(t, 'failover_group_id').nullable().comment('destination_groups.id tried on busy/no answer; NULL = none');
  });
  await createTable(knex, 'destinations', 'phones of a destination group', (t) => {
    ref(t, 'group_id').notNullable().comment('destination_groups.id');
    t.string('number', 32).notNullable().comment('phone number to ring');
    t.integer('position').notNullable().defaultTo(1).comment('hunting order, lower first');
    t.integer('weight').notNullable().defaultTo(1).comment('share for the weighted strategy');
    t.boolean('enabled').notNullable().defaultTo(1).comment('0/1');
    t.string('label', 255).nullable().comment('free text, e.g. who answers');
    t.index(['group_id', 'position']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'destinations');
  await dropTable(knex, 'destination_groups');
}
