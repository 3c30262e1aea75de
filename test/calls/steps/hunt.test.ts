/**
 * Hunting alone, against the scripted channel: the order legs ring in, and a cut during the
 * warning broadcast — `kill` (api uuid_kill) ends the bridged call the moment it is sent, where a
 * `sendmsg` hangup waits until the event-locked broadcast has played (the capture
 * daemon-spend-cut-during-warning-broadcast, M7/M8 in test/peer/channel-model.ts); caller
 * memory asked while the greeting plays.
 */
import path from 'node:path';
import t from 'tap';
import { huntGroup } from '../../../src/calls/steps/hunt';
import { runAction } from '../../../src/calls/run-action';
import { toDbTimestamp } from '../../../src/db/connect';
import { EslCommandError } from '../../../src/esl/errors';
import { stepCall, stepWorld, type StepWorld } from './harness';

async function huntTenant(world: StepWorld, extra: Record<string, unknown> = {}): Promise<number> {
  const { knex } = world;
  const [tenantId] = await knex('tenants').insert({ name: 'Hunt Co', status: 'active', timezone: 'Asia/Shanghai', caller_memory_hours: 0, ...extra });
  await knex('access_numbers').insert({ number: '4001010004', tenant_id: tenantId, kind: 'hotline', enabled: 1 });
  const [groupId] = await knex('destination_groups').insert({ tenant_id: tenantId, name: 'sales', strategy: 'sequential', max_queue: 0, queue_timeout_s: 0 });
  await knex('destinations').insert([
    { group_id: groupId, number: '13800002001', position: 1, weight: 1, enabled: 1 },
    { group_id: groupId, number: '13800002005', position: 2, weight: 1, enabled: 1 },
  ]);
  await knex('routing_rules').insert({ tenant_id: tenantId, priority: 1, percent: 100, action: 'group', target_id: groupId, enabled: 1 });
  return groupId;
}

t.test('busy, then the next phone answers: continue_on_fail, set with the claim, keeps the caller up', async (t) => {
  const world = await stepWorld(t);
  const groupId = await huntTenant(world);
  const legs = { '13800002001': { result: 'busy' as const, ringMs: 500 }, '13800002005': { result: 'answer' as const, ringMs: 2000, talkMs: 5000 } };
  const { call, channel } = await stepCall(world, '4001010004', { legs });
  t.equal(await huntGroup(call, groupId), null);
  t.equal(call.facts.outcome, 'answered');
  t.equal(call.facts.answeredBy, '13800002005');
  t.same(channel.ran.map((a) => a.split(' ')[0]), ['bridge', 'bridge'], 'no application of its own before the first bridge');
  // What the claim's variable is for: without it FreeSWITCH hangs the caller up after a busy leg.
  const unclaimed = await stepCall(world, '4001010004', { legs, claimed: {} });
  t.equal(await huntGroup(unclaimed.call, groupId), null);
  t.same(unclaimed.channel.bridges.map((b) => b.number), ['13800002001'], 'without continue_on_fail: one busy leg, then the caller is gone');
  t.ok(unclaimed.channel.hungUp);
});

t.test('a cut during the warning: kill ends the bridged call at once, a sendmsg hangup waits for the broadcast', async (t) => {
  const world = await stepWorld(t);
  const groupId = await huntTenant(world);
  const capped = path.join(world.systemDir, 'capped.wav');
  for (const how of ['kill', 'sendmsg'] as const) {
    const { call, channel } = await stepCall(world, '4001010004', { promptMs: { [capped]: 10_380 }, defaultLeg: { result: 'answer', ringMs: 100, talkMs: 30_000 } });
    let answeredAt = 0;
    channel.onAnswer(() => {
      answeredAt = channel.clock.now();
      // The guard's plan for 0.07 left at 0.60/min in 6 s steps: warn at once, cut at 4 s.
      channel.at(answeredAt, () => void channel.broadcast(capped));
      channel.at(answeredAt + 4000, () => (how === 'kill' ? void channel.kill('OUTGOING_CALL_BARRED') : channel.model.hangupCommand('OUTGOING_CALL_BARRED')));
    });
    t.equal(await huntGroup(call, groupId), null, `${how}: the hunt ends`);
    t.equal(call.facts.outcome, 'answered');
    t.equal(channel.model.hangupCause, 'OUTGOING_CALL_BARRED');
    const after = channel.hangupAt! - answeredAt;
    if (how === 'kill') t.equal(after, 4000, 'uuid_kill: hung up 4 s after answer, mid-warning');
    else t.equal(after, 10_380, 'sendmsg hangup: only once the 10.4 s warning had played (why cuts use uuid_kill)');
    t.equal(channel.bridges.length, 1, 'no further leg rung after the cut');
  }
});

