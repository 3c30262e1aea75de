// NotificationDispatcher over SMS, on real SQLite and MariaDB with a real local HTTP gateway:
// delivery, retry with backoff, timeout, giving up, permanent errors, two daemons at once,
// metrics.
import type { Knex } from 'knex';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { createKnex, fromDbTimestamp } from '../../src/db/connect';
import { NotificationDispatcher, type DispatcherOptions } from '../../src/notify/dispatcher';
import { notificationsCronJob } from '../../src/notify/cron-job';
import { createNotifyMetrics } from '../../src/notify/metrics';
import type { missedCallPayload} from '../../src/notify/queue';
import { queueMissedCall } from '../../src/notify/queue';
import { dbTargets, type TestDb } from '../helpers/db';
import { log, missed, notifySettings, outbox, smsGateway, tenant } from './helpers';

const SMS = tenant('13800000000');
/** Every test CDR ended around 2026-11-21T02:0x; this is later, so they are all due. */
const T0 = new Date('2026-11-21T03:00:00.000Z');
const MIN = 60_000;

function eachDb(t: Test, name: string, fn: (t: Test, knex: Knex, db: TestDb) => Promise<void>): void {
  void t.test(name, async (t) => {
    for (const target of dbTargets()) {
      await t.test(target.name, async (t) => {
        const db = await target.create();
        t.teardown(() => db.destroy());
        await fn(t, db.knex, db);
      });
    }
  });
}

function dispatcher(t: Test, knex: Knex, opts: Partial<DispatcherOptions> = {}): NotificationDispatcher {
  const d = new NotificationDispatcher({ knex, notify: notifySettings(), log, ...opts });
  t.teardown(() => d.stop());
  return d;
}

eachDb(t, 'the gateway receives the JSON; the row is marked sent', async (t, knex) => {
  const gw = await smsGateway(t);
  const registry = new Registry();
  const metrics = createNotifyMetrics(registry);
  const call = missed(1, { started_at: '2026-11-21 12:05:00.000', caller: '13912345678', access_number: '4001012345' });
  await queueMissedCall(knex, { tenant: SMS, cdr: call });
  const d = dispatcher(t, knex, { notify: notifySettings({ smsGatewayUrl: gw.url }), metrics });

  const report = await d.runOnce(T0);
  t.same(report, { claimed: 1, sent: 1, retried: 0, failed: 0, lost: 0 });
  t.equal(gw.requests.length, 1);
  t.same(gw.requests[0].body, {
    to: '13800000000',
    caller: '13912345678',
    accessNumber: '4001012345',
    time: '2026-11-21 20:05',
    outcome: 'no_answer',
    text: '未接来电：13912345678 于 2026-11-21 20:05 致电 4001012345（无人接听）',
  });
  t.match(gw.requests[0].contentType, /^application\/json/);
  const [row] = await outbox(knex);
  t.match(row, { status: 'sent', attempts: 1, last_error: null });
  t.same(fromDbTimestamp(row.sent_at), T0);

  t.same(await d.runOnce(new Date(T0.getTime() + 10 * MIN)), { claimed: 0, sent: 0, retried: 0, failed: 0, lost: 0 }, 'nothing twice');
  t.equal(gw.requests.length, 1);

  const text = await registry.metrics();
  t.match(text, /hotline_notifications_sent_total\{channel="sms",result="sent"\} 1/);
  t.match(text, /hotline_notifications_sent_total\{channel="email",result="failed"\} 0/, 'known label sets start at 0');
  t.match(text, /hotline_notifications_backlog 0/);
});

