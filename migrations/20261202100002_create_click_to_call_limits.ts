// click_to_call_limits: request counters shared by every daemon (per visitor number, client
// address and widget, per minute and per day). A request is admitted by conditional UPDATEs
// (count < limit) in one transaction, like tenant_usage for caps, so concurrent daemons can never
// both take the last slot.
import type { Knex } from 'knex';
import { createTable, dropTable, utcDatetime } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(
    knex,
    'click_to_call_limits',
    'click-to-call request counters per visitor, client address and widget (written by the daemon)',
    (t) => {
      t.string('scope', 16).notNullable().comment('visitor_minute | visitor_day | client_minute | client_day | widget_minute | widget_day');
      t.string('subject', 64).notNullable().comment('visitor number, client address or widget id');
      t.string('window_start', 16).notNullable().comment('minute YYYY-MM-DDTHH:MM (UTC) or day YYYY-MM-DD (tenant time zone)');
      t.integer('count').notNullable().defaultTo(0).comment('requests admitted in the window');
      utcDatetime(knex, t, 'expires_at').notNullable().comment('after this (UTC) the row may be deleted');
      t.unique(['scope', 'subject', 'window_start']);
      t.index(['expires_at']);
    },
    { bigId: true },
  );
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'click_to_call_limits');
}