t.test('caller memory is asked before the greeting plays, and the remembered phone rings first', async (t) => {
  const world = await stepWorld(t);
  const groupId = await huntTenant(world, { caller_memory_hours: 24 });
  const at = new Date('2026-12-02T10:00:00+08:00');
  const answeredAt = toDbTimestamp(new Date(at.getTime() - 3_600_000));
  const tenantId = Number((await world.knex('destination_groups').where({ id: groupId }).first<{ tenant_id: number }>('tenant_id'))?.tenant_id);
  await world.knex('cdrs').insert({ call_uuid: 'remembered-1', started_at: answeredAt, outcome: 'answered', tenant_id: tenantId, caller: '13912345678', answered_at: answeredAt, answered_by: '13800002005' });
  const { call, channel } = await stepCall(world, '4001010004', { defaultLeg: { result: 'answer', ringMs: 100, talkMs: 1000 } }, { at });
  const asked: Array<{ atMs: number; ran: string[] }> = [];
  const lookup = call.deps.callerMemory;
  call.deps.callerMemory = (...args) => {
    asked.push({ atMs: channel.clock.now(), ran: [...channel.ran] });
    return lookup(...args);
  };
  await runAction(call, { kind: 'hunt', groupId });
  t.equal(asked.length, 1, 'asked once for the call');
  t.equal(asked[0].atMs, 0, 'asked at the start, not after the 9.3 s greeting');
  t.same(asked[0].ran, [], 'before any application ran');
  t.match(channel.ran[0], /^playback .*welcome\.wav$/, 'the greeting plays first');
  t.equal(channel.bridges[0].number, '13800002005', 'the phone that answered this caller an hour ago rings first');
  t.equal(call.facts.outcome, 'answered');
});

t.test('a caller who hangs up during the greeting: no leg rung, no round-robin position taken', async (t) => {
  const world = await stepWorld(t);
  const groupId = await huntTenant(world);
  await world.knex('destination_groups').where({ id: groupId }).update({ strategy: 'round_robin' });
  const { call, channel } = await stepCall(world, '4001010004', { timeline: { hangupAtMs: 3000, from: 'connect' }, defaultLeg: { result: 'answer', ringMs: 100, talkMs: 1000 } });
  await runAction(call, { kind: 'hunt', groupId }).catch(() => undefined);
  t.equal(channel.hangupAt, 3000, 'hung up 3 s into the 9.3 s greeting');
  t.equal(channel.bridges.length, 0, 'nothing rung');
  t.equal(await world.knex('group_rotation').where({ group_id: groupId }).first(), undefined, 'the rotation was not advanced');
});

