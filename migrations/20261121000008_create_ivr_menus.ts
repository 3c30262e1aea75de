// ivr_menus and their options (digits -> action).
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'ivr_menus', 'voice menus', (t) => {
    ref(t, 'tenant_id').notNullable().index().comment('tenants.id');
    t.string('name', 255).notNullable().comment('menu name');
    ref(t, 'prompt_id').nullable().comment('prompts.id played as the menu');
    t.integer('digits').notNullable().defaultTo(1).comment('how many digits this level expects');
    t.integer('timeout_s').notNullable().defaultTo(5).comment('wait for input');
    t.integer('max_retries').notNullable().defaultTo(3).comment('replays on timeout or invalid input');
    ref(t, 'invalid_prompt_id').nullable().comment('prompts.id on invalid input; NULL = system default');
  });
  await createTable(knex, 'ivr_options', 'choices of a voice menu', (t) => {
    ref(t, 'menu_id').notNullable().index().comment('ivr_menus.id');
    t.string('digits', 16).notNullable().comment('keys pressed, e.g. 1 or 801');
    t.string('action', 16).notNullable()
      .comment('group | menu | extension | switchboard | voicemail | operator | announce | repeat | hangup');
    ref(t, 'target_id').nullable().comment('group, menu, extension or prompt id the action needs');
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'ivr_options');
  await dropTable(knex, 'ivr_menus');
}
