// notifications: one message per call and channel, so a replayed CDR never queues a second one
// (queueMissedCall inserts with ON CONFLICT DO NOTHING / a no-op ON DUPLICATE KEY UPDATE on it).
// Rows without a call_uuid (NULL) stay unconstrained on both databases.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('notifications', (t) => {
    t.unique(['call_uuid', 'channel'], { indexName: 'notifications_call_uuid_channel_unique' });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('notifications', (t) => {
    t.dropUnique(['call_uuid', 'channel'], 'notifications_call_uuid_channel_unique');
  });
}