t.test('a round-robin failover group takes a position only when the hunt reaches it', async (t) => {
  const world = await stepWorld(t);
  const { knex } = world;
  const groupId = await huntTenant(world);
  const tenantId = Number((await knex('destination_groups').where({ id: groupId }).first<{ tenant_id: number }>('tenant_id'))?.tenant_id);
  const [overflowId] = await knex('destination_groups').insert({ tenant_id: tenantId, name: 'overflow', strategy: 'round_robin', max_queue: 0, queue_timeout_s: 0 });
  await knex('destinations').insert(['13800003001', '13800003002', '13800003003'].map((number, i) => ({ group_id: overflowId, number, position: i + 1, weight: 1, enabled: 1 })));
  await knex('destination_groups').where({ id: groupId }).update({ failover_group_id: overflowId });
  const rotation = async (): Promise<number | undefined> => {
    const row = await knex('group_rotation').where({ group_id: overflowId }).first<{ next_index: number | string } | undefined>('next_index');
    return row === undefined ? undefined : Number(row.next_index);
  };

  // The first group answers: the overflow group, never reached, took no position. (That the first
  // bridge is written during the greeting needs real time: test/calls/call-flow.test.ts.)
  const answered = await stepCall(world, '4001010004', { defaultLeg: { result: 'answer', ringMs: 100, talkMs: 1000 } });
  await runAction(answered.call, { kind: 'hunt', groupId });
  const greeting = answered.channel.apps.find((a) => a.app === 'playback');
  const bridge = answered.channel.apps.find((a) => a.app === 'bridge');
  t.ok(greeting && greeting.eventLock, 'the greeting is event-locked');
  t.ok(greeting && bridge && bridge.startedAt >= greeting.endedAt, 'the bridge rang when it ended');
  t.equal(answered.call.facts.answeredBy, '13800002001');
  t.equal(await rotation(), undefined, 'the overflow group, not reached, took no position');

  // Both phones of the first group busy: the overflow group is reached and rings from its
  // rotation, one position a call.
  const busy = { '13800002001': { result: 'busy' as const, ringMs: 100 }, '13800002005': { result: 'busy' as const, ringMs: 100 } };
  const firstOverflow = await stepCall(world, '4001010004', { legs: busy, defaultLeg: { result: 'answer', ringMs: 100, talkMs: 1000 } });
  await runAction(firstOverflow.call, { kind: 'hunt', groupId });
  t.same(firstOverflow.channel.bridges.map((b) => b.number), ['13800002001', '13800002005', '13800003001'], 'the overflow group rang from position 0');
  t.equal(await rotation(), 1, 'and took one position');
  const secondOverflow = await stepCall(world, '4001010004', { legs: busy, defaultLeg: { result: 'answer', ringMs: 100, talkMs: 1000 } });
  await runAction(secondOverflow.call, { kind: 'hunt', groupId });
  t.same(secondOverflow.channel.bridges.map((b) => b.number), ['13800002001', '13800002005', '13800003002'], 'the next call starts one phone on');
  t.equal(await rotation(), 2);
});

t.test('a round-robin first group waits for the greeting before it takes its position', async (t) => {
  const world = await stepWorld(t);
  const groupId = await huntTenant(world);
  await world.knex('destination_groups').where({ id: groupId }).update({ strategy: 'round_robin' });
  const { call, channel } = await stepCall(world, '4001010004', { defaultLeg: { result: 'answer', ringMs: 100, talkMs: 1000 } });
  await runAction(call, { kind: 'hunt', groupId });
  const greeting = channel.apps.find((a) => a.app === 'playback');
  const bridge = channel.apps.find((a) => a.app === 'bridge');
  t.ok(greeting && bridge && bridge.writtenAt >= greeting.endedAt, 'the bridge was written once the greeting had ended');
  t.equal(Number((await world.knex('group_rotation').where({ group_id: groupId }).first<{ next_index: number | string }>('next_index'))?.next_index), 1, 'one position taken');
});

t.test('a greeting that fails (an -ERR, a time-out) fails the hunt as a greeting waited for did, and is not forgotten', async (t) => {
  const world = await stepWorld(t);
  const groupId = await huntTenant(world);
  const { call, channel } = await stepCall(world, '4001010004', { defaultLeg: { result: 'answer', ringMs: 100, talkMs: 1000 } });
  channel.playback = (): Promise<never> => Promise.reject(new EslCommandError('sendmsg playback', '-ERR invalid session'));
  await t.rejects(runAction(call, { kind: 'hunt', groupId }), EslCommandError, 'the call fails with the greeting\'s error');
  await t.rejects(call.greetingEnded(), EslCommandError, 'asked again later, it still says so');
  t.throws(() => call.writeBehindGreeting(), EslCommandError, 'nothing more is written behind it');
});
