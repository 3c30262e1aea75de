/**
 * Cuts land on time whatever plays: the capture daemon-spend-cut-during-warning-broadcast, run
 * again at real scale against the whole daemon on SQLite and MariaDB. Prepaid tenant with 0.0700
 * left, 0.60/min in 6 s increments (the plan allows 6 s: warn at once, cut 2 s early, at 4 s);
 * the phone answers and would talk 30 s; the warning (capped.wav, 10.4 s as FreeSWITCH played
 * it) is broadcast over the call. The first release cut 10.4 s after answer (a `sendmsg` hangup
 * waited for the broadcast) and left the balance at -0.0500. Now `api uuid_kill` ends it at 4 s.
 * Also: the SIGTERM drain cuts a call mid-prompt at once.
 */
import t from 'tap';
import { placeCall } from '../peer/fake-freeswitch';
import { dbTargets } from '../helpers/db';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

// FreeSWITCH time is real time here (timeScale 1): the daemon's own timers cut the call.
const CAPPED_MS = { '/sounds/hotline/capped.wav': 10_380 };

for (const target of dbTargets()) {
  t.test(`${target.name}: the prepaid call is cut 4 s after answer, mid-warning; the balance stays above zero`, async (t) => {
    const db = await target.create({ migrate: false });
    const d = await startTestDaemon(db.url, { cron: { enabled: false } });
    t.teardown(async () => {
      await d.stop();
      await db.destroy();
    });
    await d.knex('rates').insert({ tenant_id: 1, call_type: 'mobile', per_minute: '0.6000', increment_s: 6, connect_fee: '0.0000' });
    await d.knex('tenants').where({ id: 1 }).update({ balance: '0.0700', caller_memory_hours: 0 });
    await d.daemon.store.poll();
    const c = await placeCall(d.port, {
      caller: '13910009004',
      destination: '4001012345',
      timeScale: 1,
      promptMs: CAPPED_MS,
      legs: { '13800000001': { result: 'answer', ringMs: 200, talkMs: 30_000 } },
    });
    const talked = c.hungUpAtFs! - c.answeredAtFs!;
    t.equal(c.hangupCause, 'OUTGOING_CALL_BARRED');
    t.ok(talked >= 3900 && talked <= 5000, `hung up ${(talked / 1000).toFixed(2)} s after answer: planned 4 s, at most 1 s late`);
    t.match(c.bgapi, [new RegExp(`^uuid_broadcast ${c.uuid} /sounds/hotline/capped\\.wav both$`)], 'warned with uuid_broadcast');
    t.same(c.api, [`uuid_kill ${c.uuid} OUTGOING_CALL_BARRED`], 'cut with api uuid_kill on the call\'s own socket');
    t.notOk(c.commands.some((x) => x.headers['call-command'] === 'hangup'), 'not with a sendmsg hangup (it waits for the broadcast)');
    const cdr = await d.cdr(c.uuid);
    t.ok(Number(cdr.billsec) <= 5, `billsec ${String(cdr.billsec)}`);
    t.equal(Number(cdr.cost).toFixed(4), '0.0600', 'one 6 s increment, as the plan allowed');
    await d.daemon.cdrs.flush();
    const row: { balance: unknown } | undefined = await d.knex('tenants').where({ id: 1 }).first('balance');
    t.equal(Number(row?.balance).toFixed(4), '0.0100', 'balance 0.0100: never below zero, never more than the plan allowed');
  });
}

t.test('drain time over: a call in the middle of a long prompt is cut at once (api uuid_kill SYSTEM_SHUTDOWN)', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { calls: { drainTimeoutS: 0 } });
  const [menu] = await d.knex('ivr_menus').insert({ tenant_id: 1, name: 'main', digits: 1, timeout_s: 5, max_retries: 2 });
  await d.knex('routing_rules').insert({ tenant_id: 1, priority: 1, percent: 100, action: 'ivr', target_id: menu, enabled: 1 });
  await d.daemon.store.poll();
  // timeScale 1: the greeting and menu prompt play for a real 60 s.
  const live = placeCall(d.port, { caller: '13912345678', destination: '4001012345', timeScale: 1, playbackMs: 60_000 });
  const deadline = Date.now() + 5000;
  while (d.daemon.calls.activeCalls === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 200));
  const stopAt = performance.now();
  const stopping = d.daemon.stop();
  const record = await live;
  const cutAfter = performance.now() - stopAt;
  await stopping;
  t.equal(record.hangupCause, 'SYSTEM_SHUTDOWN');
  t.same(record.api, [`uuid_kill ${record.uuid} SYSTEM_SHUTDOWN`]);
  t.ok(cutAfter < 1000, `cut ${cutAfter.toFixed(0)} ms after the drain ended, mid-prompt`);
});
