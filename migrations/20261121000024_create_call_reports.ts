// call_reports: 呼叫分析报告, one row per tenant and day or month (re-running replaces it);
// call_report_rows: the same period broken down by caller province and city, hour of day,
// destination number, access number, call type and outcome.
import type { Knex } from 'knex';
import { createTable, dropTable, money, ref, utcDatetime } from './lib/timestamps';

const COUNTS = ['calls', 'answered', 'busy', 'no_answer', 'blocked', 'capped', 'voicemail'] as const;

function counts(t: Knex.CreateTableBuilder): void {
  for (const c of COUNTS) t.integer(c).notNullable().defaultTo(0).comment(c === 'calls' ? 'all calls' : `calls with outcome ${c}`);
  t.bigInteger('talk_seconds').notNullable().defaultTo(0).comment('billsec of answered calls');
  money(t, 'cost').notNullable().defaultTo(0).comment('charged to the tenant');
}

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'call_reports', 'call analysis report per tenant and day or month', (t) => {
    ref(t, 'tenant_id').notNullable().comment('tenants.id');
    t.string('period_kind', 8).notNullable().comment('day | month');
    t.string('period_start', 10).notNullable().comment("YYYY-MM-DD, first day in the tenant's timezone");
    t.string('timezone', 64).notNullable().comment('zone the period was cut in');
    counts(t);
    t.integer('pin_failed').notNullable().defaultTo(0);
    t.integer('announced').notNullable().defaultTo(0);
    t.integer('abandoned').notNullable().defaultTo(0);
    t.integer('failed').notNullable().defaultTo(0);
    t.decimal('avg_talk_seconds', 12, 2).notNullable().defaultTo(0).comment('talk_seconds / answered');
    t.integer('local_calls').notNullable().defaultTo(0);
    t.integer('long_distance_calls').notNullable().defaultTo(0);
    t.integer('mobile_calls').notNullable().defaultTo(0);
    t.integer('international_calls').notNullable().defaultTo(0);
    t.decimal('local_share_percent', 6, 2).notNullable().defaultTo(0).comment('local / (local + long distance) × 100');
    utcDatetime(knex, t, 'generated_at', { defaultNow: true }).comment('UTC');
    t.string('csv_path', 1024).nullable().comment('the CSV export');
    t.unique(['tenant_id', 'period_kind', 'period_start']);
  });
  await createTable(
    knex,
    'call_report_rows',
    'call analysis report breakdowns',
    (t) => {
      ref(t, 'report_id').notNullable().comment('call_reports.id');
      t.string('dimension', 16).notNullable().comment('province | city | hour | destination | access_number | call_type | outcome');
      t.string('item', 64).notNullable().comment('the province, city, hour (00–23), number, call type or outcome');
      counts(t);
      t.unique(['report_id', 'dimension', 'item']);
    },
    { bigId: true },
  );
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'call_report_rows');
  await dropTable(knex, 'call_reports');
}
