/**
 * Calls driven into a real daemon (real SQLite, real TCP) by the fake FreeSWITCH in test/peer,
 * which speaks mod_event_socket byte for byte (see its header for what it assumes). Each test
 * compares what the daemon sent FreeSWITCH (dial strings, prompts, hangup causes) and the CDR it
 * wrote with what the configuration says.
 */
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { placeCall, startCall, type CallRecord, type CallScript } from '../peer/fake-freeswitch';
import { until } from '../helpers/wait';
import { allApps, apps, servedClaimApp } from './helpers';
import { fetchMetrics, startTestDaemon, tempSqliteUrl, type TestDaemon } from '../helpers/daemon';
import { EslCallChannel } from '../../src/esl/call-channel';
import { DEFERRED_INPUT_BUDGET_MS, deferredInput } from '../../src/esl/deferred-input';
import { capturingLogger } from '../helpers/log';

const CALLER = '13912345678';
const DEMO = '4001012345';


async function call(d: TestDaemon, script: Omit<CallScript, 'caller' | 'destination'> & Partial<CallScript>): Promise<{ call: CallRecord; cdr: Record<string, unknown> }> {
  const record = await placeCall(d.port, { caller: CALLER, destination: DEMO, ...script });
  return { call: record, cdr: await d.cdr(record.uuid) };
}

/** A second tenant: group A (2 phones, 20 s) fails over to B (1 phone), B back to A (a loop). */
async function seedLoopTenant(knex: Knex): Promise<{ groupA: number; groupB: number }> {
  const [tenantId] = await knex('tenants').insert({ name: 'Loop Ltd', status: 'active', timezone: 'Asia/Shanghai' });
  await knex('access_numbers').insert({ number: '4002000000', tenant_id: tenantId, kind: 'hotline', enabled: 1 });
  const [groupA] = await knex('destination_groups').insert({ tenant_id: tenantId, name: 'A', strategy: 'sequential', ring_timeout_s: 20, max_queue: 0, queue_timeout_s: 0 });
  const [groupB] = await knex('destination_groups').insert({ tenant_id: tenantId, name: 'B', strategy: 'sequential', ring_timeout_s: null, max_queue: 0, queue_timeout_s: 0, failover_group_id: groupA });
  await knex('destination_groups').where({ id: groupA }).update({ failover_group_id: groupB });
  await knex('destinations').insert([
    { group_id: groupA, number: '13700000001', position: 1, weight: 1, enabled: 1 },
    { group_id: groupA, number: '13700000002', position: 2, weight: 1, enabled: 1 },
    { group_id: groupA, number: '13700000009', position: 3, weight: 1, enabled: 0 },
    { group_id: groupB, number: '13700000003', position: 1, weight: 1, enabled: 1 },
  ]);
  await knex('routing_rules').insert({ tenant_id: tenantId, priority: 10, percent: 100, action: 'group', target_id: groupA, enabled: 1 });
  return { groupA: groupA, groupB: groupB };
}

