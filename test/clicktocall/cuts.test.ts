/**
 * A prepaid tenant's click-to-call is cut on time for TWO legs: the platform pays the visitor's
 * leg and the call to the tenant's phone at the same rate, and the visitor's leg arrives already
 * answered (no CHANNEL_ANSWER: the guard counts from FreeSWITCH's answer time). 0.1400 left at
 * 0.60/min in 6 s increments is 0.0700 a leg: the plan allows 6 s, warns at once and cuts 2 s
 * early, at 4 s (as test/calls/cuts.test.ts for a dialled call with half the balance; one leg's
 * worth, 0.1400, would have been cut at 10 s). The warning is due at once, while the visitor still
 * hears the answer prompt (mixed in over it, M13, or queued, M7), so the prompt is a short one
 * here and the phone answers after it. Real time (timeScale 1), the whole daemon, SQLite and MariaDB.
 */
import t from 'tap';
import { dbTargets } from '../helpers/db';
import { cutTiming } from '../peer/fake-freeswitch';
import { callUuidOf, startRig } from './helpers';

const VISITOR = '13912345678';
const AGENT = '13800000001';

for (const target of dbTargets()) {
  t.test(`${target.name}: cut 4 s after the visitor answered; both legs paid; the balance stays above zero`, async (t) => {
    const db = await target.create();
    t.teardown(() => db.destroy());
    const rig = await startRig(db.url, {
      fs: {
        timeScale: 1,
        visitors: { [VISITOR]: { result: 'answer', ringMs: 300 } },
        callScript: () => ({ promptMs: { '/sounds/hotline/capped.wav': 1000 }, legs: { [AGENT]: { result: 'answer', ringMs: 200, talkMs: 30_000 } } }),
      },
      settings: { cron: { enabled: false } },
    });
    t.teardown(() => rig.stop());
    const { knex } = rig.d;
    await knex('rates').insert({ tenant_id: 1, call_type: 'mobile', per_minute: '0.6000', increment_s: 6, connect_fee: '0.0000' });
    await knex('tenants').where({ id: 1 }).update({ balance: '0.1400', caller_memory_hours: 0 });
    await rig.d.daemon.store.poll();

    const r = await rig.post({ widget: 'demo-click-to-call', number: VISITOR });
    t.equal(r.status, 202);
    const end = await rig.follow(String(r.body.id));
    t.match(end, { status: 'ended', visitor: 'answered' });
    const call = await rig.fs.originates.find((o) => o.visitor === VISITOR)!.call!;
    t.equal(call.hangupCause, 'OUTGOING_CALL_BARRED');
    // On the stand-in's own records: the visitor's answer, when the cut command reached it, when the leg went.
    const cut = cutTiming(call);
    t.ok(cut.late >= -50, `cut command ${(cut.late / 1000).toFixed(2)} s after the plan (answer + 4 s, half the balance a leg): never early`);
    // Inside the 2 s guard (a loaded machine's stall can add most of a second to the timer).
    t.ok(cut.late <= 1900, `cut command ${(cut.late / 1000).toFixed(2)} s after the plan: inside the 2 s guard`);
    t.ok(cut.landed <= 50, `the leg went ${cut.landed.toFixed(0)} ms after the command reached it`);
    // The warning, once: mixed in over the answer prompt when the guard fires while that prompt is
    // pending (uuid_displace, api), else queued (bgapi uuid_broadcast); which one depends on whether
    // the guard's start or the prompt's write came first, and both are heard (billing/warning.ts).
    const warnings = call.commands.filter((c) => / uuid_(displace|broadcast) \S+ (start )?\/sounds\/hotline\/capped\.wav/.test(c.line));
    t.equal(warnings.length, 1, `warned once (${warnings.map((w) => w.line.split(' ')[1]).join(', ')})`);
    t.same(call.api.filter((line) => !line.startsWith('uuid_displace ')), [`uuid_kill ${call.uuid} OUTGOING_CALL_BARRED`], 'cut with api uuid_kill');
    t.ok(call.api[call.api.length - 1]?.startsWith('uuid_kill '), 'the cut came after the warning');
    const cdr = await rig.d.cdr(await callUuidOf(knex, String(r.body.id)));
    t.match(cdr, { origin: 'click_to_call', outcome: 'answered' });
    t.equal(Number(cdr.visitor_cost).toFixed(4), '0.0600', 'the visitor leg: one 6 s increment');
    t.equal(Number(cdr.cost).toFixed(4), '0.1200', 'both legs');
    await rig.d.daemon.cdrs.flush();
    const row: { balance: unknown } | undefined = await knex('tenants').where({ id: 1 }).first('balance');
    t.equal(Number(row?.balance).toFixed(4), '0.0200', 'never below zero, never more than the plan allowed');
  });
}
