// click_to_call_widgets: the "网上400" buttons a tenant pastes into its web site. DBAs edit it by
// hand like every configuration table; the daemon validates each row (src/snapshot/widgets.ts)
// and `npm run config:lint` lists the ones it skips.
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'click_to_call_widgets', 'click-to-call (网上400) widgets on the web sites of tenants', (t) => {
    ref(t, 'tenant_id').notNullable().comment('tenants.id');
    ref(t, 'access_number_id').notNullable().comment('access_numbers.id the call counts as a call to (same tenant)');
    t.string('public_key', 64).notNullable().unique().comment('the key in the snippet (8-64 of A-Z a-z 0-9 _ -); public, not a secret');
    t.string('allowed_origins', 2000).nullable().comment('comma-separated web origins, e.g. https://www.example.com,https://m.example.com; empty/NULL = any');
    t.boolean('enabled').notNullable().defaultTo(1).comment('0/1');
    t.integer('max_per_visitor_minute').notNullable().defaultTo(1).comment('calls to one visitor number per minute');
    t.integer('max_per_visitor_day').notNullable().defaultTo(5).comment('calls to one visitor number per day (tenant\'s time zone)');
    t.integer('max_per_widget_minute').nullable().comment('calls through this widget per minute; NULL = no limit');
    t.integer('max_per_widget_day').nullable().comment('calls through this widget per day (tenant\'s time zone); NULL = no limit');
    ref(t, 'answer_prompt_id').nullable().comment('prompts.id the visitor hears on answer; NULL = system ringback.wav ("connecting you")');
    t.string('caller_id_number', 32).nullable().comment('number the visitor\'s phone shows; NULL = the access number');
    t.boolean('allow_international').notNullable().defaultTo(0).comment('0/1: may call visitor numbers outside +86');
    t.string('name', 200).nullable().comment('free text for people, e.g. the site it is on');
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'click_to_call_widgets');
}