t.test('calls on SQLite', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  const demoGroup = ((await d.knex('destination_groups').first()) as { id: number }).id;
  const { groupA, groupB } = await seedLoopTenant(d.knex);
  // These tests check hunting order; caller memory (tested in call-flow-full) would reorder it.
  await d.knex('tenants').update({ caller_memory_hours: 0 });
  await d.daemon.store.poll();

  t.test('normal answer: handshake, continue_on_fail with the claim, dial string, CDR', async (t) => {
    // timeScale 1: the stand-in lingers the real 10 s, so only the daemon can close the socket in time.
    const { call: c, cdr } = await call(d, { timeScale: 1, legs: { '13800000001': { result: 'answer', talkMs: 50 } } });
    t.same(c.commands.slice(0, 4).map((x) => x.line.split(' ')[0]), ['connect', 'myevents', 'linger', 'nixevent']);
    t.equal(c.commands[1].line, 'myevents plain', 'only this call\'s events, plain format');
    t.equal(c.commands[2].line, 'linger 10');
    t.same(allApps(c), [
      servedClaimApp(),
      'playback /sounds/hotline/welcome.wav',
      `bridge {leg_timeout=15,ignore_early_media=true,origination_caller_id_number=${CALLER}}sofia/gateway/carrier/13800000001`,
    ]);
    t.ok(c.commands.filter((x) => x.line.startsWith('sendmsg')).every((x) => x.headers['content-type'] === 'text/plain'), 'arguments travel as a text/plain body');
    t.ok(c.commands.filter((x) => x.line.startsWith('sendmsg')).every((x) => /^[0-9a-f-]{36}$/.test(x.headers['event-uuid'] ?? '')), 'every execute carries an Event-UUID');
    t.match(cdr, { outcome: 'answered', answered_by: '13800000001', group_id: demoGroup, tenant_id: 1, access_number: DEMO, caller: CALLER, hangup_cause: 'NORMAL_CLEARING', node: 'test-node' });
    t.ok(cdr.answered_at, 'answered_at set');
    t.equal(c.closedBy, 'daemon', 'the daemon closes the socket once it has the final facts');
  });

  const WELCOME = '/sounds/hotline/welcome.wav';
  /** The daemon's /metrics page. */
  const metricsText = (): Promise<string> => fetchMetrics(d);
  /** Calls whose first leg was dialled (hotline_call_setup_seconds observed). */
  const setups = async (): Promise<number> => Number(/^hotline_call_setup_seconds_count (\d+)/m.exec(await metricsText())?.[1] ?? NaN);
  const written = (c: CallRecord, app: string): CallRecord['commands'][number] | undefined => c.commands.find((x) => x.headers['execute-app-name'] === app);
  const ran = (c: CallRecord, app: string): CallRecord['apps'][number] | undefined => c.apps.find((a) => a.app === app);

  /**
   * A call with a 5 s greeting (500 ms at 0.1) whose first phone answers: the call, its CDR and
   * the greeting and the bridge as they ran; null, after a failed check, when one did not run.
   */
  const greetedCall = async (t: Test): Promise<{ c: CallRecord; cdr: Record<string, unknown>; greeting: CallRecord['apps'][number]; bridge: CallRecord['apps'][number] } | null> => {
    const { call: c, cdr } = await call(d, { timeScale: 0.1, promptMs: { [WELCOME]: 5000 }, legs: { '13800000001': { result: 'answer', talkMs: 50 } } });
    const greeting = ran(c, 'playback');
    const bridge = ran(c, 'bridge');
    if (!greeting || !bridge) {
      t.fail(`greeting and bridge did not both run: ${JSON.stringify(c.apps)}`);
      return null;
    }
    return { c, cdr, greeting, bridge };
  };

  t.test('the first bridge is written while the greeting plays, which holds it (event-lock) until it ends', async (t) => {
    // Caller memory is off, so the bridge follows in the same turn.
    const before = await setups();
    const greeted = await greetedCall(t);
    if (!greeted) return;
    const { c, cdr, greeting, bridge } = greeted;
    t.equal(written(c, 'playback')?.headers['event-lock'], 'true', 'the greeting is written with event-lock');
    t.ok((written(c, 'bridge')?.atFs ?? Infinity) < greeting.endedAtFs, 'the bridge was written while the greeting played');
    t.ok(bridge.startedAtFs >= greeting.endedAtFs, 'and started when the greeting ended, not over it');
    t.ok(greeting.endedAtFs - greeting.startedAtFs >= 4900, 'the caller heard the whole greeting');
    t.equal(written(c, 'bridge')?.headers['event-lock'], undefined, 'nothing else holds the queue');
    t.match(cdr, { outcome: 'answered', answered_by: '13800000001' });
    t.equal(await setups(), before + 1, 'the first leg was dialled: setup observed (when the greeting ended)');
  });

  t.test('a round-robin group further down the failover chain does not hold the first bridge', async (t) => {
    // The demo group fails over to a round-robin group: its position is taken only if it is
    // reached, so the first bridge is still written while the greeting plays.
    const [overflow] = await d.knex('destination_groups').insert({ tenant_id: 1, name: 'overflow', strategy: 'round_robin', max_queue: 0, queue_timeout_s: 0 });
    await d.knex('destinations').insert({ group_id: overflow, number: '13800000009', position: 1, weight: 1, enabled: 1 });
    await d.knex('destination_groups').where({ id: demoGroup }).update({ failover_group_id: overflow });
    await d.daemon.store.poll();
    t.teardown(async () => {
      await d.knex('destination_groups').where({ id: demoGroup }).update({ failover_group_id: null });
      await d.daemon.store.poll();
    });
    const greeted = await greetedCall(t);
    if (!greeted) return;
    const { c, cdr, greeting, bridge } = greeted;
    t.ok((written(c, 'bridge')?.atFs ?? Infinity) < greeting.endedAtFs, 'the bridge was written while the greeting played');
    t.ok(bridge.startedAtFs >= greeting.endedAtFs, 'and started when the greeting ended');
    t.match(cdr, { outcome: 'answered', answered_by: '13800000001' });
    t.equal(await d.knex('group_rotation').where({ group_id: overflow }).first(), undefined, 'the overflow group, not reached, took no position');
  });

  t.test('a caller who hangs up during the greeting, the bridge waiting behind it: nothing rung, abandoned', async (t) => {
    const before = await setups();
    // 0.05: the 40 s greeting takes 2 s and the caller leaves 1 s after connecting, leaving the
    // daemon a whole second (of a loaded machine) to write the greeting and the bridge.
    const { call: c, cdr } = await call(d, {
      timeScale: 0.05, promptMs: { [WELCOME]: 40_000 }, timeline: { from: 'connect', hangupAtMs: 20_000 }, defaultLeg: { result: 'answer', talkMs: 50 },
    });
    t.ok(written(c, 'bridge'), 'the bridge had been written');
    t.equal(c.bridges.length, 0, 'and never ran: queued work of a gone channel does not');
    t.match(cdr, { outcome: 'abandoned', answered_by: null, hangup_cause: 'ORIGINATOR_CANCEL' });
    t.equal(await setups(), before, 'no leg dialled: no setup observed');
  });

  t.test('a greeting longer than any reply time: the recording written behind it is waited for as long', async (t) => {
    // The test daemon gives an application 2 s + 2 s beyond its own bound; this greeting plays
    // 5 s (50 s at 0.1), and the recording's multiset and record_session wait behind it (the
    // ringback came with the claim).
    const [promptId] = await d.knex('prompts').insert({ tenant_id: 1, name: 'company ringback', file: '/sounds/hotline/co-ringback.wav' });
    await d.knex('tenants').where({ id: 1 }).update({ ringback_prompt_id: promptId, record_calls: 1 });
    await d.daemon.store.poll();
    t.teardown(async () => {
      await d.knex('tenants').where({ id: 1 }).update({ ringback_prompt_id: null, record_calls: 0 });
      await d.daemon.store.poll();
    });
    const { call: c, cdr } = await call(d, { timeScale: 0.1, promptMs: { [WELCOME]: 50_000 }, legs: { '13800000001': { result: 'answer', talkMs: 50 } } });
    t.equal(allApps(c)[0], servedClaimApp('/sounds/hotline/co-ringback.wav'), 'the company ringback with the claim');
    t.same(c.apps.map((a) => a.app).slice(1), ['playback', 'multiset', 'record_session', 'bridge'], 'the recording queued behind the greeting, then the bridge');
    const greeting = ran(c, 'playback');
    const bridge = ran(c, 'bridge');
    t.ok(greeting && bridge && bridge.startedAtFs >= greeting.endedAtFs, 'the bridge started when the greeting ended');
    t.match(cdr, { outcome: 'answered', answered_by: '13800000001', failure_reason: null });
    t.match(String(cdr.recording_path), /\.wav$/, 'the recording is in the CDR');
  });

  t.test('a ringback file a DBA named with an apostrophe: the system ringback instead, the call goes through', async (t) => {
    // FreeSWITCH could play it, but a channel variable may not carry it: every call of the tenant failed on the multiset.
    const [promptId] = await d.knex('prompts').insert({ tenant_id: 1, name: 'typo ringback', file: "/sounds/hotline/it's-ringing.wav" });
    await d.knex('tenants').where({ id: 1 }).update({ ringback_prompt_id: promptId });
    await d.daemon.store.poll();
    t.teardown(async () => {
      await d.knex('tenants').where({ id: 1 }).update({ ringback_prompt_id: null });
      await d.daemon.store.poll();
    });
    const { call: c, cdr } = await call(d, { legs: { '13800000001': { result: 'answer', talkMs: 50 } } });
    t.equal(allApps(c)[0], servedClaimApp(), 'the system ringback is set, with the claim');
    t.match(cdr, { outcome: 'answered', answered_by: '13800000001', failure_reason: null });
  });

  t.test('a flow that fails while applications wait behind the greeting is cut with uuid_kill, not a hangup queued behind them', async (t) => {
    // A bug stands in for whatever may fail there: the hunt's bridge throws before it is written.
    const proto = EslCallChannel.prototype as { bridge: EslCallChannel['bridge'] };
    const bridge = Object.getOwnPropertyDescriptor(proto, 'bridge')!;
    proto.bridge = (): Promise<never> => Promise.reject(new Error('a bug in the hunt'));
    t.teardown(() => {
      Object.defineProperty(proto, 'bridge', bridge);
    });
    // 0.05: the 40 s greeting would take 2 s; a sendmsg hangup would wait for all of it.
    const { call: c, cdr } = await call(d, { timeScale: 0.05, promptMs: { [WELCOME]: 40_000 }, defaultLeg: { result: 'answer', talkMs: 50 } });
    Object.defineProperty(proto, 'bridge', bridge);
    t.ok(c.api.some((a) => a.startsWith(`uuid_kill ${c.uuid} NORMAL_TEMPORARY_FAILURE`)), 'uuid_kill, at once');
    t.ok((c.hungUpAtFs ?? Infinity) < 30_000, `hung up mid-greeting (at ${c.hungUpAtFs} ms of 40,000)`);
    t.equal(c.bridges.length, 0, 'nothing rung');
    t.match(cdr, { outcome: 'failed' });
  });

  t.test('a greeting FreeSWITCH cannot find, the bridge behind it: nothing stands in, the phones ring at once', async (t) => {
    // The test daemon cannot see the prompt folder (PROMPTS_SAME_FILESYSTEM=no): only FreeSWITCH knows.
    const { call: c, cdr } = await call(d, { missingFiles: [WELCOME], legs: { '13800000001': { result: 'answer', talkMs: 50 } } });
    t.same(c.apps.map((a) => `${a.app} ${a.response}`).slice(1), ['playback FILE NOT FOUND', 'bridge _none_'], 'no system prompt queued behind the ringing');
    t.match(cdr, { outcome: 'answered', answered_by: '13800000001' });
  });

  t.test('busy, then the next phone answers', async (t) => {
    const { call: c, cdr } = await call(d, { legs: { '13800000001': { result: 'busy' }, '13800000002': { result: 'answer' } } });
    t.same(c.bridges.map((b) => [b.number, b.result]), [['13800000001', 'busy'], ['13800000002', 'answer']]);
    t.match(cdr, { outcome: 'answered', answered_by: '13800000002' });
  });

  t.test('nobody answers: ring timeout on every phone, then the announcement and NO_ANSWER', async (t) => {
    const { call: c, cdr } = await call(d, { defaultLeg: { result: 'no_answer' } });
    t.same(c.bridges.map((b) => b.number), ['13800000001', '13800000002']);
    t.same(c.bridges.map((b) => b.vars.leg_timeout), ['15', '15'], 'the tenant ring timeout');
    t.same(apps(c).slice(-2), ['playback /sounds/hotline/nobody_answered.wav', 'hangup NO_ANSWER']);
    t.match(cdr, { outcome: 'no_answer', answered_by: null, hangup_cause: 'NO_ANSWER', answered_at: null, billsec: 0 });
  });

  t.test('every phone busy: all-busy announcement, outcome busy', async (t) => {
    const { call: c, cdr } = await call(d, { defaultLeg: { result: 'busy' } });
    t.same(apps(c).slice(-2), ['playback /sounds/hotline/all_busy.wav', 'hangup USER_BUSY']);
    t.match(cdr, { outcome: 'busy', hangup_cause: 'USER_BUSY' });
  });

  t.test('unreachable phones count as not answered and the hunt goes on', async (t) => {
    const { call: c, cdr } = await call(d, { legs: { '13800000001': { result: 'unreachable' }, '13800000002': { result: 'answer' } } });
    t.equal(c.bridges.length, 2);
    t.match(cdr, { outcome: 'answered', answered_by: '13800000002' });
  });

  t.test('failover chain with a loop: A then B, never A again', async (t) => {
    const { call: c, cdr } = await call(d, { destination: '4002000000', defaultLeg: { result: 'no_answer' } });
    t.same(c.bridges.map((b) => b.number), ['13700000001', '13700000002', '13700000003'], 'disabled phone skipped, loop cut');
    t.same(c.bridges.map((b) => b.vars.leg_timeout), ['20', '20', '15'], 'group ring timeout, else the tenant\'s');
    t.match(cdr, { outcome: 'no_answer', group_id: groupB });
    t.not(groupA, groupB);
  });

  t.test('caller hangs up while the first phone rings', async (t) => {
    const { call: c, cdr } = await call(d, { defaultLeg: { result: 'answer', ringMs: 5000 }, callerHangsUpOnApp: 'bridge' });
    t.equal(c.bridges.length, 1, 'no further leg after the caller left');
    t.equal(c.bridges[0].result, 'cancelled');
    t.match(cdr, { outcome: 'abandoned', hangup_cause: 'ORIGINATOR_CANCEL', answered_by: null });
    t.notOk(apps(c).slice(apps(c).findIndex((a) => a.startsWith('bridge'))).some((a) => a.startsWith('playback')), 'no prompt to a caller who is gone');
  });

  t.test('caller hangs up during the not-in-service announcement', async (t) => {
    const { cdr } = await call(d, { destination: '4009999999', playbackMs: 500, callerHangsUpOnApp: 'playback' });
    t.match(cdr, { outcome: 'announced', tenant_id: null, hangup_cause: 'ORIGINATOR_CANCEL' });
  });

  t.test('socket drops in the middle of the hunt: CDR failed, daemon keeps serving', async (t) => {
    const { cdr } = await call(d, { dropSocketOnApp: 'bridge' });
    t.match(cdr, { outcome: 'failed', tenant_id: 1 });
    const next = await call(d, { legs: { '13800000001': { result: 'answer' } } });
    t.equal(next.cdr.outcome, 'answered');
  });

  t.test('unknown number: not-in-service announcement, UNALLOCATED_NUMBER', async (t) => {
    const { call: c, cdr } = await call(d, { destination: '4009999999' });
    t.same(apps(c), ['playback /sounds/hotline/not_in_service.wav', 'hangup UNALLOCATED_NUMBER']);
    t.match(cdr, { outcome: 'announced', tenant_id: null, access_number: '4009999999', hangup_cause: 'UNALLOCATED_NUMBER', group_id: null });
  });

  t.test('+86-prefixed 400 number reaches the tenant', async (t) => {
    const { cdr } = await call(d, { destination: `86${DEMO}`, legs: { '13800000001': { result: 'answer' } } });
    t.match(cdr, { outcome: 'answered', tenant_id: 1 });
  });

  t.test('caller ID name with CR/LF and a caller number with ${system()} reach no command', async (t) => {
    const evilName = 'Eve\r\n\r\napi system touch /tmp/pwned\r\n';
    const evilNumber = '${system(touch /tmp/pwned)}';
    const { call: c, cdr } = await call(d, { callerName: evilName, caller: evilNumber, legs: { '13800000001': { result: 'answer' } } });
    const verbs = new Set(c.commands.map((x) => x.line.split(' ')[0]));
    t.same([...verbs].sort(), ['connect', 'linger', 'myevents', 'nixevent', 'sendmsg'], 'no api or other command appeared');
    for (const x of c.commands) {
      const text = `${x.line}\n${Object.values(x.headers).join('\n')}\n${x.body}`;
      t.notMatch(text, /system|pwned|Eve/, `nothing of the caller's in: ${x.line}`);
    }
    t.equal(c.bridges[0].vars.origination_caller_id_number, undefined, 'an unusable caller number is not presented');
    t.equal(cdr.outcome, 'answered');
    t.equal(cdr.caller, '', 'a caller ID without a digit is withheld: no raw text in the CDR');
  });

  t.test('a malformed %-sequence in an event does not break the call', async (t) => {
    const bad = 'Event-Name: CUSTOM\nUnique-ID: x\nvariable_sip_user_agent: %F0%9F%\n\n';
    const inject = Buffer.from(`Content-Length: ${Buffer.byteLength(bad)}\nContent-Type: text/event-plain\n\n${bad}`);
    const { cdr } = await call(d, { injectAfterConnect: inject, legs: { '13800000001': { result: 'answer' } } });
    t.equal(cdr.outcome, 'answered');
  });

  t.test('an unframeable message drops that call only (CDR failed), the next call works', async (t) => {
    const { cdr } = await call(d, { injectAfterConnect: Buffer.from('Content-Length: lots\n\n') });
    t.equal(cdr.outcome, 'failed');
    const next = await call(d, { legs: { '13800000001': { result: 'answer' } } });
    t.equal(next.cdr.outcome, 'answered');
  });

  t.test('a DBA edit reaches the next call without a restart', async (t) => {
    await d.knex('destinations').where({ number: '13800000001' }).update({ number: '13800000077' });
    t.teardown(() => d.knex('destinations').where({ number: '13800000077' }).update({ number: '13800000001' }));
    const deadline = Date.now() + 5000;
    while (!d.daemon.store.current.groups.get(demoGroup)!.destinations.some((x) => x.number === '13800000077')) {
      if (Date.now() > deadline) throw new Error('edit not picked up within 5 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const { call: c } = await call(d, { legs: { '13800000077': { result: 'answer' } } });
    t.equal(c.bridges[0].number, '13800000077');
    await d.knex('destinations').where({ number: '13800000077' }).update({ number: '13800000001' });
    await d.daemon.store.poll();
  });

  t.test('suspended tenant hears its announcement', async (t) => {
    await d.knex('tenants').where({ id: 1 }).update({ status: 'suspended' });
    await d.daemon.store.poll();
    const { call: c, cdr } = await call(d, {});
    await d.knex('tenants').where({ id: 1 }).update({ status: 'active' });
    await d.daemon.store.poll();
    t.same(apps(c), ['playback /sounds/hotline/suspended.wav', 'hangup CALL_REJECTED']);
    t.match(cdr, { outcome: 'announced', tenant_id: 1 });
  });

  t.test('rule actions announce and reject', async (t) => {
    const [promptId] = await d.knex('prompts').insert({ tenant_id: 1, name: 'closed', file: '/sounds/t1/closed.wav' });
    const [ruleId] = await d.knex('routing_rules').insert({ tenant_id: 1, priority: 1, percent: 100, action: 'announce', target_id: promptId, enabled: 1 });
    await d.daemon.store.poll();
    const announced = await call(d, {});
    t.same(apps(announced.call), ['playback /sounds/hotline/welcome.wav', 'playback /sounds/t1/closed.wav', 'hangup NORMAL_CLEARING']);
    t.equal(announced.cdr.outcome, 'announced');
    await d.knex('routing_rules').where({ id: ruleId }).update({ action: 'reject', target_id: null });
    await d.daemon.store.poll();
    const rejected = await call(d, {});
    t.same(apps(rejected.call), ['playback /sounds/hotline/welcome.wav', 'hangup CALL_REJECTED']);
    t.equal(rejected.cdr.outcome, 'blocked');
    await d.knex('routing_rules').where({ id: ruleId }).delete();
    await d.daemon.store.poll();
  });

  t.test('a bad rule row is skipped and reported; the call routes on the good one', async (t) => {
    const [badId] = await d.knex('routing_rules').insert({ tenant_id: 1, priority: 1, percent: 100, action: 'teleport', target_id: 1, enabled: 1 });
    await d.daemon.store.poll();
    t.ok(d.daemon.store.current.rejected.some((r) => r.table === 'routing_rules' && r.id === badId));
    const { cdr } = await call(d, { legs: { '13800000001': { result: 'answer' } } });
    t.equal(cdr.outcome, 'answered');
    await d.knex('routing_rules').where({ id: badId }).delete();
    await d.daemon.store.poll();
  });

  t.test('/metrics counts what happened, without numbers or UUIDs in labels', async (t) => {
    const body = await metricsText();
    t.match(body, /hotline_calls_ended_total\{outcome="answered",number_kind="hotline"\} \d+/);
    t.match(body, /hotline_calls_ended_total\{outcome="no_answer",number_kind="hotline"\} \d+/);
    t.match(body, /hotline_active_calls 0/);
    t.match(body, /hotline_esl_command_duration_seconds_count\{command="bridge",result="ok"\} \d+/);
    t.match(body, /hotline_call_setup_seconds_count \d+/);
    // The bridged calls' input went through the deferred queue, whose turns the daemon reports.
    t.match(body, /hotline_esl_deferred_input_wait_seconds_count [1-9]\d*/);
    // Exported; not asserted 0: a test machine that stalls the process 100 ms would make one overdue.
    t.match(body, /^hotline_esl_deferred_input_overdue_total \d+$/m);
    const labelValues = [...body.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1].matchAll(/="([^"]*)"/g)].map((v) => v[1]));
    t.ok(labelValues.length > 20, 'labels were read');
    t.notOk(labelValues.some((v) => /\d{5,}|[0-9a-f]{8}-[0-9a-f]{4}-/.test(v)), 'no phone numbers or UUIDs in any label value');
  });
});

