/**
 * A spend warning due while the caller hears an event-locked greeting (src/billing/warning.ts):
 * a uuid_broadcast would be queued behind the whole greeting (M7), so the daemon mixes the warning
 * in with `uuid_displace … 0 mux` (M13) and the caller hears it at once; the cut (`uuid_kill`)
 * then lands on time. The whole daemon against the stand-in, real time (the guard's timers).
 *
 * A click-to-call: its visitor leg arrives answered, so the guard is armed as the greeting in
 * front of the hunt starts. Prepaid tenant, 0.60/min in 6 s increments, two legs: 0.1300 left
 * pays one increment (0.12): warn at once, cut 2 s before the 6 s run out, at 4 s.
 */
import t from 'tap';
import { placeCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';
import { demoVisitorLeg } from './helpers';

t.test('a click-to-call warned during its greeting hears the warning over it, then is cut: one CDR', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  await d.knex('rates').insert({ tenant_id: 1, call_type: 'mobile', per_minute: '0.6000', increment_s: 6, connect_fee: '0.0000' });
  await d.knex('tenants').where({ id: 1 }).update({ balance: '0.1300', caller_memory_hours: 0 });
  await d.daemon.store.poll();
  const visitor = '13912345678';
  const c = await placeCall(d.port, {
    caller: visitor,
    destination: visitor,
    timeScale: 1,
    // A 10 s greeting (FreeSWITCH ms = real ms here): the 4 s cut falls inside it.
    promptMs: { '/sounds/hotline/welcome.wav': 10_000, '/sounds/hotline/capped.wav': 3_000 },
    legs: { '13800000001': { result: 'answer', ringMs: 200, talkMs: 30_000 } },
    originated: demoVisitorLeg(visitor),
  });
  const greeting = c.apps.find((a) => a.app === 'playback' && a.arg.includes('welcome.wav'));
  t.ok(greeting, 'the greeting played');
  t.ok(c.commands.some((x) => x.headers['execute-app-name'] === 'playback' && x.headers['event-lock'] === 'true'), 'event-locked, in front of the hunt');
  t.same(c.api, [`uuid_displace ${c.uuid} start /sounds/hotline/capped.wav 0 mux`, `uuid_kill ${c.uuid} OUTGOING_CALL_BARRED`], 'warned with uuid_displace, then cut');
  t.same(c.bgapi, [], 'no uuid_broadcast: it would have waited behind the greeting');
  t.equal(c.heard.length, 1, 'the caller heard one warning');
  t.match(c.heard[0], { how: 'displace', over: 'playback' }, 'mixed into the greeting');
  t.ok(c.heard[0].at >= (greeting?.startedAtFs ?? Infinity) && c.heard[0].at < (greeting?.endedAtFs ?? 0), 'from when the greeting started writing audio, while it played');
  t.equal(c.hangupCause, 'OUTGOING_CALL_BARRED');
  t.ok((c.hungUpAtFs ?? Infinity) < (greeting?.startedAtFs ?? 0) + 10_000, 'cut before the greeting ended');
  t.equal(c.bridges.length, 0, 'the phones never rang');
  const cdr = await d.cdr(c.uuid);
  t.match(cdr, { hangup_cause: 'OUTGOING_CALL_BARRED' });
  const rows = await d.knex('cdrs').where({ call_uuid: c.uuid }).select('id');
  t.equal(rows.length, 1, 'exactly one CDR');
});
