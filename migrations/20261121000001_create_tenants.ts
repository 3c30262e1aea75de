// tenants: one business customer. Defaults and meanings come from /work/shared/SCHEMA.md.
import type { Knex } from 'knex';
import { createTable, dropTable, money, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'tenants', 'business customers owning access numbers', (t) => {
    t.string('name', 255).notNullable().comment('company name');
    // Enum-like columns are plain strings: the daemon validates and reports bad values.
    t.string('status', 16).notNullable().defaultTo('active').comment('active | suspended | closed');
    t.string('timezone', 64).notNullable().defaultTo('Asia/Shanghai').comment('IANA zone for schedules, caps and reports');
    money(t, 'balance').nullable().comment('prepaid balance; NULL = postpaid');
    t.string('pin', 16).nullable().comment('access PIN digits; NULL = no PIN');
    t.integer('pin_max_attempts').notNullable().defaultTo(3).comment('PIN tries per call');
    t.integer('ring_timeout_s').notNullable().defaultTo(15).comment('default per-leg ring timeout, at most 60');
    t.boolean('record_calls').notNullable().defaultTo(0).comment('0/1 record every call');
    t.boolean('voicemail_enabled').notNullable().defaultTo(0).comment('0/1 voicemail when nobody answers');
    t.integer('caller_memory_hours').notNullable().defaultTo(24).comment('0 = off');
    t.string('missed_call_notify', 255).nullable().comment('phone or e-mail for missed calls; NULL = none');
    t.integer('max_calls_day').nullable().comment('cap; NULL = none');
    t.integer('max_calls_month').nullable().comment('cap; NULL = none');
    money(t, 'max_spend_day').nullable().comment('cap; NULL = none');
    money(t, 'max_spend_month').nullable().comment('cap; NULL = none');
    ref(t, 'welcome_prompt_id').nullable().comment('prompts.id; NULL = system default');
    ref(t, 'after_hours_prompt_id').nullable().comment('prompts.id; NULL = system default');
    ref(t, 'ringback_prompt_id').nullable().comment('prompts.id; NULL = system default');
    ref(t, 'business_hours_schedule_id').nullable().comment('schedules.id defining in hours; NULL = always');
    ref(t, 'operator_group_id').nullable().comment('destination_groups.id for "0 for the operator"; NULL = none');
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'tenants');
}
