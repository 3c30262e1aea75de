/** Voicemail alone: a message is recorded and kept; `#` ends it; a caller who leaves at once leaves nothing. */
import t from 'tap';
import { CallHungUpError } from '../../../src/esl/errors';
import { leaveVoicemail, messageMs, unkeptOutcome } from '../../../src/calls/steps/voicemail';
import { stepCall, stepWorld, type StepWorld } from './harness';

async function vmTenant(world: StepWorld): Promise<number> {
  const [tenantId] = await world.knex('tenants').insert({ name: 'VM Co', status: 'active', timezone: 'Asia/Shanghai', voicemail_enabled: 1, caller_memory_hours: 0 });
  await world.knex('access_numbers').insert({ number: '4001010005', tenant_id: tenantId, kind: 'hotline', enabled: 1 });
  await world.knex('routing_rules').insert({ tenant_id: tenantId, priority: 1, percent: 100, action: 'voicemail', target_id: null, enabled: 1 });
  return tenantId;
}

t.test('a message recorded and kept, # ends it early', async (t) => {
  const world = await stepWorld(t);
  const tenantId = await vmTenant(world);
  // leave_message.wav is 12.3 s; the caller speaks for 30 s but presses # at 25 s.
  const { call, channel } = await stepCall(world, '4001010005', { recordSeconds: 30, timeline: { keys: [{ atMs: 25_000, keys: '#' }] } });
  t.equal(await leaveVoicemail(call, null), null);
  t.equal(call.facts.outcome, 'voicemail');
  const rec = channel.apps.find((a) => a.app === 'record')!;
  t.match(rec.arg, /^\/rec\/\d+\/\d{4}-\d{2}-\d{2}\/[0-9a-f-]{36}-vm\.wav 120 200 5$/);
  // record makes no folder and hangs up on a file it cannot open (M11): the day's folder comes first.
  const names = channel.apps.map((a) => a.app);
  t.equal(channel.apps[names.indexOf('record') - 1]?.app, 'mkdir', 'mkdir right before record');
  t.equal(channel.apps[names.indexOf('record') - 1]?.arg, rec.arg.split(' ')[0].replace(/\/[^/]+$/, ''), 'of the message\'s folder');
  const row: { duration_s: number; tenant_id: number } | undefined = await world.knex('voicemails').where({ call_uuid: channel.uuid }).first('duration_s', 'tenant_id');
  t.equal(row?.tenant_id, tenantId);
  t.equal(Number(row?.duration_s), Math.floor((25_000 - rec.startedAt) / 1000), 'recorded until the #');
});

t.test('without its folder, record hangs the caller up (M11): the stand-in holds FreeSWITCH to it', async (t) => {
  const world = await stepWorld(t);
  await vmTenant(world);
  const { channel } = await stepCall(world, '4001010005', { recordSeconds: 5 });
  // Straight to the application, as the daemon wrote it before it made the folder first.
  const run = (channel as unknown as { run(app: string, arg: string): Promise<unknown> }).run.bind(channel);
  await run('record', '/rec/1/2026-12-03/x-vm.wav 120 200 5');
  t.ok(channel.hungUp, 'hung up');
  t.equal(channel.model.hangupCause, 'DESTINATION_OUT_OF_ORDER');
});

t.test('a caller who hangs up during the greeting leaves nothing', async (t) => {
  const world = await stepWorld(t);
  await vmTenant(world);
  const { call, channel } = await stepCall(world, '4001010005', { timeline: { hangupAtMs: 3000 } });
  await t.rejects(leaveVoicemail(call, null), CallHungUpError);
  t.equal(await world.knex('voicemails').where({ call_uuid: channel.uuid }).first(), undefined);
});

t.test('a caller who hangs up to end the message has left a voicemail (kept, outcome voicemail)', async (t) => {
  const world = await stepWorld(t);
  await vmTenant(world);
  // leave_message.wav is 12.3 s; the caller speaks, then hangs up at 20 s: the usual way to end one.
  const { call, channel } = await stepCall(world, '4001010005', { recordSeconds: 30, timeline: { hangupAtMs: 20_000 } });
  await leaveVoicemail(call, null).catch((err: unknown) => {
    if (!(err instanceof CallHungUpError)) throw err;
  });
  const row: { duration_s: number } | undefined = await world.knex('voicemails').where({ call_uuid: channel.uuid }).first('duration_s');
  t.ok(row && Number(row.duration_s) > 0, 'the message is kept');
  t.equal(call.facts.outcome, 'voicemail');
  t.ok(call.facts.voicemailKept, 'and the call knows a message was kept');
});

