// Columns the call flow needs beyond the DBA contract: the access number's home area (local vs
// long-distance), and how a tenant treats withheld callers and blocked calls.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('access_numbers', (t) => {
    t.string('home_area_code', 8).nullable().comment("area code the number is local to, e.g. 010; NULL = derived from a switchboard number, none for 400");
  });
  await knex.schema.alterTable('tenants', (t) => {
    t.string('anonymous_callers', 8).notNullable().defaultTo('allow').comment('allow | block: callers without a usable number');
    t.string('blocked_action', 8).notNullable().defaultTo('announce').comment('announce | silent: what a blocked or capped caller gets');
    t.integer('blocked_prompt_id').nullable().comment('prompts.id played to blocked callers; NULL = system blocked.wav');
    t.integer('pin_lockout_failures').notNullable().defaultTo(5).comment('failed PIN calls from one caller before a lockout; 0 = never lock');
    t.integer('pin_lockout_minutes').notNullable().defaultTo(30).comment('how long a caller stays locked out');
  });
}

export async function down(knex: Knex): Promise<void> {
  // Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+ and MySQL): knex's SQLite dropColumn copies the
  // table, which would drop its updated_at trigger.
  for (const column of ['pin_lockout_minutes', 'pin_lockout_failures', 'blocked_prompt_id', 'blocked_action', 'anonymous_callers']) {
    await knex.raw(`ALTER TABLE tenants DROP COLUMN ${column}`);
  }
  await knex.raw('ALTER TABLE access_numbers DROP COLUMN home_area_code');
}
