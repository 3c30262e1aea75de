/**
 * Clicks through a real daemon to the FreeSWITCH stand-ins: a visitor who answers is connected to
 * the demo tenant's group exactly like a caller who dialled 4001012345 (screening, admission,
 * greeting, hunting, CDR), and one who is busy, does not answer or cannot be reached still gets
 * exactly one CDR. Both databases.
 */
import t from 'tap';
import { createKnex } from '../../src/db/connect';
import { UNUSED_EVENTS } from '../../src/esl/call-channel';
import { allApps, servedClaimApp } from '../calls/helpers';
import { dbTargets } from '../helpers/db';
import { callUuidOf, startRig } from './helpers';

const AGENT = '13800000001';

for (const target of dbTargets()) {
  t.test(target.name, async (t) => {
    const db = await target.create();
    t.teardown(() => db.destroy());
    const rig = await startRig(db.url, {
      fs: {
        visitors: { '13900000001': { result: 'busy' }, '13900000002': { result: 'no_answer' }, '13900000003': { result: 'unreachable' }, '13900000004': { result: 'timer_expire' }, '13912345678': { result: 'answer', ringMs: 30 } },
        callScript: () => ({ legs: { [AGENT]: { result: 'answer', ringMs: 20, talkMs: 1200 } } }),
      },
    });
    t.teardown(() => rig.stop());
    const { knex } = rig.d;

    t.test('answered: the visitor is connected to the tenant, the normal flow, one CDR rated for both legs', async (t) => {
      const r = await rig.post({ widget: 'demo-click-to-call', number: '139 1234 5678' });
      t.equal(r.status, 202);
      t.match(r.body, { id: /^[0-9a-f-]{36}$/, status: 'dialing' });
      const id = String(r.body.id);
      const seen = new Set<string>();
      await rig.follow(id, (s) => {
        seen.add(s);
        return s === 'connected';
      });
      t.ok(seen.has('connected'), 'connected while the agent talks');
      const end = await rig.follow(id);
      t.match(end, { status: 'ended', visitor: 'answered', outcome: 'answered' });
      const uuid = await callUuidOf(knex, id);
      const cdr = await rig.d.cdr(uuid);
      t.match(cdr, { caller: '13912345678', access_number: '4001012345', tenant_id: 1, outcome: 'answered', answered_by: AGENT, origin: 'click_to_call', call_type: 'mobile' });
      t.ok(Number(cdr.widget_id) > 0, 'the widget');
      t.not(cdr.visitor_ring_s, null, 'how long the visitor rang');
      t.ok(Number(cdr.visitor_cost) > 0, 'the visitor leg is rated (mobile, 0.15/min, 60 s increments)');
      t.equal(Number(cdr.cost), Number(cdr.visitor_cost) * 2, 'both legs: the call to the tenant and the visitor leg');
      const originate = rig.fs.originates.find((o) => o.visitor === '13912345678')!;
      t.equal(originate.vars.origination_uuid, uuid, 'the CDR is under the UUID we chose');
      t.equal(originate.vars.origination_caller_id_number, '4001012345', 'the visitor sees the access number');
      t.equal(originate.appArgs, `127.0.0.1:${rig.d.port} async full`, "the socket application gets 'async full' (quoted)");
      const call = await originate.call!;
      t.same(call.commands.slice(0, 5).map((c) => c.line.split(' ')[0]), ['connect', 'myevents', 'linger', 'nixevent', 'sendmsg'], 'linger and nixevent accepted: a full socket');
      t.notOk(call.apps.some((a) => a.app === 'play_and_get_digits'), 'no PIN prompt');
      const apps = allApps(call);
      t.equal(apps[0], servedClaimApp(), 'claimed like every call: the handled flag first, with the ringback (also as transfer_ringback: FreeSWITCH plays that to an answered caller channel, and this leg ran no dialplan)');
      t.ok(apps.includes('playback file_string:///sounds/hotline/ringback.wav!/sounds/hotline/welcome.wav'), 'the answer prompt (system ringback.wav by default), then the tenant greeting, as one prompt');
      t.notOk(UNUSED_EVENTS.includes('CHANNEL_BRIDGE' as (typeof UNUSED_EVENTS)[number]), 'CHANNEL_BRIDGE stays subscribed: it says an agent answered');
      t.ok(call.subscribed.has('CHANNEL_BRIDGE'));
      t.match(call.bridges[0], { number: AGENT, vars: { origination_caller_id_number: '13912345678' } }, 'the agent sees the visitor as the caller');
      const req = (await knex('click_to_call_requests').where({ request_id: id }).first()) as Record<string, unknown>;
      t.not(req.visitor_answered_at, null);
      t.not(req.connected_at, null);
      t.not(req.ended_at, null);
    });

    for (const [number, cause, visitor] of [
      ['13900000001', 'USER_BUSY', 'busy'],
      ['13900000002', 'NO_ANSWER', 'no_answer'],
      ['13900000003', 'UNALLOCATED_NUMBER', 'unreachable'],
      ['13900000004', 'RECOVERY_ON_TIMER_EXPIRE', 'unreachable'],
    ] as const) {
      t.test(`visitor ${visitor} (${cause}): one CDR, the request ended`, async (t) => {
        const r = await rig.post({ widget: 'demo-click-to-call', number });
        t.equal(r.status, 202);
        const end = await rig.follow(String(r.body.id));
        t.match(end, { status: 'ended', visitor, outcome: 'abandoned' });
        const uuid = await callUuidOf(knex, String(r.body.id));
        const cdr = await rig.d.cdr(uuid);
        t.match(cdr, { caller: number, access_number: '4001012345', tenant_id: 1, outcome: 'abandoned', hangup_cause: cause, origin: 'click_to_call', answered_at: null, billsec: 0, group_id: null });
        t.equal(Number(cdr.cost), 0, 'nothing to pay');
        t.ok(Number(cdr.visitor_ring_s) >= 0);
        await rig.d.daemon.clickToCall!.dialer.idle();
        t.equal(Number((await knex('cdrs').where({ call_uuid: uuid }).count({ n: '*' }))[0].n), 1, 'exactly one');
        t.equal(Number((await knex('notifications').count({ n: '*' }))[0].n), 0, 'no missed-call notification: the tenant was never called');
      });
    }
  });
}

