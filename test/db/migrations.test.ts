import fs from 'node:fs';
import path from 'node:path';
// Migrations create every table and column of the DBA contract (/work/shared/SCHEMA.md) and
// reverse cleanly, on SQLite and on MariaDB.
import t from 'tap';
import { dbTargets, listTables } from '../helpers/db';
import { migrateDownAll, migrateLatest } from '../../src/db/migrate';

const TIMESTAMPS = ['id', 'created_at', 'updated_at'];

// Hard-coded from SCHEMA.md on purpose: renaming a column must break this test.
const EXPECTED: Record<string, string[]> = {
  tenants: [
    'name', 'status', 'timezone', 'balance', 'pin', 'pin_max_attempts', 'ring_timeout_s', 'record_calls',
    'voicemail_enabled', 'caller_memory_hours', 'missed_call_notify', 'max_calls_day', 'max_calls_month',
    'max_spend_day', 'max_spend_month', 'welcome_prompt_id', 'after_hours_prompt_id', 'ringback_prompt_id',
    'business_hours_schedule_id', 'operator_group_id',
    // Added by the daemon (SCHEMA.md allows new columns): screening and PIN lockout policy.
    'anonymous_callers', 'blocked_action', 'blocked_prompt_id', 'pin_lockout_failures', 'pin_lockout_minutes',
  ],
  access_numbers: ['number', 'tenant_id', 'kind', 'enabled', 'home_area_code'],
  destination_groups: [
    'tenant_id', 'name', 'strategy', 'ring_timeout_s', 'max_queue', 'queue_timeout_s', 'failover_group_id',
  ],
  destinations: ['group_id', 'number', 'position', 'weight', 'enabled', 'label'],
  routing_rules: [
    'tenant_id', 'access_number_id', 'priority', 'regions', 'schedule_id', 'percent', 'action', 'target_id', 'enabled',
  ],
  schedules: ['tenant_id', 'name', 'exclude_holidays'],
  schedule_slots: ['schedule_id', 'weekdays', 'start_time', 'end_time', 'date_from', 'date_to'],
  holidays: ['tenant_id', 'day', 'name'],
  call_filters: ['tenant_id', 'list', 'kind', 'value', 'note'],
  ivr_menus: ['tenant_id', 'name', 'prompt_id', 'digits', 'timeout_s', 'max_retries', 'invalid_prompt_id'],
  ivr_options: ['menu_id', 'digits', 'action', 'target_id'],
  extensions: ['tenant_id', 'ext', 'name', 'department', 'voicemail_enabled'],
  extension_phones: ['extension_id', 'number', 'position'],
  prompts: ['tenant_id', 'name', 'file', 'tts_text', 'language'],
  rates: ['tenant_id', 'call_type', 'per_minute', 'increment_s', 'connect_fee'],
  cdrs: [
    'call_uuid', 'tenant_id', 'access_number', 'caller', 'caller_region', 'started_at', 'answered_at', 'ended_at',
    'duration_s', 'billsec', 'outcome', 'hangup_cause', 'answered_by', 'group_id', 'ivr_path', 'cost',
    'recording_path', 'node',
    // Added for billing: how the call was rated, whether admission counted it, the writer batch.
    'call_type', 'admitted', 'write_batch',
    // Click-to-call: origin, widget, how long the visitor rang, the visitor leg's part of cost.
    'origin', 'widget_id', 'visitor_ring_s', 'visitor_cost',
    // Why a call failed inside the daemon (outcome failed).
    'failure_reason',
  ],
  // The daemon's own tables (brief for the DB layer).
  voicemails: ['tenant_id', 'extension_id', 'call_uuid', 'caller', 'file_path', 'duration_s', 'heard'],
  notifications: [
    'tenant_id', 'call_uuid', 'channel', 'recipient', 'payload', 'status', 'attempts', 'next_attempt_at',
    'last_error', 'sent_at',
  ],
  tenant_usage: ['tenant_id', 'period_kind', 'period_start', 'calls', 'spend', 'excess_calls', 'calls_at_recount'],
  pin_lockouts: ['tenant_id', 'caller', 'failures', 'locked_until'],
  group_rotation: ['group_id', 'next_index'],
  // Billing and cron.
  cron_leases: ['job', 'holder', 'last_tick', 'expires_at'],
  cron_runs: ['job', 'node', 'tick', 'started_at', 'ended_at', 'status', 'rows_touched', 'error'],
  capped_tenants: ['tenant_id', 'reason', 'period_start', 'capped_at', 'detail'],
  live_calls: [
    'call_uuid', 'node', 'tenant_id', 'started_at', 'answered_at', 'admitted', 'call_type', 'per_minute', 'increment_s',
    'connect_fee', 'seen_at', 'legs',
  ],
  call_reports: [
    'tenant_id', 'period_kind', 'period_start', 'timezone', 'calls', 'answered', 'busy', 'no_answer', 'blocked', 'capped',
    'voicemail', 'talk_seconds', 'cost', 'pin_failed', 'announced', 'abandoned', 'failed', 'avg_talk_seconds',
    'local_calls', 'long_distance_calls', 'mobile_calls', 'international_calls', 'local_share_percent', 'generated_at',
    'csv_path',
  ],
  call_report_rows: ['report_id', 'dimension', 'item', 'calls', 'answered', 'busy', 'no_answer', 'blocked', 'capped', 'voicemail', 'talk_seconds', 'cost'],
  retention_marks: ['kind', 'done_before'],
  // Report periods that received CDRs after their report was due (spool replays): remade by the reports job.
  report_late_cdrs: ['tenant_id', 'period_kind', 'period_start', 'late_cdrs', 'marked_at'],
  // Click-to-call (网上400): the DBA-edited widgets, the daemon's request state and limit counters.
  click_to_call_widgets: [
    'tenant_id', 'access_number_id', 'public_key', 'allowed_origins', 'enabled', 'max_per_visitor_minute', 'max_per_visitor_day',
    'max_per_widget_minute', 'max_per_widget_day', 'answer_prompt_id', 'caller_id_number', 'allow_international', 'name',
  ],
  click_to_call_requests: [
    'request_id', 'call_uuid', 'widget_id', 'tenant_id', 'access_number', 'visitor_number', 'client_address', 'web_origin', 'status',
    'visitor_result', 'outcome', 'hangup_cause', 'node', 'requested_at', 'visitor_answered_at', 'connected_at', 'ended_at',
    // Set with an attempt's end when the daemon owes its CDR, cleared once spooled (the sweeper rebuilds it).
    'cdr_pending',
  ],
  click_to_call_limits: ['scope', 'subject', 'window_start', 'count', 'expires_at'],
};