eachDb(t, 'HTTP 500 then 200: retried after the backoff, delivered once', async (t, knex) => {
  const gw = await smsGateway(t, (n) => (n === 0 ? { status: 500, body: 'upstream down' } : { status: 200 }));
  const registry = new Registry();
  const metrics = createNotifyMetrics(registry);
  await queueMissedCall(knex, { tenant: SMS, cdr: missed(1) });
  const d = dispatcher(t, knex, { notify: notifySettings({ smsGatewayUrl: gw.url }), metrics });

  t.same(await d.runOnce(T0), { claimed: 1, sent: 0, retried: 1, failed: 0, lost: 0 });
  let [row] = await outbox(knex);
  t.match(row, { status: 'pending', attempts: 1, last_error: 'attempt 1: SMS gateway: HTTP 500: upstream down' });
  t.same(fromDbTimestamp(row.next_attempt_at), new Date(T0.getTime() + MIN), 'first retry one minute later');
  t.match(await registry.metrics(), /hotline_notifications_backlog 1/, 'backlog counts the pending row');

  t.same(await d.runOnce(new Date(T0.getTime() + 30_000)), { claimed: 0, sent: 0, retried: 0, failed: 0, lost: 0 }, 'not before the backoff');
  t.equal(gw.requests.length, 1);

  t.same(await d.runOnce(new Date(T0.getTime() + MIN)), { claimed: 1, sent: 1, retried: 0, failed: 0, lost: 0 }, 'due: sent');
  [row] = await outbox(knex);
  t.match(row, { status: 'sent', attempts: 2, last_error: null });
  t.same(gw.requests.map((r) => r.status), [500, 200], 'delivered once');
  const text = await registry.metrics();
  t.match(text, /channel="sms",result="retry"\} 1/);
  t.match(text, /channel="sms",result="sent"\} 1/);
  t.match(text, /hotline_notifications_backlog 0/);
});

eachDb(t, 'a hanging gateway times out; after maxAttempts the row is failed with last_error', async (t, knex) => {
  const gw = await smsGateway(t, () => ({ hang: true }));
  await queueMissedCall(knex, { tenant: SMS, cdr: missed(1) });
  const d = dispatcher(t, knex, { notify: notifySettings({ smsGatewayUrl: gw.url, timeoutMs: 300, maxAttempts: 3 }) });

  const started = Date.now();
  t.same(await d.runOnce(T0), { claimed: 1, sent: 0, retried: 1, failed: 0, lost: 0 });
  const took = Date.now() - started;
  // A lower bound only that is tight: the upper one shows it did not hang, with room for a loaded machine.
  t.ok(took >= 250 && took < 15_000, `gave up on the request after ${took} ms`);
  let [row] = await outbox(knex);
  t.match(row, { status: 'pending', attempts: 1, last_error: /no answer within 300 ms/ });

  // Backoff doubles: +1 min after attempt 1, +2 min after attempt 2.
  t.same(await d.runOnce(new Date(T0.getTime() + MIN)), { claimed: 1, sent: 0, retried: 1, failed: 0, lost: 0 });
  [row] = await outbox(knex);
  t.same(fromDbTimestamp(row.next_attempt_at), new Date(T0.getTime() + MIN + 2 * MIN), 'second backoff: 2 minutes');

  t.same(await d.runOnce(new Date(T0.getTime() + 3 * MIN)), { claimed: 1, sent: 0, retried: 0, failed: 1, lost: 0 }, 'third attempt: gives up');
  [row] = await outbox(knex);
  t.match(row, { status: 'failed', attempts: 3, last_error: /^attempt 3: SMS gateway: no answer within 300 ms$/, sent_at: null });
  t.same(await d.runOnce(new Date(T0.getTime() + 24 * 60 * MIN)), { claimed: 0, sent: 0, retried: 0, failed: 0, lost: 0 }, 'failed rows stay failed');
  t.equal(gw.requests.length, 3);
});

eachDb(t, 'errors a retry cannot cure fail at once', async (t, knex) => {
  const gw = await smsGateway(t, (n) => (n === 0 ? { status: 400, body: '{"error":"bad number"}' } : { status: 429 }));
  await queueMissedCall(knex, { tenant: SMS, cdr: missed(1) });
  await queueMissedCall(knex, { tenant: SMS, cdr: missed(2) });
  const d = dispatcher(t, knex, { notify: notifySettings({ smsGatewayUrl: gw.url }), concurrency: 1 });
  t.same(await d.runOnce(T0), { claimed: 2, sent: 0, retried: 1, failed: 1, lost: 0 });
  const rows = await outbox(knex);
  t.match(rows[0], { status: 'failed', attempts: 1, last_error: /HTTP 400: \{"error":"bad number"\}/ }, '400: the request is wrong, give up');
  t.match(rows[1], { status: 'pending', attempts: 1, last_error: /HTTP 429/ }, '429: rate limited, retry');

  // No gateway configured: SMS rows are marked failed (the documented meaning of an empty SMS_GATEWAY_URL).
  await queueMissedCall(knex, { tenant: SMS, cdr: missed(3) });
  const none = dispatcher(t, knex);
  t.same(await none.runOnce(T0), { claimed: 1, sent: 0, retried: 0, failed: 1, lost: 0 });
  t.match((await outbox(knex))[2], { status: 'failed', last_error: /SMS_GATEWAY_URL is empty/ });

  // A DBA-mangled payload.
  await knex('notifications').insert({ tenant_id: 1, call_uuid: 'mangled', channel: 'sms', recipient: '13800000000', payload: '{not json', next_attempt_at: '2026-11-21 00:00:00.000' });
  t.same(await d.runOnce(T0), { claimed: 1, sent: 0, retried: 0, failed: 1, lost: 0 });
  t.match((await outbox(knex))[3], { status: 'failed', last_error: /payload is not the JSON/ });
});

