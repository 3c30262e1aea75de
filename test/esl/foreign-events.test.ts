/**
 * Events whose Unique-ID is not this call's (issue 10): `*`, another call's UUID. Before, modesl's
 * wildcard event routing delivered an event with Unique-ID `*` to every listener of the socket,
 * and an answered call was recorded `abandoned`. A real daemon (SQLite, real TCP) and the
 * stand-in, which sends the foreign events while the call's bridge runs.
 */
import t from 'tap';
import { placeCall, type CallScript } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

t.test('an answered call stays answered whatever other channels\' events reach its socket', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  await d.knex('tenants').update({ caller_memory_hours: 0 });
  await d.daemon.store.poll();
  for (const onApp of ['bridge', 'playback']) {
    const foreign: NonNullable<CallScript['foreignEvents']> = {
      uuids: ['*', '6f1c1e4a-0000-4000-8000-000000000001'],
      names: ['CHANNEL_HANGUP', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_ANSWER'],
      onApp,
    };
    const record = await placeCall(d.port, { caller: '13912345678', destination: '4001012345', legs: { '13800000001': { result: 'answer', talkMs: 50 } }, foreignEvents: foreign });
    t.equal(foreign.sent, 8, `${onApp}: eight foreign events sent`);
    const cdr = await d.cdr(record.uuid);
    t.match(cdr, { outcome: 'answered', answered_by: '13800000001', hangup_cause: 'NORMAL_CLEARING' }, `${onApp}: the call is recorded as it went`);
    t.equal(record.bridges.length, 1, `${onApp}: one bridge, nothing cut short`);
  }
});
