/**
 * A prompt given as text (prompts.tts_text) is rendered ahead of time with espeak-ng and played
 * as a WAV; until it is ready the call hears the system prompt instead — never silence.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { placeCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

t.test('welcome prompt from tts_text', async (t) => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-tts-'));
  const d = await startTestDaemon(tempSqliteUrl(), { tts: { cacheDir } });
  t.teardown(async () => {
    await d.stop();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });
  const [promptId] = await d.knex('prompts').insert({ tenant_id: 1, name: 'welcome', tts_text: '欢迎致电演示贸易公司' });
  await d.knex('tenants').where({ id: 1 }).update({ welcome_prompt_id: promptId });
  await d.daemon.store.poll();
  const deadline = Date.now() + 20_000;
  while (!fs.readdirSync(cacheDir).some((f) => f.endsWith('.wav'))) {
    if (Date.now() > deadline) throw new Error('the TTS prompt was not rendered within 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const wav = fs.readdirSync(cacheDir).find((f) => f.endsWith('.wav'))!;
  t.ok(fs.statSync(path.join(cacheDir, wav)).size > 1000, 'a WAV with audio in it');
  const call = await placeCall(d.port, { caller: '13912345678', destination: '4001012345', defaultLeg: { result: 'answer' } });
  const first = call.commands.find((c) => c.headers['execute-app-name'] === 'playback');
  t.equal(first?.body, path.join(cacheDir, wav), 'the rendered file is played as the welcome prompt');
});
