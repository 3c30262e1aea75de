/**
 * The switchboard alone: an extension typed during "invalid entry" counts (the capture
 * daemon-switchboard-extension-typed-during-invalid-prompt lost 802# to `playback`).
 */
import t from 'tap';
import { switchboard } from '../../../src/calls/steps/switchboard';
import { stepCall, stepWorld, type StepWorld } from './harness';

async function switchboardTenant(world: StepWorld): Promise<number> {
  const { knex } = world;
  const [tenantId] = await knex('tenants').insert({ name: '总机', status: 'active', timezone: 'Asia/Shanghai', caller_memory_hours: 0 });
  await knex('access_numbers').insert({ number: '02088880000', tenant_id: tenantId, kind: 'switchboard', enabled: 1 });
  const [ext] = await knex('extensions').insert({ tenant_id: tenantId, ext: '802', name: '李四', voicemail_enabled: 0 });
  await knex('extension_phones').insert({ extension_id: ext, number: '13877778020', position: 1 });
  return ext;
}

t.test('the capture\'s caller: 9# (unknown), then 802# during "invalid entry": extension 802', async (t) => {
  const world = await stepWorld(t);
  const ext = await switchboardTenant(world);
  // daemon-cases.freeswitch-log.txt: 9 at 3.02 s, # at 3.44 s; 8 0 2 # from 6.36 s, 400 ms apart.
  const { call, channel } = await stepCall(world, '02088880000', { timeline: { keys: [{ atMs: 3020, keys: '9#', gapMs: 420 }, { atMs: 6360, keys: '802#', gapMs: 400 }] } });
  t.same(await switchboard(call), { kind: 'extension', extensionId: ext });
  t.same(call.facts.ivrPath, ['9', '802']);
  const pagd = channel.apps.filter((a) => a.app === 'play_and_get_digits');
  t.match(pagd[0].arg, `file_string://${world.systemDir}/welcome.wav!${world.systemDir}/enter_extension.wav`);
  t.match(pagd[1].arg, `file_string://${world.systemDir}/invalid_entry.wav!${world.systemDir}/enter_extension.wav`);
  t.equal(pagd[1].endedAt, 6360 + 3 * 400, 'ended by the # typed during "invalid entry"');
});

t.test('0 is the operator; silence three times is goodbye', async (t) => {
  const world = await stepWorld(t);
  await switchboardTenant(world);
  const zero = await stepCall(world, '02088880000', { timeline: { keys: [{ atMs: 1000, keys: '0#' }] } });
  t.same(await switchboard(zero.call), { kind: 'operator' });
  const quiet = await stepCall(world, '02088880000', {});
  t.same(await switchboard(quiet.call), { kind: 'goodbye' });
  t.equal(quiet.channel.ran.filter((a) => a.startsWith('play_and_get_digits')).length, 3);
});

t.test('a caller who hangs up halfway through an extension chose nothing: no ivr_path', async (t) => {
  const world = await stepWorld(t);
  await switchboardTenant(world);
  // 8 and 0 of 802, then the caller hangs up before the 3 s inter-digit timeout. FreeSWITCH's
  // switch_ivr_read sets read_result=failure but still leaves the keys in the variable
  // (switch_ivr_play_say.c: `if (var_name && !zstr(digit_buffer))` after the collection failed;
  // play_and_get_digits only unsets it for a regexp miss): what the completion carries is not
  // an entry (M4).
  const { call, channel } = await stepCall(world, '02088880000', { timeline: { keys: [{ atMs: 3000, keys: '80' }], hangupAtMs: 4000 } });
  const action = await switchboard(call).catch((err: unknown) => err);
  t.equal(action, null, 'nothing to do for a caller who left');
  t.same(call.facts.ivrPath, [], 'no key in the CDR\'s ivr_path');
  t.equal(channel.model.vars.hotline_extension, '80', 'sanity: FreeSWITCH left the keys in the variable');
});
