/**
 * A caller who hangs up as the call reaches the daemon — before `myevents` takes effect, so no
 * CHANNEL_HANGUP ever reaches the socket, only FreeSWITCH's disconnect notice — abandoned the
 * call: the CDR says `abandoned`, not `failed`. Also when the hang-up comes a moment later, between
 * two steps. A socket that drops with no word from FreeSWITCH is still `failed`, with its reason.
 */
import t from 'tap';
import { placeCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

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
