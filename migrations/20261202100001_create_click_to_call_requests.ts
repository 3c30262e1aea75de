// click_to_call_requests: one row per accepted click (written by the daemon), so any daemon can
// answer GET /v1/click-to-call/:id and the state survives restarts. status moves forward only:
// dialing → visitor_answered → connecting → connected → ended (conditional UPDATEs).
import type { Knex } from 'knex';
import { createTable, dropTable, ref, utcDatetime } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(
    knex,
    'click_to_call_requests',
    'click-to-call requests and where each call is (written by the daemon)',
    (t) => {
      t.string('request_id', 36).notNullable().unique().comment('public id returned to the web page (random UUID)');
      t.string('call_uuid', 36).notNullable().unique().comment('origination_uuid of the visitor leg = cdrs.call_uuid');
      ref(t, 'widget_id').notNullable().comment('click_to_call_widgets.id');
      ref(t, 'tenant_id').notNullable().comment('tenants.id');
      t.string('access_number', 32).notNullable().comment('the access number the call counts as');
      t.string('visitor_number', 32).notNullable().comment('the number dialled for the visitor');
      t.string('client_address', 64).nullable().comment('IP address the request came from');
      t.string('web_origin', 255).nullable().comment('Origin header of the request');
      t.string('status', 20).notNullable().defaultTo('dialing').comment('dialing | visitor_answered | connecting | connected | ended');
      t.string('visitor_result', 16).nullable().comment('answered | busy | no_answer | unreachable | failed; NULL while ringing');
      t.string('outcome', 16).nullable().comment('the CDR outcome once ended');
      t.string('hangup_cause', 64).nullable().comment('FreeSWITCH cause (originate -ERR cause for an unanswered visitor)');
      t.string('node', 64).nullable().comment('daemon that accepted the request');
      utcDatetime(knex, t, 'requested_at', { defaultNow: true }).comment('click received (UTC)');
      utcDatetime(knex, t, 'visitor_answered_at').comment('visitor picked up (UTC)');
      utcDatetime(knex, t, 'connected_at').comment('an agent answered (UTC)');
      utcDatetime(knex, t, 'ended_at').comment('call over (UTC)');
      t.index(['status', 'requested_at']);
    },
    { bigId: true },
  );
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'click_to_call_requests');
}
