// cdrs: exactly one row per call, written by the daemon (idempotent by call_uuid).
import type { Knex } from 'knex';
import { createTable, dropTable, money, ref, utcDatetime } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(
    knex,
    'cdrs',
    'call detail records, one per call',
    (t) => {
      t.string('call_uuid', 64).notNullable().unique().comment('FreeSWITCH call UUID; replays are ignored');
      ref(t, 'tenant_id').nullable().comment('tenants.id; NULL = unknown access number');
      t.string('access_number', 32).nullable().comment('number dialed');
      t.string('caller', 64).nullable().comment('caller number');
      t.string('caller_region', 64).nullable().comment('province/city resolved from the caller');
      utcDatetime(knex, t, 'started_at').notNullable().comment('call arrived (UTC)');
      utcDatetime(knex, t, 'answered_at').comment('callee answered (UTC); NULL = never');
      utcDatetime(knex, t, 'ended_at').comment('call ended (UTC)');
      t.integer('duration_s').notNullable().defaultTo(0).comment('seconds from start to end');
      t.integer('billsec').notNullable().defaultTo(0).comment('seconds from answer to end');
      t.string('outcome', 16).notNullable()
        .comment('answered | voicemail | busy | no_answer | blocked | capped | pin_failed | announced | abandoned | failed');
      t.string('hangup_cause', 64).nullable().comment('FreeSWITCH hangup cause');
      t.string('answered_by', 64).nullable().comment('number that answered');
      ref(t, 'group_id').nullable().comment('destination_groups.id that handled the call');
      t.string('ivr_path', 255).nullable().comment('digits chosen through the menus');
      money(t, 'cost').notNullable().defaultTo(0).comment('charged to the tenant');
      t.string('recording_path', 1024).nullable().comment('recording file; NULL = not recorded');
      t.string('node', 64).nullable().comment('daemon / FreeSWITCH node that handled the call');
      t.index(['tenant_id', 'started_at']);
      t.index(['started_at']);
      t.index(['caller', 'tenant_id', 'answered_at']); // caller memory: last answered call of a caller
    },
    { bigId: true },
  );
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'cdrs');
}
