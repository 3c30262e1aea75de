// schedules and their time slots (times of day 'HH:MM', days 'YYYY-MM-DD' as strings: they are
// wall-clock values in the tenant's timezone, not instants, and strings behave the same on both databases).
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'schedules', 'named sets of time slots', (t) => {
    ref(t, 'tenant_id').notNullable().index().comment('tenants.id');
    t.string('name', 255).notNullable().comment('schedule name');
    t.boolean('exclude_holidays').notNullable().defaultTo(0).comment('0/1 holidays are outside the schedule');
  });
  await createTable(knex, 'schedule_slots', 'time slots of a schedule, tenant timezone', (t) => {
    ref(t, 'schedule_id').notNullable().index().comment('schedules.id');
    t.string('weekdays', 32).nullable().comment('e.g. 1-5 or 6,7 (1 = Monday); NULL = every day');
    t.string('start_time', 5).notNullable().comment('HH:MM');
    t.string('end_time', 5).notNullable().comment('HH:MM; before start_time = crosses midnight');
    t.string('date_from', 10).nullable().comment('YYYY-MM-DD; NULL = open');
    t.string('date_to', 10).nullable().comment('YYYY-MM-DD; NULL = open');
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'schedule_slots');
  await dropTable(knex, 'schedules');
}
