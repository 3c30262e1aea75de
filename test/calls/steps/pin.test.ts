/**
 * The PIN step alone, against the scripted channel (FreeSWITCH's rules, virtual time): keys typed
 * over the greeting and over "wrong PIN" count; a prompt folder FreeSWITCH cannot read never
 * turns into a rejected caller (the capture daemon-pin-prompt-file-missing: CALL_REJECTED in
 * 0.9 s, the caller never heard a prompt).
 */
import path from 'node:path';
import t from 'tap';
import { MISSING_PROMPT_TONE } from '../../../src/calls/prompt-player';
import { checkPin } from '../../../src/calls/steps/pin';
import { metricValue, stepCall, stepWorld, type StepWorld } from './harness';

async function pinTenant(world: StepWorld, pin = '4321'): Promise<void> {
  const [tenantId] = await world.knex('tenants').insert({ name: 'PIN Co', status: 'active', timezone: 'Asia/Shanghai', pin, pin_max_attempts: 3, caller_memory_hours: 0 });
  await world.knex('access_numbers').insert({ number: '4001010001', tenant_id: tenantId, kind: 'hotline', enabled: 1 });
}

t.test('a caller who knows the PIN keys it over the greeting', async (t) => {
  const world = await stepWorld(t);
  await pinTenant(world);
  const { call, channel } = await stepCall(world, '4001010001', { timeline: { keys: [{ atMs: 2000, keys: '4321' }] } });
  t.equal(await checkPin(call), true);
  const sys = (n: string): string => path.join(world.systemDir, `${n}.wav`);
  t.same(channel.ran, ['answer', `play_and_get_digits 4 17 1 6000 # file_string://${sys('welcome')}!${sys('enter_pin')} silence_stream://250 hotline_pin ^\\d{4}$ 3000`]);
  const pagd = channel.apps[1];
  t.ok(pagd.endedAt < 9285, `done ${pagd.endedAt} ms after answer, before the 9.3 s greeting would have ended`);
  t.same(channel.model.keyLog.filter((k) => k.fate !== 'queued').map((k) => k.fate), ['collected', 'collected', 'collected', 'collected']);
});

t.test('a wrong PIN, then the right one typed over "wrong PIN"', async (t) => {
  const world = await stepWorld(t);
  await pinTenant(world);
  // 1111 without # ends the first try at 5.2 s (the 3 s inter-digit timeout after the last 1 at
  // 2.2 s); 4321 typed from 7 s, during wrong_pin.wav (8.5 s).
  const { call, channel } = await stepCall(world, '4001010001', { timeline: { keys: [{ atMs: 1000, keys: '1111' }, { atMs: 7000, keys: '4321' }] } });
  t.equal(await checkPin(call), true);
  const pagd = channel.ran.filter((a) => a.startsWith('play_and_get_digits'));
  t.equal(pagd.length, 2);
  t.match(pagd[1], `file_string://${world.systemDir}/wrong_pin.wav!${world.systemDir}/enter_pin.wav`);
  t.notOk(channel.ran.some((a) => a.startsWith('playback')), 'no prompt played by playback (it would drop the keys)');
});

t.test('FreeSWITCH cannot open any prompt, the daemon cannot see the folder: a tone, and the caller still keys the PIN', async (t) => {
  const world = await stepWorld(t);
  await pinTenant(world);
  const { call, channel, metrics } = await stepCall(world, '4001010001', {
    missingDirs: [world.systemDir],
    // As in the capture: the caller keys 4321 4 s after answer, 400 ms apart.
    timeline: { keys: [{ atMs: 4000, keys: '4321' }] },
  });
  t.equal(await checkPin(call), true, 'the caller got through');
  const pagd = channel.apps.filter((a) => a.app === 'play_and_get_digits');
  t.equal(pagd.length, 2);
  t.ok(pagd[0].endedAt - pagd[0].startedAt < 1000, 'the first came back at once (missing prompt)');
  t.match(pagd[1].arg, ` ${MISSING_PROMPT_TONE} `, 'asked again with a tone: the full time to key');
  t.equal(await metricValue(metrics, 'hotline_prompts_not_played_total', { application: 'play_and_get_digits' }), 1);
  t.equal(call.facts.outcome, 'failed', 'nothing rejected the caller (the outcome is for later steps)');
});