t.test('an answered leg that never reaches the outbound socket, and a result lost with the connection: still one CDR each', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  // FreeSWITCH is told to hand the leg to a port nobody listens on.
  const rig = await startRig(db.url, {
    fs: { timeScale: 1, visitors: { '13912345678': { result: 'answer', ringMs: 10 }, '13900000002': { result: 'no_answer' } } },
    settings: { clickToCall: { ringTimeoutS: 30, connectTimeoutS: 1, maxPerClientMinute: 0, maxPerClientDay: 0, socketAddress: '127.0.0.1:1' } },
  });
  t.teardown(() => rig.stop());
  const { knex } = rig.d;
  const lostSocket = await rig.post({ widget: 'demo-click-to-call', number: '13912345678' });
  t.match(await rig.follow(String(lostSocket.body.id)), { status: 'ended', visitor: 'answered', outcome: 'failed' });
  t.match(await rig.d.cdr(await callUuidOf(knex, String(lostSocket.body.id))), { outcome: 'failed', origin: 'click_to_call', hangup_cause: 'NORMAL_TEMPORARY_FAILURE' });

  const ringing = await rig.post({ widget: 'demo-click-to-call', number: '13900000002' });
  const id = String(ringing.body.id);
  await rig.follow(id, (s) => s === 'dialing');
  await rig.fs.close(); // the BACKGROUND_JOB can now never come
  const dialer = rig.d.daemon.clickToCall!.dialer;
  await dialer.idle();
  t.equal(await dialer.sweep(new Date(Date.now() + 10_000)), 0, 'not while the visitor could still be ringing');
  t.equal(await dialer.sweep(new Date(Date.now() + 120_000)), 1, 'the sweeper ends it once the visitor cannot be ringing any more');
  t.match(await rig.follow(id), { status: 'ended', outcome: 'failed' });
  const uuid = await callUuidOf(knex, id);
  t.match(await rig.d.cdr(uuid), { outcome: 'failed', origin: 'click_to_call' });
  t.equal(await dialer.sweep(new Date(Date.now() + 240_000)), 0, 'and only once');
});

t.test('a sweep under way when the daemon stops still spools its CDR before the CDR writer stops', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const rig = await startRig(db.url, { fs: { timeScale: 1, visitors: { '13900000002': { result: 'no_answer' } } } });
  t.teardown(() => rig.stop());
  const ringing = await rig.post({ widget: 'demo-click-to-call', number: '13900000002' });
  const id = String(ringing.body.id);
  await rig.follow(id, (s) => s === 'dialing');
  const uuid = await callUuidOf(rig.d.knex, id);
  await rig.fs.close(); // the BACKGROUND_JOB can now never come: only the sweeper ends the attempt
  const dialer = rig.d.daemon.clickToCall!.dialer;
  await dialer.idle();
  // The sweeper's interval fires just as SIGTERM comes (twice: a sweep still under way is not doubled).
  const later = new Date(Date.now() + 120_000);
  dialer.sweepInBackground(later);
  dialer.sweepInBackground(later);
  await rig.d.daemon.stop();
  // The daemon's own connection is gone: read what it left with a new one.
  const knex = createKnex(db.url);
  t.teardown(() => knex.destroy());
  t.match(await knex('click_to_call_requests').where({ request_id: id }).first(), { status: 'ended', outcome: 'failed' }, 'the sweep ended the request');
  const cdrs = (await knex('cdrs').where({ call_uuid: uuid })) as Array<Record<string, unknown>>;
  t.equal(cdrs.length, 1, 'and its CDR reached the database with the final flush, once');
  t.match(cdrs[0], { outcome: 'failed', origin: 'click_to_call' });
});