t.test('ESL_BRIDGED_INPUT_BUDGET_MS=0: a bridged call\'s input runs as it arrives, nothing waits in the deferred queue', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { esl: { bridgedInputBudgetMs: 0 } });
  t.teardown(() => d.stop());
  const { call: c, cdr } = await call(d, { legs: { '13800000001': { result: 'answer', talkMs: 50 } } });
  t.match(cdr, { outcome: 'answered', answered_by: '13800000001' }, 'served as with the queue');
  t.equal(c.closedBy, 'daemon');
  const body = await fetchMetrics(d);
  t.match(body, /^hotline_call_setup_seconds_count 1$/m);
  t.match(body, /^hotline_esl_deferred_input_wait_seconds_count 0$/m, 'the queue never ran');
});

t.test('ESL_BRIDGED_INPUT_BUDGET_MS sets the budget of the process\'s queue while the daemon listens, and stop gives it back', async (t) => {
  t.equal(deferredInput.budgetMs, DEFERRED_INPUT_BUDGET_MS, 'the default before');
  const d = await startTestDaemon(tempSqliteUrl(), { esl: { bridgedInputBudgetMs: 3 } });
  t.teardown(() => d.stop());
  t.equal(deferredInput.budgetMs, 3);
  await d.stop();
  t.equal(deferredInput.budgetMs, DEFERRED_INPUT_BUDGET_MS, 'the budget before the daemon listened');
});