t.test('prompt files missing and the daemon knows (PROMPTS_SAME_FILESYSTEM): the tone at once', async (t) => {
  const world = await stepWorld(t, { present: ['welcome'] });
  await pinTenant(world);
  const { call, channel, metrics } = await stepCall(world, '4001010001', { missingFiles: [path.join(world.systemDir, 'enter_pin.wav')], timeline: { keys: [{ atMs: 4000, keys: '4321' }] } }, { checkFiles: true });
  t.equal(await checkPin(call), true);
  const pagd = channel.ran.filter((a) => a.startsWith('play_and_get_digits'));
  t.equal(pagd.length, 1, 'no failed try');
  t.match(pagd[0], `file_string://${world.systemDir}/welcome.wav!${MISSING_PROMPT_TONE} `, 'the greeting that exists, then the tone for the missing prompt');
  t.ok((await metricValue(metrics, 'hotline_prompt_files_missing')) > 0, 'the gauge counts the missing files');
  t.equal(await metricValue(metrics, 'hotline_prompts_not_played_total', { application: 'play_and_get_digits' }), 0);
});

t.test('three wrong PINs: pin_failed.wav, CALL_REJECTED, the failure recorded', async (t) => {
  const world = await stepWorld(t);
  await pinTenant(world);
  const { call, channel } = await stepCall(world, '4001010001', { timeline: { keys: [{ atMs: 1000, keys: '1111' }, { atMs: 4000, keys: '2222' }, { atMs: 15000, keys: '3333' }] } });
  t.equal(await checkPin(call), false);
  t.equal(call.facts.outcome, 'pin_failed');
  t.same(channel.ran.slice(-2), [`playback ${world.systemDir}/pin_failed.wav`, 'hangup CALL_REJECTED']);
  const row: { failures: number } | undefined = await world.knex('pin_lockouts').first('failures');
  t.equal(Number(row?.failures), 1);
});

t.test('a caller who ends each PIN with # as enter_pin.wav asks: the # is not left to end the next try', async (t) => {
  // enter_pin.wav says "followed by the hash key". play_and_get_digits stops collecting at
  // <max> digits (switch_ivr_play_say.c switch_ivr_read → switch_ivr_collect_digits_count), so
  // with max = the PIN's length the # stays in the DTMF queue: the next play_and_get_digits takes
  // it as the first key of its prompt, as a terminator, with no digits (M4) — a try lost.
  const world = await stepWorld(t);
  await pinTenant(world);
  // Two wrong PINs, then the right one: three tries, as pin_max_attempts allows.
  const { call, channel } = await stepCall(world, '4001010001', {
    timeline: { keys: [{ atMs: 1000, keys: '1111#' }, { atMs: 6000, keys: '2222#' }, { atMs: 12_000, keys: '4321#' }] },
  });
  t.equal(await checkPin(call), true, 'the third PIN the caller keyed is the right one');
  t.equal(call.facts.outcome, 'failed', 'not pin_failed (the outcome is for later steps)');
  t.equal(channel.ran.filter((a) => a.startsWith('play_and_get_digits')).length, 3, 'one try per PIN keyed');
  t.same(channel.model.keyLog.filter((k) => k.key === '#').map((k) => k.fate).filter((f) => f !== 'queued'), ['collected', 'collected', 'collected'], 'each # ended its own PIN');
});

t.test('the # after the right PIN does not reach the next prompt', async (t) => {
  const world = await stepWorld(t);
  await pinTenant(world);
  const { call, channel } = await stepCall(world, '4001010001', { timeline: { keys: [{ atMs: 2000, keys: '4321#' }] } });
  t.equal(await checkPin(call), true);
  const pagd = channel.apps.find((a) => a.app === 'play_and_get_digits')!;
  t.equal(pagd.endedAt, 3600, 'the PIN ended with its #, not before it');
});
