// NotificationDispatcher over e-mail, on real SQLite and MariaDB with a real local SMTP listener
// (smtp-server, port 0, no auth, no TLS): the Chinese text arrives intact; a temporary refusal
// is retried; a refused mailbox fails at once; a dead server is retried.
import net from 'node:net';
import type { Knex } from 'knex';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { NotificationDispatcher, type DispatcherOptions } from '../../src/notify/dispatcher';
import { createNotifyMetrics } from '../../src/notify/metrics';
import { queueMissedCall } from '../../src/notify/queue';
import { dbTargets } from '../helpers/db';
import { log, missed, notifySettings, outbox, smtpListener, tenant } from './helpers';

const MAIL = tenant('boss@acme.com.cn');
const T0 = new Date('2026-11-21T03:00:00.000Z');
const MIN = 60_000;

function eachDb(t: Test, name: string, fn: (t: Test, knex: Knex) => Promise<void>): void {
  void t.test(name, async (t) => {
    for (const target of dbTargets()) {
      await t.test(target.name, async (t) => {
        const db = await target.create();
        t.teardown(() => db.destroy());
        await fn(t, db.knex);
      });
    }
  });
}

function dispatcher(t: Test, knex: Knex, opts: Partial<DispatcherOptions> = {}): NotificationDispatcher {
  const d = new NotificationDispatcher({ knex, notify: notifySettings(), log, ...opts });
  t.teardown(() => d.stop());
  return d;
}

eachDb(t, 'the SMTP listener receives the e-mail with the Chinese text intact', async (t, knex) => {
  const smtp = await smtpListener(t);
  const registry = new Registry();
  const metrics = createNotifyMetrics(registry);
  const call = missed(1, { started_at: '2026-11-21 12:05:00.000', caller: '13912345678', access_number: '4001012345', outcome: 'voicemail' });
  await queueMissedCall(knex, { tenant: MAIL, cdr: call });
  const d = dispatcher(t, knex, { notify: notifySettings({ smtpUrl: smtp.url, from: 'hotline@carrier.example' }), metrics });

  t.same(await d.runOnce(T0), { claimed: 1, sent: 1, retried: 0, failed: 0, lost: 0 });
  t.equal(smtp.mails.length, 1);
  const mail = smtp.mails[0];
  t.equal(mail.from, 'hotline@carrier.example', 'envelope sender = NOTIFY_FROM');
  t.same(mail.to, ['boss@acme.com.cn']);
  t.equal(mail.text, '未接来电：13912345678 于 2026-11-21 20:05 致电 4001012345（已留言）\n', 'the Chinese text, intact');
  t.equal(mail.subject, '未接来电：13912345678 2026-11-21 20:05', 'the subject, RFC 2047 encoded and intact');
  t.match(mail.headers['content-type'], /text\/plain; charset=utf-8/i);
  t.match(mail.raw, /^[\x20-\x7e\r\n\t]*$/, 'the message itself is 7-bit clean (encoded, not raw UTF-8)');
  t.match((await outbox(knex))[0], { status: 'sent', attempts: 1, last_error: null });
  t.match(await registry.metrics(), /hotline_notifications_sent_total\{channel="email",result="sent"\} 1/);
});

eachDb(t, 'a temporary refusal (451) is retried; a refused mailbox (550) fails at once', async (t, knex) => {
  const flaky = await smtpListener(t, { failData: 1 });
  await queueMissedCall(knex, { tenant: MAIL, cdr: missed(1) });
  const d = dispatcher(t, knex, { notify: notifySettings({ smtpUrl: flaky.url }) });
  t.same(await d.runOnce(T0), { claimed: 1, sent: 0, retried: 1, failed: 0, lost: 0 });
  t.match((await outbox(knex))[0], { status: 'pending', attempts: 1, last_error: /451/ });
  t.same(await d.runOnce(new Date(T0.getTime() + MIN)), { claimed: 1, sent: 1, retried: 0, failed: 0, lost: 0 });
  t.equal(flaky.mails.length, 1, 'delivered once');

  const refusing = await smtpListener(t, { rejectRecipient: true });
  await queueMissedCall(knex, { tenant: MAIL, cdr: missed(2) });
  const r = dispatcher(t, knex, { notify: notifySettings({ smtpUrl: refusing.url }) });
  t.same(await r.runOnce(T0), { claimed: 1, sent: 0, retried: 0, failed: 1, lost: 0 });
  t.match((await outbox(knex))[1], { status: 'failed', attempts: 1, last_error: /550/ });
});

eachDb(t, 'no SMTP server, a silent one, or none configured', async (t, knex) => {
  // A port where nothing listens: connection refused, retried.
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await queueMissedCall(knex, { tenant: MAIL, cdr: missed(1) });
  const d = dispatcher(t, knex, { notify: notifySettings({ smtpUrl: `smtp://127.0.0.1:${port}` }) });
  t.same(await d.runOnce(T0), { claimed: 1, sent: 0, retried: 1, failed: 0, lost: 0 });
  t.match((await outbox(knex))[0], { status: 'pending', last_error: /ECONNREFUSED|ESOCKET/ });

  // A server that accepts the connection and never greets: cut at NOTIFY_TIMEOUT_MS.
  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const sockets = new Set<net.Socket>();
  silent.on('connection', (s) => sockets.add(s));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  await queueMissedCall(knex, { tenant: MAIL, cdr: missed(2) });
  const mute = dispatcher(t, knex, { notify: notifySettings({ smtpUrl: `smtp://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, timeoutMs: 300 }) });
  const started = Date.now();
  const report = await mute.runOnce(new Date(T0.getTime() + 10 * MIN));
  const took = Date.now() - started;
  t.match(report, { claimed: 2, retried: 2 }, 'both retried later');
  t.ok(took < 15_000, `gave up after ${took} ms (a bound that shows it did not hang, with room for a loaded machine)`);
  t.match((await outbox(knex))[1], { status: 'pending', last_error: /no answer within 300 ms|timeout|ETIMEDOUT/i });

  await queueMissedCall(knex, { tenant: MAIL, cdr: missed(3) });
  const none = dispatcher(t, knex);
  await knex('notifications').whereNot('call_uuid', (await outbox(knex))[2].call_uuid).update({ status: 'sent' });
  t.same(await none.runOnce(T0), { claimed: 1, sent: 0, retried: 0, failed: 1, lost: 0 });
  t.match((await outbox(knex))[2], { status: 'failed', last_error: /SMTP_URL is empty/ });
});

t.test('SMS and e-mail from one run', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const smtp = await smtpListener(t);
  await queueMissedCall(db.knex, { tenant: MAIL, cdr: missed(1) });
  await queueMissedCall(db.knex, { tenant: tenant('13800000000'), cdr: missed(2) });
  const d = dispatcher(t, db.knex, { notify: notifySettings({ smtpUrl: smtp.url }) });
  const report = await d.runOnce(T0);
  t.match(report, { claimed: 2, sent: 1, failed: 1 }, 'the e-mail sent; the SMS failed (no gateway)');
  t.equal(smtp.mails.length, 1);
});