eachDb(t, 'credentials in SMS_GATEWAY_URL go as HTTP Basic authentication', async (t, knex) => {
  const gw = await smsGateway(t);
  await queueMissedCall(knex, { tenant: SMS, cdr: missed(1) });
  const url = gw.url.replace('http://', 'http://hotline:s%40cret@');
  const d = dispatcher(t, knex, { notify: notifySettings({ smsGatewayUrl: url }) });
  t.equal((await d.runOnce(T0)).sent, 1);
  t.equal(gw.requests[0].authorization, `Basic ${Buffer.from('hotline:s@cret').toString('base64')}`);
});

eachDb(t, 'two dispatchers (two daemons) at once deliver each notification exactly once', async (t, knex, db) => {
  const N = 40;
  const gw = await smsGateway(t, () => ({ delayMs: 50 }));
  for (let i = 0; i < N; i++) await queueMissedCall(knex, { tenant: SMS, cdr: missed(i) });
  const other = createKnex(db.url, { poolMax: 4 });
  t.teardown(() => other.destroy());
  // Both connected before they start, and each request slow enough (50 ms) that neither can send
  // all 40 while the other is still connecting: otherwise they need not compete at all.
  await other.raw('select 1');
  await knex.raw('select 1');
  const notify = notifySettings({ smsGatewayUrl: gw.url });
  // Small batches and several rounds so that the two keep reading the same rows.
  const a = dispatcher(t, knex, { notify, batchSize: 8, maxRounds: 20, concurrency: 4 });
  const b = dispatcher(t, other, { notify, batchSize: 8, maxRounds: 20, concurrency: 4 });
  const [ra, rb] = await Promise.all([a.runOnce(T0), b.runOnce(T0)]);
  t.comment(`daemon A sent ${ra.sent} (lost ${ra.lost} claims), daemon B sent ${rb.sent} (lost ${rb.lost})`);
  t.ok(ra.lost + rb.lost > 0, 'they did compete for the same rows');
  t.equal(ra.sent + rb.sent, N, 'every notification sent');
  t.equal(gw.requests.length, N, 'the gateway got N requests');
  const callers = gw.requests.map((r) => r.body.caller);
  t.equal(new Set(callers).size, N, 'each notification exactly once');
  const rows = await outbox(knex);
  t.ok(rows.every((r) => r.status === 'sent' && r.attempts === 1), 'all sent at the first attempt');
  t.same(new Set(rows.map((r) => (JSON.parse(r.payload) as ReturnType<typeof missedCallPayload>).caller)), new Set(callers));
});

eachDb(t, 'a claim held by a daemon that died is taken over after the lease', async (t, knex) => {
  const gw = await smsGateway(t);
  await queueMissedCall(knex, { tenant: SMS, cdr: missed(1) });
  // A daemon claimed it (attempts 1, leased 5 minutes) and died before marking it.
  await knex('notifications').update({ attempts: 1, next_attempt_at: '2026-11-21 03:05:00.000' });
  const d = dispatcher(t, knex, { notify: notifySettings({ smsGatewayUrl: gw.url }) });
  t.equal((await d.runOnce(T0)).claimed, 0, 'not while the lease holds');
  t.same(await d.runOnce(new Date('2026-11-21T03:05:00.000Z')), { claimed: 1, sent: 1, retried: 0, failed: 0, lost: 0 }, 'taken over when it runs out');
  t.match((await outbox(knex))[0], { status: 'sent', attempts: 2 });
});

