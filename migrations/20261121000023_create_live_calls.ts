// live_calls: every daemon publishes the calls it controls (each minute, and they leave with their
// CDR), so that the caps job on any daemon counts calls in flight and their running cost.
import type { Knex } from 'knex';
import { createTable, dropTable, money, ref, utcDatetime } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'live_calls', 'calls in progress, as published by the daemon controlling each', (t) => {
    t.string('call_uuid', 64).notNullable().unique().comment('FreeSWITCH call UUID (cdrs.call_uuid once it ends)');
    t.string('node', 64).notNullable().comment('daemon controlling the call');
    ref(t, 'tenant_id').notNullable().comment('tenants.id');
    utcDatetime(knex, t, 'started_at').notNullable().comment('call arrived (UTC)');
    utcDatetime(knex, t, 'answered_at').nullable().comment('UTC; NULL = not answered yet');
    t.boolean('admitted').notNullable().defaultTo(1).comment('1 = counted in tenant_usage.calls');
    t.string('call_type', 16).nullable().comment('as rated');
    money(t, 'per_minute').nullable().comment('rate in force; NULL = free');
    t.integer('increment_s').nullable().comment('rate increment');
    money(t, 'connect_fee').nullable().comment('rate connect fee');
    utcDatetime(knex, t, 'seen_at').notNullable().comment('last time the daemon published it (UTC); stale rows are ignored');
    t.index(['tenant_id']);
    t.index(['node']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'live_calls');
}
