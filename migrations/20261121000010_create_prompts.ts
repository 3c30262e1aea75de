// prompts: audio files or TTS texts played to callers.
import type { Knex } from 'knex';
import { createTable, dropTable, ref } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'prompts', 'announcements: audio file or TTS text', (t) => {
    ref(t, 'tenant_id').nullable().index().comment('tenants.id; NULL = system prompt');
    t.string('name', 255).notNullable().comment('prompt name');
    t.string('file', 1024).nullable().comment('path FreeSWITCH can play');
    t.text('tts_text').nullable().comment('text spoken by TTS when file is NULL');
    t.string('language', 16).notNullable().defaultTo('zh-CN').comment('e.g. zh-CN, en-US');
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'prompts');
}