t.test('backoff: 1 min × 2^(attempt-1), capped at an hour', async (t) => {
  const d = new NotificationDispatcher({ knex: null as unknown as Knex, notify: notifySettings(), log });
  t.same([1, 2, 3, 4, 5, 6, 7, 8, 20].map((a) => d.backoffMs(a) / MIN), [1, 2, 4, 8, 16, 32, 60, 60, 60]);
});

t.test('start/stop: the standalone timer runs it', async (t) => {
  const target = dbTargets()[0];
  const db = await target.create();
  t.teardown(() => db.destroy());
  const gw = await smsGateway(t);
  await queueMissedCall(db.knex, { tenant: SMS, cdr: missed(1) });
  const d = new NotificationDispatcher({ knex: db.knex, notify: notifySettings({ smsGatewayUrl: gw.url }), log, clock: () => T0 });
  d.start(20);
  // Wait for the timer's first run with room for a loaded machine (it is due within 20 ms).
  for (let i = 0; i < 1500 && gw.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  await d.stop();
  t.equal(gw.requests.length, 1, 'sent by the timer');
  t.match((await outbox(db.knex))[0], { status: 'sent' });
});

t.test('a run stops claiming at its time budget or when aborted; the rest waits for the next run', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  // The gateway refuses each message (retried later), and records it before it answers.
  const gw = await smsGateway(t, () => ({ status: 503 }));
  for (let i = 0; i < 10; i++) await queueMissedCall(db.knex, { tenant: SMS, cdr: missed(i) });
  // Elapsed time as the run sees it: 200 ms per delivery attempt the gateway has seen, so the
  // budget is spent after the second whatever the machine's speed.
  const elapsedMs = (): number => gw.requests.length * 200;
  const d = dispatcher(t, db.knex, { notify: notifySettings({ smsGatewayUrl: gw.url, timeoutMs: 200 }), concurrency: 1, maxRunMs: 300, elapsedMs });
  const report = await d.runOnce(T0);
  t.equal(report.claimed, 2, 'claimed 2 of 10: the budget of 300 ms was spent after the second');
  const untouched = (await outbox(db.knex)).filter((r) => r.attempts === 0);
  t.equal(untouched.length, 10 - report.claimed, 'the others are untouched, still due');

  const aborted = new AbortController();
  aborted.abort();
  t.same(await d.runOnce(T0, { signal: aborted.signal }), { claimed: 0, sent: 0, retried: 0, failed: 0, lost: 0 }, 'aborted: claims nothing');
});

t.test('as a cron job: runs the dispatcher with the job\'s clock and signal', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const gw = await smsGateway(t);
  await queueMissedCall(db.knex, { tenant: SMS, cdr: missed(1) });
  const d = dispatcher(t, db.knex, { notify: notifySettings({ smsGatewayUrl: gw.url }) });
  const job = notificationsCronJob(d);
  t.match(job, { name: 'notifications', schedule: '*/20 * * * * *', scope: 'cluster' });
  const rows = await job.run({ tick: T0, now: () => T0, signal: new AbortController().signal, log, node: 'test' });
  t.equal(rows, 1);
  t.equal(gw.requests.length, 1);
});

eachDb(t, 'the notifications job\'s refresh hook sets the backlog from the table without sending (a restarted daemon, a tick another daemon ran)', async (t, knex) => {
  const gw = await smsGateway(t);
  await queueMissedCall(knex, { tenant: SMS, cdr: missed(1) });
  await queueMissedCall(knex, { tenant: SMS, cdr: missed(2) });
  const registry = new Registry();
  const metrics = createNotifyMetrics(registry);
  const job = notificationsCronJob(dispatcher(t, knex, { notify: notifySettings({ smsGatewayUrl: gw.url }), metrics }));
  t.match(await registry.metrics(), /hotline_notifications_backlog 0/, 'a fresh daemon knows nothing yet');
  t.ok(job.refresh, 'the job has a refresh hook');
  await job.refresh?.();
  t.match(await registry.metrics(), /hotline_notifications_backlog 2/, 'refreshed: both pending rows');
  t.equal(gw.requests.length, 0, 'nothing sent by a refresh');
  t.same((await outbox(knex)).map((r) => r.status), ['pending', 'pending'], 'nothing claimed');
});
