// queueMissedCall on real SQLite and MariaDB: missed calls queue one notification for the
// tenant's missed_call_notify (a phone → sms, an e-mail → email), idempotently by
// (call_uuid, channel); answered and platform-ended calls queue nothing.
import t from 'tap';
import { fromDbTimestamp } from '../../src/db/connect';
import { isMissedCall, missedCallPayload, missedCallsOf, notifyTarget, queueMissedCall, queueMissedCalls } from '../../src/notify/queue';
import { OUTCOMES } from '../../src/metrics';
import { withDatabases } from '../helpers/db';
import { cdr } from '../cdr/records';
import { missed, outbox, tenant } from './helpers';

t.test('notifyTarget: phone → sms, e-mail → email, anything else → nothing', async (t) => {
  t.same(notifyTarget('13912345678'), { channel: 'sms', recipient: '13912345678' });
  t.same(notifyTarget(' 139-1234-5678 '), { channel: 'sms', recipient: '13912345678' }, 'DBA formatting removed');
  t.same(notifyTarget('+8613912345678'), { channel: 'sms', recipient: '+8613912345678' });
  t.same(notifyTarget('010 8888 6666'), { channel: 'sms', recipient: '01088886666' });
  t.same(notifyTarget('boss@acme.com.cn'), { channel: 'email', recipient: 'boss@acme.com.cn' });
  t.same(notifyTarget(' Ops.Team+hotline@mail.example.net '), { channel: 'email', recipient: 'Ops.Team+hotline@mail.example.net' });
  for (const bad of [null, '', '   ', 'n/a', '1234', '13912345678x', 'boss@', '@acme.com', 'a b@acme.com', 'boss@acme', 'x@y.com\r\nBcc: all@evil.com', '13912345678,13812345678']) {
    t.equal(notifyTarget(bad), null, JSON.stringify(bad));
  }
});

t.test('isMissedCall: not answered by a person', async (t) => {
  const missedOutcomes = OUTCOMES.filter((outcome) => isMissedCall({ outcome, group_id: 10 }));
  t.same(missedOutcomes.sort(), ['abandoned', 'busy', 'no_answer', 'voicemail']);
  t.notOk(isMissedCall({ outcome: 'abandoned', group_id: null }), 'hung up before reaching any phone (greeting, PIN): not missed');
  t.ok(isMissedCall({ outcome: 'no_answer', group_id: null }));
});

t.test('payload: caller, access number, time in the tenant\'s timezone, outcome, Chinese text', async (t) => {
  // started 2026-11-21T12:05:00Z = 20:05 in Shanghai
  const call = missed(0, { started_at: '2026-11-21 12:05:00.000', caller: '13912345678', access_number: '4001012345' });
  const p = missedCallPayload(tenant('13800000000'), call);
  t.same(p, {
    caller: '13912345678',
    accessNumber: '4001012345',
    time: '2026-11-21 20:05',
    timezone: 'Asia/Shanghai',
    startedAt: '2026-11-21T12:05:00.000Z',
    outcome: 'no_answer',
    text: '未接来电：13912345678 于 2026-11-21 20:05 致电 4001012345（无人接听）',
  });
  t.equal(missedCallPayload(tenant('x', { timezone: 'America/New_York' }), call).time, '2026-11-21 07:05', 'another tenant timezone');
  t.equal(missedCallPayload(tenant('x', { timezone: 'Not/AZone' }), call).time, '2026-11-21 20:05', 'an invalid zone falls back to Asia/Shanghai');
  const anon = missedCallPayload(tenant('x'), missed(0, { caller: 'anonymous\r\n${system(id)}', outcome: 'busy' }));
  t.equal(anon.caller, '', 'a caller that is not a plain number is not passed on');
  t.match(anon.text, /^未接来电：未知号码 于 .* 致电 4001000001（坐席忙）$/);
  t.match(missedCallPayload(tenant('x'), missed(0, { outcome: 'voicemail' })).text, /（已留言）$/);
  t.match(missedCallPayload(tenant('x'), missed(0, { outcome: 'abandoned' })).text, /（来电者已挂机）$/);
});

