// notifications: outbox of SMS / e-mail messages, retried by housekeeping.
import type { Knex } from 'knex';
import { createTable, dropTable, ref, utcDatetime } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(
    knex,
    'notifications',
    'outbox of missed-call notifications',
    (t) => {
      ref(t, 'tenant_id').notNullable().index().comment('tenants.id');
      t.string('call_uuid', 64).nullable().comment('cdrs.call_uuid the message is about');
      t.string('channel', 8).notNullable().comment('sms | email');
      t.string('recipient', 255).notNullable().comment('phone number or e-mail address');
      t.text('payload').notNullable().comment('JSON text');
      t.string('status', 8).notNullable().defaultTo('pending').comment('pending | sent | failed');
      t.integer('attempts').notNullable().defaultTo(0).comment('delivery attempts so far');
      utcDatetime(knex, t, 'next_attempt_at', { defaultNow: true }).comment('due time of the next attempt (UTC)');
      t.text('last_error').nullable().comment('error of the last failed attempt');
      utcDatetime(knex, t, 'sent_at').comment('delivered (UTC)');
      t.index(['status', 'next_attempt_at']);
    },
    { bigId: true },
  );
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'notifications');
}
