/**
 * A visitor who answers after the attempt was given up: the dialer ended the request (here the
 * sweeper, FreeSWITCH's inbound socket being unreachable, so it judged by the database alone) and
 * wrote the attempt's CDR; then the leg reaches the outbound socket. The call session kills it at
 * once with `api uuid_kill <uuid> ORIGINATOR_CANCEL` on the leg's own socket (the exact line the
 * stand-in receives), unclaimed: no hotline_handled, no greeting, no bridge to the tenant's
 * phones, no admission, no second CDR.
 */
import t from 'tap';
import { lateLegVerdict } from '../../src/clicktocall/session';
import { fetchMetrics } from '../helpers/daemon';
import { dbTargets } from '../helpers/db';
import { clickWithHeldLeg } from './helpers';

const AGENT = '13800000001';
const VISITOR = '13912345678';

t.test('lateLegVerdict: only a request that had already ended gives its leg up', async (t) => {
  t.equal(lateLegVerdict(true, null), 'serve', 'taken: the normal case');
  t.equal(lateLegVerdict(false, 'ended'), 'given_up');
  t.equal(lateLegVerdict(null, null), 'serve', 'the database could not say: a visitor is on the line');
  t.equal(lateLegVerdict(false, null), 'serve', 'the row could not be read');
  t.equal(lateLegVerdict(false, 'connected'), 'serve');
});

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

for (const target of dbTargets()) {
  t.test(`${target.name}: a leg answered after its attempt was given up is killed, not served`, async (t) => {
    const db = await target.create();
    t.teardown(() => db.destroy());
    const { rig, release, knex, id, uuid } = await clickWithHeldLeg(t, db.url, VISITOR, AGENT);
    await rig.follow(id, (s) => s === 'visitor_answered');

    // FreeSWITCH's inbound socket goes away; the sweeper, later, gives the attempt up.
    await rig.fs.close();
    const dialer = rig.d.daemon.clickToCall!.dialer;
    for (let i = 0; i < 200 && rig.d.daemon.clickToCall!.originator.ready; i++) await new Promise((res) => setTimeout(res, 10));
    t.equal(await dialer.sweep(new Date(Date.now() + 600_000)), 1, 'the sweeper ended the attempt');
    await dialer.idle();
    t.match(await rig.d.cdr(uuid), { outcome: 'failed', origin: 'click_to_call' }, 'the attempt\'s CDR, by the dialer');
    const usageBefore = Number((await knex('tenant_usage').where({ tenant_id: 1 }).sum({ n: 'calls' }))[0].n ?? 0);

    // Now the visitor's leg reaches the outbound socket.
    release();
    const originate = rig.fs.originates.find((o) => o.visitor === VISITOR);
    const call = await originate!.call!;
    const kills = call.commands.filter((c) => c.line.startsWith('api uuid_kill'));
    t.same(kills.map((c) => c.line), [`api uuid_kill ${uuid} ORIGINATOR_CANCEL`], 'killed once, on its own socket, as originator cancel');
    t.same(call.api, [`uuid_kill ${uuid} ORIGINATOR_CANCEL`]);
    t.equal(call.hangupCause, 'ORIGINATOR_CANCEL');
    t.same(call.bridges, [], 'never bridged to the tenant');
    t.same(call.apps, [], 'no application ran: no greeting, no answer prompt');
    t.equal(call.variables.hotline_handled, undefined, 'never claimed');

    // The session is over once the daemon holds no call; it made no CDR. It was counted started,
    // so it is counted ended (failed): started minus ended stays the calls in progress.
    for (let i = 0; i < 500 && (await metric(rig.d.daemon.metricsPort, 'hotline_active_calls')) > 0; i++) await new Promise((res) => setTimeout(res, 10));
    t.equal(await metric(rig.d.daemon.metricsPort, 'hotline_active_calls'), 0);
    t.equal(await metric(rig.d.daemon.metricsPort, 'hotline_calls_started_total'), 1, 'counted started');
    t.equal(await metric(rig.d.daemon.metricsPort, 'hotline_calls_ended_total'), 1, 'and ended');
    t.match(await fetchMetrics(rig.d), /^hotline_calls_ended_total\{outcome="failed",number_kind="\w+"\} 1$/m, 'as failed');
    const rows: Array<{ outcome: string; cost: unknown }> = await knex('cdrs').where({ call_uuid: uuid }).select('outcome', 'cost');
    t.same(rows.map((x) => x.outcome), ['failed'], 'one CDR, the dialer\'s');
    t.equal(Number(rows[0]?.cost ?? 0), 0, 'nothing billed');
    t.equal(Number((await knex('tenant_usage').where({ tenant_id: 1 }).sum({ n: 'calls' }))[0].n ?? 0), usageBefore, 'not admitted: no call counted');
    const row: { status: string; outcome: string } | undefined = await knex('click_to_call_requests').where({ request_id: id }).first('status', 'outcome');
    t.same(row, { status: 'ended', outcome: 'failed' }, 'the request stays as the dialer ended it');
  });
}
