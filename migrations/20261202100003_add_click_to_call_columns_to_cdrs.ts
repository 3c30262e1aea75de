// What a CDR says about a click-to-call: that it was one (origin), through which widget, how long
// the visitor's phone rang, and what the outgoing visitor leg cost (already inside cdrs.cost,
// which is what the tenant pays for both legs).
import type { Knex } from 'knex';
import { money } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('cdrs', (t) => {
    t.string('origin', 16).notNullable().defaultTo('dialled').comment('dialled (the caller dialled the number) | click_to_call (the platform called the visitor)');
    t.integer('widget_id').nullable().comment('click_to_call_widgets.id; NULL unless origin = click_to_call');
    t.integer('visitor_ring_s').nullable().comment('seconds the visitor leg rang before it answered or failed');
    money(t, 'visitor_cost').nullable().comment('part of cost for the outgoing visitor leg (click_to_call only)');
  });
}

export async function down(knex: Knex): Promise<void> {
  // Plain DROP COLUMN: knex's SQLite dropColumn copies the table and loses its updated_at trigger.
  for (const column of ['visitor_cost', 'visitor_ring_s', 'widget_id', 'origin']) await knex.raw(`ALTER TABLE cdrs DROP COLUMN ${column}`);
}