/** Number of migration files in migrations/ (each applied once, undone once). */
const MIGRATIONS = fs.readdirSync(path.join(__dirname, '..', '..', 'migrations')).filter((f) => /^\d{14}_.*\.ts$/.test(f)).length;

const BOOKKEEPING = ['knex_migrations', 'knex_migrations_lock'];

for (const target of dbTargets()) {
  void t.test(target.name, async (t) => {
    const db = await target.create({ migrate: false });
    t.teardown(() => db.destroy());
    const { knex } = db;

    const applied = await migrateLatest(knex);
    t.equal(applied.length, MIGRATIONS, 'every migration applied');
    t.notOk(applied.some((name) => /\.(ts|js)$/.test(name)), 'migration names recorded without extension');
    t.same(await migrateLatest(knex), [], 'second run is a no-op');

    t.same(
      await listTables(knex, target.name),
      [...Object.keys(EXPECTED), ...BOOKKEEPING].sort(),
      'exactly the expected tables',
    );
    for (const [table, columns] of Object.entries(EXPECTED)) {
      const info = await knex(table).columnInfo();
      t.same(Object.keys(info).sort(), [...TIMESTAMPS, ...columns].sort(), `${table} columns`);
    }

    const undone = await migrateDownAll(knex);
    t.equal(undone.length, MIGRATIONS, 'every migration undone');
    t.same(await listTables(knex, target.name), BOOKKEEPING, 'down-all leaves no application tables');
    if (target.name === 'sqlite') {
      const triggers: unknown[] = await knex('sqlite_master').where({ type: 'trigger' }).select('name');
      t.same(triggers, [], 'down-all drops the updated_at triggers');
    }

    t.equal((await migrateLatest(knex)).length, MIGRATIONS, 'up again after down-all');
    t.ok(await knex.schema.hasTable('cdrs'));
  });
}
