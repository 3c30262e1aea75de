/**
 * IVR menus alone, against the scripted channel: a caller who knows the menu keys through the
 * greeting; a key typed during "invalid entry" counts (the capture daemon-ivr-key-typed-during-
 * invalid-prompt lost it to `playback` and the caller gave up); a menu without a prompt does not
 * replay the welcome; missing prompt files still let the caller choose.
 */
import path from 'node:path';
import t from 'tap';
import { runMenu } from '../../../src/calls/steps/ivr';
import { metricValue, stepCall, stepWorld, type StepWorld } from './harness';

async function ivrTenant(world: StepWorld, menu: Record<string, unknown> = {}): Promise<{ menuId: number; groupId: number; promptId: number }> {
  const { knex } = world;
  const [tenantId] = await knex('tenants').insert({ name: 'IVR Co', status: 'active', timezone: 'Asia/Shanghai', caller_memory_hours: 0 });
  await knex('access_numbers').insert({ number: '4001010003', tenant_id: tenantId, kind: 'hotline', enabled: 1 });
  const [groupId] = await knex('destination_groups').insert({ tenant_id: tenantId, name: 'sales', strategy: 'sequential', max_queue: 0, queue_timeout_s: 0 });
  const [promptId] = await knex('prompts').insert({ tenant_id: tenantId, name: 'menu', file: path.join(world.systemDir, 'menu-1.wav') });
  const [menuId] = await knex('ivr_menus').insert({ tenant_id: tenantId, name: 'main', digits: 1, timeout_s: 5, max_retries: 2, ...menu });
  await knex('ivr_options').insert({ menu_id: menuId, digits: '1', action: 'group', target_id: groupId });
  await knex('routing_rules').insert({ tenant_id: tenantId, priority: 1, percent: 100, action: 'ivr', target_id: menuId, enabled: 1 });
  return { menuId, groupId, promptId };
}

t.test('a caller who knows the menu keys 1 over the greeting', async (t) => {
  const world = await stepWorld(t);
  const { menuId, groupId } = await ivrTenant(world);
  const { call, channel } = await stepCall(world, '4001010003', { timeline: { keys: [{ atMs: 2000, keys: '1' }] } });
  t.same(await runMenu(call, menuId), { kind: 'hunt', groupId });
  t.same(call.facts.ivrPath, ['1']);
  t.same(channel.ran, ['answer', `play_and_get_digits 1 1 1 5000 # file_string://${world.systemDir}/welcome.wav!${world.systemDir}/choose_option.wav silence_stream://250 hotline_ivr ^[0-9*]{1,1}$ 3000`]);
  t.equal(channel.apps[1].endedAt, 2000, 'chosen the moment the key arrived');
});

t.test('the capture\'s caller: 9 (no such option), then 1 during "invalid entry": option 1', async (t) => {
  const world = await stepWorld(t);
  const { menuId, groupId } = await ivrTenant(world);
  // daemon-cases.freeswitch-log.txt: RECV DTMF 9 3.02 s after answer, 1 at 5.94 s.
  const { call, channel } = await stepCall(world, '4001010003', { timeline: { keys: [{ atMs: 3020, keys: '9' }, { atMs: 5940, keys: '1' }] } });
  t.same(await runMenu(call, menuId), { kind: 'hunt', groupId });
  t.same(call.facts.ivrPath, ['1']);
  const pagd = channel.apps.filter((a) => a.app === 'play_and_get_digits');
  t.equal(pagd.length, 2);
  t.match(pagd[1].arg, `file_string://${world.systemDir}/invalid_entry.wav!${world.systemDir}/choose_option.wav`);
  t.equal(pagd[1].endedAt, 5940, 'the 1 typed during "invalid entry" chose at once');
  t.same(channel.model.keyLog.filter((k) => k.fate !== 'queued').map((k) => `${k.key}:${k.fate}`), ['9:collected', '1:collected']);
});

t.test('a menu with its own prompt plays it after the greeting; one without plays choose_option, not welcome again', async (t) => {
  const world = await stepWorld(t);
  const { menuId, promptId } = await ivrTenant(world);
  await world.knex('ivr_menus').where({ id: menuId }).update({ prompt_id: promptId });
  const own = await stepCall(world, '4001010003', {});
  await runMenu(own.call, menuId);
  t.match(own.channel.ran[1], `file_string://${world.systemDir}/welcome.wav!${world.systemDir}/menu-1.wav `);
  await world.knex('ivr_menus').where({ id: menuId }).update({ prompt_id: null });
  const none = await stepCall(world, '4001010003', {});
  await runMenu(none.call, menuId);
  t.notMatch(none.channel.ran[1], /welcome\.wav!.*welcome\.wav/);
  t.match(none.channel.ran[1], /choose_option\.wav/);
});

t.test('the tenant\'s menu file is missing: the system prompt; every prompt missing: a tone, the caller still chooses', async (t) => {
  const world = await stepWorld(t, { present: ['choose_option'] });
  const { menuId, promptId, groupId } = await ivrTenant(world);
  await world.knex('ivr_menus').where({ id: menuId }).update({ prompt_id: promptId });
  const a = await stepCall(world, '4001010003', { timeline: { keys: [{ atMs: 1000, keys: '1' }] } }, { checkFiles: true });
  t.same(await runMenu(a.call, menuId), { kind: 'hunt', groupId });
  t.match(a.channel.ran[1], ` ${world.systemDir}/choose_option.wav `, 'welcome.wav missing: left out; menu-1.wav missing: choose_option.wav');
  const b = await stepCall(world, '4001010003', { missingDirs: [world.systemDir], timeline: { keys: [{ atMs: 2000, keys: '1' }] } });
  t.same(await runMenu(b.call, menuId), { kind: 'hunt', groupId }, 'FreeSWITCH could open nothing: retried with a tone');
  t.equal(await metricValue(b.metrics, 'hotline_prompts_not_played_total', { application: 'play_and_get_digits' }), 1);
});

t.test('silence: max_retries more tries, then goodbye', async (t) => {
  const world = await stepWorld(t);
  const { menuId } = await ivrTenant(world);
  const { call, channel } = await stepCall(world, '4001010003', {});
  t.same(await runMenu(call, menuId), { kind: 'goodbye' });
  t.equal(channel.ran.filter((a) => a.startsWith('play_and_get_digits')).length, 3);
});

t.test("key 0 chooses its option; an option keyed '#' (refused by the build) does not stop the menu", async (t) => {
  const world = await stepWorld(t);
  const { menuId } = await ivrTenant(world);
  await world.knex('ivr_options').insert([{ menu_id: menuId, digits: '0', action: 'operator' }, { menu_id: menuId, digits: '#', action: 'hangup' }]);
  const { call } = await stepCall(world, '4001010003', { timeline: { keys: [{ atMs: 2000, keys: '0' }] } });
  t.same(call.snapshot.rejected.filter((f) => f.table === 'ivr_options').map((f) => f.column), ['digits'], "the '#' option is a finding");
  t.same(await runMenu(call, menuId), { kind: 'operator' });
  t.same(call.facts.ivrPath, ['0']);
});