t.test('two daemons in one process (the warm-up\'s server and the daemon\'s): the first to stop leaves the other\'s budget in force', async (t) => {
  // The warm-up waits for its server's stop at most 2 s (warm-up.ts): the daemon may be listening by then.
  const warmUp = await startTestDaemon(tempSqliteUrl(), { esl: { bridgedInputBudgetMs: 5 } });
  t.teardown(() => warmUp.stop());
  const daemon = await startTestDaemon(tempSqliteUrl(), { esl: { bridgedInputBudgetMs: 4 } });
  t.teardown(() => daemon.stop());
  t.equal(deferredInput.budgetMs, 4, 'the one set last');
  await warmUp.stop();
  t.equal(deferredInput.budgetMs, 4, 'the listening daemon keeps its ESL_BRIDGED_INPUT_BUDGET_MS');
  await daemon.stop();
  t.equal(deferredInput.budgetMs, DEFERRED_INPUT_BUDGET_MS, 'both stopped: the default');
});

t.test('SIGTERM drain: live call finishes and is recorded, new calls are refused', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  const live = startCall(d.port, { caller: CALLER, destination: DEMO, legs: { '13800000001': { result: 'answer', talkMs: 400 } } });
  await until('the call hunting', () => live.live.bridges.length > 0);
  const stopping = d.daemon.stop();
  const refused = await placeCall(d.port, { caller: CALLER, destination: DEMO }).catch(() => null);
  t.ok(refused === null || refused.commands.length === 0, 'no call taken while draining');
  const record = await live.done;
  await stopping;
  t.equal(record.bridges[0].result, 'answer', 'the live call went on to its end');
  // The daemon is stopped: read the CDR from the same database file.
  const { createKnex } = await import('../../src/db/connect');
  const knex = createKnex(d.settings.database.url);
  t.teardown(() => knex.destroy());
  const row = (await knex('cdrs').where({ call_uuid: record.uuid }).first()) as { outcome: string } | undefined;
  t.equal(row?.outcome, 'answered', 'its CDR was flushed before exit');
});

