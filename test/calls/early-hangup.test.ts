/**
 * A caller who hangs up as the call reaches the daemon — before `myevents` takes effect, so no
 * CHANNEL_HANGUP ever reaches the socket, only FreeSWITCH's disconnect notice — abandoned the
 * call: the CDR says `abandoned`, not `failed`. Also when the hang-up comes a moment later, between
 * two steps. A socket that drops with no word from FreeSWITCH is still `failed`, with its reason.
 * And hang-ups at every moment around the event-locked greeting in front of a hunt, with the
 * recording, the ringback and the bridge written behind it: one clean CDR each, no session left.
 */
import t from 'tap';
import { placeCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';
import { until } from '../helpers/wait';

t.test('hang-up as the call arrives', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  const script = { caller: '13912345678', destination: '4001012345', defaultLeg: { result: 'answer' as const } };

  const first = await placeCall(d.port, { ...script, callerHangsUpAfterMs: 'with-connect-reply' });
  t.equal(first.releasedWith, null, 'the channel was gone before the daemon could take it');
  const cdr = await d.cdr(first.uuid);
  t.match(cdr, { outcome: 'abandoned', failure_reason: null, hangup_cause: null, answered_at: null }, 'no hang-up event reached the daemon, only the disconnect notice');

  for (const after of [0, 1, 2, 3, 5]) {
    const c = await placeCall(d.port, { ...script, callerHangsUpAfterMs: after });
    const row = await d.cdr(c.uuid);
    t.match(row, { outcome: 'abandoned', failure_reason: null }, `hung up ${after} ms after connect`);
  }
});

t.test('a socket that drops without a word from FreeSWITCH is failed, with the reason', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  const c = await placeCall(d.port, { caller: '13912345678', destination: '4001012345', dropSocketOnApp: 'playback' });
  const row = await d.cdr(c.uuid);
  t.match(row, { outcome: 'failed', failure_reason: 'call flow failed: ESL_SOCKET_CLOSED' });
});

t.test('hang-ups at every moment around the event-locked greeting and what waits behind it: one clean CDR each', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  // Recording and a company ringback put two more applications behind the greeting, beside the bridge.
  const [promptId] = await d.knex('prompts').insert({ tenant_id: 1, name: 'company ringback', file: '/sounds/hotline/co-ringback.wav' });
  await d.knex('tenants').where({ id: 1 }).update({ ringback_prompt_id: promptId, record_calls: 1, caller_memory_hours: 0 });
  await d.daemon.store.poll();
  // A 2 s greeting, the phone answering 0.5 s into ringing and talking 2 s: the caller leaves before,
  // during and after each of them (FreeSWITCH ms from the TCP connect; at 0.1 the whole call is
  // ~0.5 s, and the daemon's `connect` arrives within a few ms).
  const moments = [300, 600, 900, 1500, 1950, 2000, 2050, 2300, 2600, 3500, 4400];
  const calls = await Promise.all(moments.map((hangupAtMs) => placeCall(d.port, {
    caller: '13912345678', destination: '4001012345', timeScale: 0.1,
    promptMs: { '/sounds/hotline/welcome.wav': 2000 }, timeline: { from: 'connect', hangupAtMs },
    defaultLeg: { result: 'answer', ringMs: 500, talkMs: 2000 },
  })));
  for (const [i, c] of calls.entries()) {
    if (c.commands.length === 1 && (c.hungUpAtFs ?? Infinity) <= c.commands[0].atFs) {
      // Gone before the daemon's `connect` reached FreeSWITCH (a loaded machine): no channel data,
      // no call to record (the handshake's case above). The moments are chosen to be later.
      t.pass(`hung up at ${moments[i]} ms, before the daemon's connect arrived`);
      continue;
    }
    const row = await d.cdr(c.uuid);
    t.match(row, { failure_reason: null }, `hung up at ${moments[i]} ms: no failure`);
    t.ok(['abandoned', 'answered'].includes(String(row.outcome)), `hung up at ${moments[i]} ms: ${String(row.outcome)}`);
    t.ok(c.bridges.length <= 1, 'at most the one leg rung');
  }
  await until('every session ended', () => d.daemon.calls.activeCalls === 0);
  t.equal(d.daemon.calls.activeCalls, 0, 'no session left behind');
});
