/**
 * Money through real calls: a rated CDR, the prepaid balance charged once, a call cut when the
 * balance runs out mid-call (warning, then OUTGOING_CALL_BARRED), and a missed call queuing its
 * notification — all from the CDR's own transaction.
 */
import t from 'tap';
import { placeCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

t.test('billing through calls', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { cron: { enabled: false } });
  t.teardown(() => d.stop());
  const { knex } = d;
  // Mobile callers cost 6.00 per minute in 6 s steps for tenant 1: 0.60 per started 6 s.
  await knex('rates').insert({ tenant_id: 1, call_type: 'mobile', per_minute: '6.0000', increment_s: 6, connect_fee: '0.0000' });
  await knex('tenants').where({ id: 1 }).update({ balance: '0.6000', missed_call_notify: '13700000000', caller_memory_hours: 0 });
  await d.daemon.store.poll();

  t.test('cut when the balance runs out mid-call', async (t) => {
    // timeScale 1: FreeSWITCH time is real time, the daemon's guard cuts on its own clock.
    const c = await placeCall(d.port, { caller: '13912345678', destination: '4001012345', timeScale: 1, legs: { '13800000001': { result: 'answer', ringMs: 100, talkMs: 30_000 } } });
    const seconds = (c.hungUpAtFs! - c.answeredAtFs!) / 1000;
    t.equal(c.hangupCause, 'OUTGOING_CALL_BARRED', 'cut by the daemon');
    // Planned at 4 s; up to 1.9 s late (a loaded machine) is still inside the 6 s the balance pays.
    t.ok(seconds >= 3.9 && seconds < 5.9, `cut ${seconds.toFixed(2)} s after answer: 6 s affordable, 2 s guard → planned at 4 s`);
    t.match(c.bgapi[0], /^uuid_broadcast [0-9a-f-]{36} \/sounds\/hotline\/\w+\.wav both$/, 'the caller was warned first');
    t.same(c.api, [`uuid_kill ${c.uuid} OUTGOING_CALL_BARRED`], 'cut by api uuid_kill');
    const cdr = await d.cdr(c.uuid);
    t.match(cdr, { outcome: 'answered', call_type: 'mobile' });
    t.ok(Number(cdr.cost) <= 0.6 && Number(cdr.cost) > 0, `cost ${String(cdr.cost)} within the balance`);
    await d.daemon.cdrs.flush();
    const tenant: { balance: number } | undefined = await knex('tenants').where({ id: 1 }).first('balance');
    t.equal(Number((0.6 - Number(cdr.cost)).toFixed(4)), Number(Number(tenant?.balance).toFixed(4)), 'balance charged exactly once');
  });

  t.test('a missed call queues one SMS notification', async (t) => {
    await knex('tenants').where({ id: 1 }).update({ balance: null });
    await d.daemon.store.poll();
    const c = await placeCall(d.port, { caller: '13912345679', destination: '4001012345', defaultLeg: { result: 'no_answer' } });
    const cdr = await d.cdr(c.uuid);
    t.equal(cdr.outcome, 'no_answer');
    t.equal(cdr.admitted, 1, 'admitted');
    const rows: Array<Record<string, unknown>> = await knex('notifications').where({ call_uuid: c.uuid }).select('channel', 'recipient', 'status');
    t.same(rows, [{ channel: 'sms', recipient: '13700000000', status: 'pending' }]);
  });
});