t.test('drain time over: remaining calls are hung up, CDRs still written', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { calls: { drainTimeoutS: 0 } });
  // timeScale 1: the leg rings for the real 15 s, far longer than the drain allows.
  const live = startCall(d.port, { caller: CALLER, destination: DEMO, timeScale: 1, legs: { '13800000001': { result: 'answer', ringMs: 60_000 } } });
  await until('the phone ringing', () => live.live.bridges.length > 0);
  await d.daemon.stop();
  const record = await live.done;
  t.equal(record.hangupCause, 'SYSTEM_SHUTDOWN', `peer saw: ${JSON.stringify(record.commands.map((c) => [c.line, c.headers]))}`);
  const { createKnex } = await import('../../src/db/connect');
  const knex = createKnex(d.settings.database.url);
  t.teardown(() => knex.destroy());
  const row = (await knex('cdrs').where({ call_uuid: record.uuid }).first()) as { outcome: string } | undefined;
  t.ok(row, 'CDR written for the call cut by shutdown');
});

t.test('a call\'s log lines name the call, and its tenant once it is known', async (t) => {
  const { log: logger, lines } = capturingLogger();
  const d = await startTestDaemon(tempSqliteUrl(), {}, {}, logger);
  t.teardown(() => d.stop());
  const tenant = ((await d.knex('access_numbers').where({ number: DEMO }).first()) as { tenant_id: number }).tenant_id;
  const answered = await placeCall(d.port, { caller: CALLER, destination: DEMO, legs: { '13800000001': { result: 'answer', talkMs: 50 } } });
  const unknown = await placeCall(d.port, { caller: CALLER, destination: '4009999999' });
  await d.cdr(answered.uuid);
  await d.cdr(unknown.uuid);
  const leg = lines.filter((l) => l.msg === 'leg finished');
  t.equal(leg.length, 1, 'one leg line for the answered call');
  t.match(leg[0], { call_uuid: answered.uuid, tenant_id: tenant, leg: 'answered' }, 'the leg line names the call and its tenant');
  const notInService = lines.filter((l) => l.msg === 'number not in service');
  t.equal(notInService.length, 1);
  t.match(notInService[0], { call_uuid: unknown.uuid }, 'a call with no tenant still names its call');
  t.notOk('tenant_id' in notInService[0], 'and names no tenant');
  const next = await placeCall(d.port, { caller: CALLER, destination: DEMO, legs: { '13800000001': { result: 'answer', talkMs: 50 } } });
  await d.cdr(next.uuid);
  const second = lines.filter((l) => l.msg === 'leg finished')[1];
  t.match(second, { call_uuid: next.uuid, tenant_id: tenant }, 'the next call: its own call, not the one before');
});
