/**
 * What a caller hears while the phones ring. Set with the claim (hunt.ts servedCallVariables), so
 * no multiset of its own before the first bridge: `ringback` always (a caller who heard the
 * greeting has early media, FreeSWITCH passes no phone's 180 on to it, and without `ringback` the
 * originate writes silence; M10 in test/peer/channel-model.ts), and `transfer_ringback` for a
 * caller the daemon answered before hunting (a PIN, an IVR menu, a queue: with CF_ANSWERED
 * FreeSWITCH plays that instead, switch_ivr_originate.c). The tenant's company ringback, else the
 * system ringback.wav, else (known missing) the ringing tone.
 */
import t from 'tap';
import { huntGroup, RINGBACK_TONE } from '../../../src/calls/steps/hunt';
import { multisetArgument } from '../../../src/esl/call-channel';
import { unsettableRingbacks } from '../../../src/prompts/lint';
import { stepCall, stepWorld, type StepWorld } from './harness';
import { SYSTEM_PROMPTS } from '../../../src/calls/prompts';

async function huntTenant(world: StepWorld, extra: Record<string, unknown> = {}): Promise<number> {
  const { knex } = world;
  const [tenantId] = await knex('tenants').insert({ name: 'Ring Co', status: 'active', timezone: 'Asia/Shanghai', caller_memory_hours: 0, ...extra });
  await knex('access_numbers').insert({ number: '4001010004', tenant_id: tenantId, kind: 'hotline', enabled: 1 });
  const [groupId] = await knex('destination_groups').insert({ tenant_id: tenantId, name: 'sales', strategy: 'sequential', max_queue: 0, queue_timeout_s: 0 });
  await knex('destinations').insert({ group_id: groupId, number: '13800002001', position: 1, weight: 1, enabled: 1 });
  await knex('routing_rules').insert({ tenant_id: tenantId, priority: 1, percent: 100, action: 'group', target_id: groupId, enabled: 1 });
  return groupId;
}

const LEGS = { legs: { '13800002001': { result: 'answer' as const, ringMs: 3000, talkMs: 1000 } } };

t.test('no company ringback: the system ringback.wav, as ringback and transfer_ringback; no application of the hunt\'s own before the bridge', async (t) => {
  const world = await stepWorld(t);
  const groupId = await huntTenant(world);
  const { call, channel } = await stepCall(world, '4001010004', LEGS);
  t.equal(await huntGroup(call, groupId), null);
  t.same(channel.ran.map((a) => a.split(' ')[0]), ['bridge'], 'the ringback came with the claim');
  t.same(channel.model.ringing.map((r) => r.heard), [`${world.systemDir}/ringback.wav`], 'heard while the phone rang');
  t.equal(channel.model.vars.transfer_ringback, `${world.systemDir}/ringback.wav`);
});

t.test('answered before hunting (a PIN, an IVR menu): transfer_ringback is what FreeSWITCH plays it, and it is set', async (t) => {
  const world = await stepWorld(t);
  const groupId = await huntTenant(world);
  const { call, channel } = await stepCall(world, '4001010004', LEGS);
  await call.answer();
  t.equal(await huntGroup(call, groupId), null);
  t.same(channel.model.ringing.map((r) => r.heard), [`${world.systemDir}/ringback.wav`]);
});

t.test('with a company ringback: the tenant\'s file for both', async (t) => {
  const world = await stepWorld(t);
  const [promptId] = await world.knex('prompts').insert({ tenant_id: null, name: 'ring', file: `${world.systemDir}/company-ring.wav` });
  const groupId = await huntTenant(world, { ringback_prompt_id: promptId });
  const { call, channel } = await stepCall(world, '4001010004', LEGS);
  await call.answer();
  t.equal(await huntGroup(call, groupId), null);
  const file = `${world.systemDir}/company-ring.wav`;
  t.same([channel.model.vars.ringback, channel.model.vars.transfer_ringback], [file, file]);
  t.same(channel.model.ringing.map((r) => r.heard), [file]);
});

t.test('ringback.wav known missing: the ringing tone, which multiset carries', async (t) => {
  const world = await stepWorld(t, { present: SYSTEM_PROMPTS.filter((n) => n !== 'ringback') });
  const groupId = await huntTenant(world);
  const { call, channel } = await stepCall(world, '4001010004', LEGS, { checkFiles: true });
  t.equal(await huntGroup(call, groupId), null);
  t.same(channel.model.ringing.map((r) => r.heard), [RINGBACK_TONE]);
  t.equal(multisetArgument({ transfer_ringback: RINGBACK_TONE }), `transfer_ringback=${RINGBACK_TONE}`);
  t.throws(() => multisetArgument({ transfer_ringback: 'a,b' }), 'other commas are still refused');
});

t.test('a company ringback whose file a channel variable cannot carry (an apostrophe): the system ringback, and config:lint lists it', async (t) => {
  const world = await stepWorld(t);
  const groupId = await huntTenant(world);
  const tenantId = Number((await world.knex('destination_groups').where({ id: groupId }).first<{ tenant_id: number }>('tenant_id'))?.tenant_id);
  const [promptId] = await world.knex('prompts').insert({ tenant_id: tenantId, name: 'typo', file: "/sounds/co/it's-ringing.wav" });
  const [fine] = await world.knex('prompts').insert({ tenant_id: tenantId, name: 'fine', file: '/sounds/co/ringing.wav' });
  await world.knex('tenants').where({ id: tenantId }).update({ ringback_prompt_id: promptId });
  const { call, channel } = await stepCall(world, '4001010004', LEGS);
  t.equal(await huntGroup(call, groupId), null, 'the call goes through');
  t.equal(call.facts.outcome, 'answered');
  t.same(channel.model.ringing.map((r) => r.heard), [`${world.systemDir}/ringback.wav`], 'the system ringback instead');
  const findings = unsettableRingbacks(await world.snapshot());
  t.equal(findings.length, 1);
  t.match(findings[0], new RegExp(`^tenants id=${tenantId} ringback_prompt_id=${promptId}: prompt ${promptId}'s file .* cannot be set as the ringback channel variable .* → callers hear the system ringback instead`));
  await world.knex('tenants').where({ id: tenantId }).update({ ringback_prompt_id: fine });
  t.same(unsettableRingbacks(await world.snapshot()), [], 'a plain file name: nothing to list');
});
