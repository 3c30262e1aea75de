/**
 * The callers of the daemon-* captures, typing as they did (daemon-cases.freeswitch-log.txt),
 * against the whole daemon and the stand-in at the prompt lengths real FreeSWITCH played
 * (timeScale 0.5: a 9.3 s greeting takes 4.65 s; at 0.1 the daemon had under 300 ms of real time
 * to start its re-prompt before the caller's next keys, and a loaded machine missed it by chance).
 * What failed with the first release now works:
 * the IVR caller's 1 typed during "invalid entry", the switchboard caller's 802# typed during
 * it, a PIN typed over the greeting, a menu choice typed over the greeting.
 */
import t from 'tap';
import type { Knex } from 'knex';
import { placeCall, type CallScript } from '../peer/fake-freeswitch';
import { systemPromptMs } from '../peer/fixtures';
import { startTestDaemon, tempSqliteUrl, type TestDaemon } from '../helpers/daemon';
import { apps } from './helpers';

const SCALE = 0.5;
const SOUNDS = '/sounds/hotline';
/** FreeSWITCH ms of the rendered system prompts (sox), as the captures played them. */
const PROMPT_MS = systemPromptMs(SOUNDS);

async function seed(knex: Knex): Promise<void> {
  const tenant = async (name: string, extra: Record<string, unknown> = {}): Promise<number> =>
    (await knex('tenants').insert({ name, status: 'active', timezone: 'Asia/Shanghai', caller_memory_hours: 0, ...extra }))[0];
  const group = async (tenantId: number, phone: string): Promise<number> => {
    const [g] = await knex('destination_groups').insert({ tenant_id: tenantId, name: phone, strategy: 'sequential', max_queue: 0, queue_timeout_s: 0 });
    await knex('destinations').insert({ group_id: g, number: phone, position: 1, weight: 1, enabled: 1 });
    return g;
  };
  const ivr = await tenant('IVR Co');
  await knex('access_numbers').insert({ number: '4001010003', tenant_id: ivr, kind: 'hotline', enabled: 1 });
  const [menu] = await knex('ivr_menus').insert({ tenant_id: ivr, name: 'main', digits: 1, timeout_s: 5, max_retries: 2 });
  await knex('ivr_options').insert({ menu_id: menu, digits: '1', action: 'group', target_id: await group(ivr, '13800003001') });
  await knex('routing_rules').insert({ tenant_id: ivr, priority: 1, percent: 100, action: 'ivr', target_id: menu, enabled: 1 });

  const sb = await tenant('总机公司');
  await knex('access_numbers').insert({ number: '02088880000', tenant_id: sb, kind: 'switchboard', enabled: 1 });
  const [ext] = await knex('extensions').insert({ tenant_id: sb, ext: '802', name: '李四', voicemail_enabled: 0 });
  await knex('extension_phones').insert({ extension_id: ext, number: '13800008020', position: 1 });

  const pin = await tenant('PIN Co', { pin: '4321', pin_max_attempts: 3 });
  await knex('access_numbers').insert({ number: '4001010001', tenant_id: pin, kind: 'hotline', enabled: 1 });
  await knex('routing_rules').insert({ tenant_id: pin, priority: 1, percent: 100, action: 'group', target_id: await group(pin, '13800000102'), enabled: 1 });
}

t.test('callers typing over prompts', async (t) => {
  const d: TestDaemon = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  await seed(d.knex);
  await d.daemon.store.poll();
  const call = async (script: Partial<CallScript> & { destination: string; caller: string }) => {
    const record = await placeCall(d.port, { promptMs: PROMPT_MS, timeScale: SCALE, defaultLeg: { result: 'answer', talkMs: 100 }, ...script });
    return { c: record, cdr: await d.cdr(record.uuid) };
  };

  t.test('IVR: 9 (no such option) at 3.02 s, then 1 at 5.94 s during "invalid entry": option 1 answers', async (t) => {
    const { c, cdr } = await call({ caller: '13930009003', destination: '4001010003', timeline: { keys: [{ atMs: 3020, keys: '9' }, { atMs: 5940, keys: '1' }] } });
    t.match(cdr, { outcome: 'answered', answered_by: '13800003001', ivr_path: '1' });
    t.same(c.keys.filter((k) => k.fate !== 'queued').map((k) => `${k.key}:${k.fate}`), ['9:collected', '1:collected'], 'no key lost');
    t.notOk(apps(c).some((a) => a.startsWith('playback')), 'nothing the caller could type over was played by playback');
  });

  t.test('IVR: a caller who knows the menu keys 1 two seconds into the greeting', async (t) => {
    const { c, cdr } = await call({ caller: '13930009013', destination: '4001010003', timeline: { keys: [{ atMs: 2000, keys: '1' }] } });
    t.match(cdr, { outcome: 'answered', ivr_path: '1' });
    t.ok(c.bridges.length === 1 && c.answeredAtFs !== null, 'bridged');
    t.match(apps(c).find((a) => a.startsWith('play_and_get_digits')), `file_string://${SOUNDS}/welcome.wav!${SOUNDS}/choose_option.wav`);
  });

  t.test('switchboard: 9# (unknown), then 802# typed during "invalid entry": extension 802 answers', async (t) => {
    const { c, cdr } = await call({ caller: '13930009006', destination: '02088880000', timeline: { keys: [{ atMs: 3020, keys: '9#', gapMs: 420 }, { atMs: 6360, keys: '802#', gapMs: 400 }] } });
    t.match(cdr, { outcome: 'answered', answered_by: '13800008020', ivr_path: '9>802' });
    t.same(c.keys.filter((k) => k.fate === 'dropped'), [], 'no key dropped');
  });

  t.test('PIN: 4321 keyed 4 s after answer, over the greeting', async (t) => {
    const { c, cdr } = await call({ caller: '13933339001', destination: '4001010001', timeline: { keys: [{ atMs: 4000, keys: '4321' }] } });
    t.match(cdr, { outcome: 'answered', answered_by: '13800000102' });
    const pagd = apps(c).filter((a) => a.startsWith('play_and_get_digits'));
    t.equal(pagd.length, 1, 'right the first time');
    t.match(pagd[0], `file_string://${SOUNDS}/welcome.wav!${SOUNDS}/enter_pin.wav`);
  });
});