t.test('a message that ended on silence: its length is record_ms less the silence window (FreeSWITCH does not trim it)', async (t) => {
  const world = await stepWorld(t);
  await vmTenant(world);
  // Speaks 4 s, then is silent: the 5 s of silence (less its last frame) are in record_ms (M12).
  const { call, channel } = await stepCall(world, '4001010005', { recordSeconds: 4 });
  await leaveVoicemail(call, null);
  t.equal(channel.model.vars.record_ms, String(4000 + 5000 - 20), 'FreeSWITCH counted the silence');
  t.equal(channel.model.vars.silence_hits_exhausted, 'true');
  const row: { duration_s: number } | undefined = await world.knex('voicemails').where({ call_uuid: channel.uuid }).first('duration_s');
  t.equal(Number(row?.duration_s), 4, 'the message is the 4 s spoken');
  t.equal(call.facts.outcome, 'voicemail');
  const names = channel.apps.map((a) => a.app);
  const set = channel.apps[names.indexOf('record') - 2];
  t.equal(`${set?.app} ${set?.arg}`, 'multiset playback_terminators=# record_fill_cng=true', 'CNG frames are filled, so the silence is always in record_ms');
});

t.test('a message shorter than 1 s is not kept: no row, and no voicemail outcome', async (t) => {
  const world = await stepWorld(t);
  await vmTenant(world);
  const { call, channel } = await stepCall(world, '4001010005', { recordSeconds: 0.5 });
  await leaveVoicemail(call, null);
  t.equal(Number(channel.model.vars.record_ms), 500 + 5000 - 20, 'record_ms alone is over 5 s');
  t.equal(await world.knex('voicemails').where({ call_uuid: channel.uuid }).first(), undefined, 'no row');
  t.equal(call.facts.voicemailKept, false);
  t.equal(call.facts.outcome, 'no_answer', 'a silent caller the daemon hung up on was not answered');
  t.ok(channel.hungUp);
});

t.test('a caller who hangs up less than 1 s into the message leaves nothing: abandoned', async (t) => {
  const world = await stepWorld(t);
  await vmTenant(world);
  // leave_message.wav is 12.3 s: the record starts then; the caller leaves 0.6 s later.
  const { call, channel } = await stepCall(world, '4001010005', { recordSeconds: 30, timeline: { hangupAtMs: 12_333 + 600 } });
  await leaveVoicemail(call, null);
  t.equal(channel.model.vars.silence_hits_exhausted, 'false');
  t.ok(Number(channel.model.vars.record_ms) < 1000);
  t.equal(await world.knex('voicemails').where({ call_uuid: channel.uuid }).first(), undefined);
  t.equal(call.facts.outcome, 'abandoned');
});

t.test('unkeptOutcome: what the call is without the message; messageMs: record_ms less the silence window', async (t) => {
  t.equal(unkeptOutcome('no_answer', true), 'no_answer', 'a hunt nobody answered stays so');
  t.equal(unkeptOutcome('busy', false), 'busy');
  t.equal(unkeptOutcome('failed', true), 'abandoned', 'straight to the box, the caller left');
  t.equal(unkeptOutcome('failed', false), 'no_answer', 'straight to the box, silent until the daemon hung up');
  t.equal(messageMs({ ms: 8980, endedOnSilence: true, frameMs: 20 }, 5), 4000);
  t.equal(messageMs({ ms: 8970, endedOnSilence: true, frameMs: 30 }, 5), 4000, 'the frame is the channel\'s ptime');
  t.equal(messageMs({ ms: 8980, endedOnSilence: false, frameMs: 20 }, 5), 8980, '# or a hang-up: nothing to take off');
  t.equal(messageMs({ ms: 0, endedOnSilence: true, frameMs: 20 }, 5), 0, 'never below zero (CNG not filled)');
});