t.test('missedCallsOf pairs CDRs with the snapshot\'s tenants', async (t) => {
  const tenants = new Map([[1, tenant('13800000000')], [2, tenant('a@b.cn', { id: 2 })]]);
  const a = missed(1);
  const b = missed(2, { tenant_id: 2 });
  const pairs = missedCallsOf(tenants, [a, b, missed(3, { tenant_id: null }), missed(4, { tenant_id: 77 })]);
  t.same(pairs.map((p) => [p.tenant.id, p.cdr.call_uuid]), [[1, a.call_uuid], [2, b.call_uuid]]);
});

withDatabases(t, async (t, knex) => {
  const sms = tenant('13800000000');
  const mail = tenant('boss@acme.com.cn', { id: 2 });

  const call = missed(1);
  const first = await queueMissedCall(knex, { tenant: sms, cdr: call });
  t.same(first, { callUuid: call.call_uuid, channel: 'sms', recipient: '13800000000' });
  const again = await queueMissedCall(knex, { tenant: sms, cdr: call });
  t.same(again, first, 'the replay reports the same target');
  let rows = await outbox(knex);
  t.equal(rows.length, 1, 'queueMissedCall twice for one call queues one row');
  const row = rows[0];
  t.match(row, { tenant_id: 1, call_uuid: call.call_uuid, channel: 'sms', recipient: '13800000000', status: 'pending', attempts: 0, last_error: null, sent_at: null });
  t.same(fromDbTimestamp(row.next_attempt_at), fromDbTimestamp(call.ended_at), 'due when the call ended');
  t.same(JSON.parse(row.payload), missedCallPayload(sms, call), 'payload JSON');

  // In the CDR's transaction, and batches with duplicates and calls that do not qualify.
  await knex.transaction(async (trx) => {
    const queued = await queueMissedCalls(trx, [
      { tenant: mail, cdr: missed(2, { tenant_id: 2, outcome: 'busy' }) },
      { tenant: mail, cdr: missed(2, { tenant_id: 2, outcome: 'busy' }) }, // another UUID (cdr() makes a random one)
      { tenant: sms, cdr: call }, // already queued
      { tenant: sms, cdr: cdr(3) }, // answered
      { tenant: sms, cdr: missed(4, { outcome: 'blocked' }) },
      { tenant: sms, cdr: missed(5, { outcome: 'abandoned', group_id: null }) },
      { tenant: tenant(null), cdr: missed(6) }, // no missed_call_notify
      { tenant: tenant('call me'), cdr: missed(7) }, // unusable value
      { tenant: sms, cdr: missed(8, { tenant_id: 99 }) }, // CDR of another tenant
    ]);
    t.equal(queued.length, 3, 'two new e-mails and the replayed sms reported');
  });
  rows = await outbox(knex);
  t.same(rows.map((r) => r.channel), ['sms', 'email', 'email']);
  t.same(rows.filter((r) => r.channel === 'email').map((r) => r.recipient), ['boss@acme.com.cn', 'boss@acme.com.cn']);

  // A batch repeating one call, and a rolled-back transaction queues nothing.
  const dup = missed(9);
  t.equal((await queueMissedCalls(knex, [{ tenant: sms, cdr: dup }, { tenant: sms, cdr: dup }])).length, 1);
  await t.rejects(
    knex.transaction(async (trx) => {
      await queueMissedCall(trx, { tenant: sms, cdr: missed(10) });
      throw new Error('CDR insert failed');
    }),
  );
  t.equal((await outbox(knex)).length, 4, 'rolled back with the CDR');

  // Answered calls: nothing, for every non-missed outcome.
  for (const outcome of OUTCOMES.filter((o) => !['no_answer', 'busy', 'voicemail', 'abandoned'].includes(o))) {
    t.equal(await queueMissedCall(knex, { tenant: sms, cdr: missed(20, { outcome }) }), null, `${outcome}: nothing`);
  }
  t.equal((await outbox(knex)).length, 4, 'answered calls queued nothing');

  // `now` overrides the due time.
  const now = new Date('2030-01-01T00:00:00.000Z');
  const c = missed(30);
  await queueMissedCall(knex, { tenant: sms, cdr: c, now });
  const last = (await outbox(knex)).find((r) => r.call_uuid === c.call_uuid)!;
  t.same(fromDbTimestamp(last.next_attempt_at), now);
});
