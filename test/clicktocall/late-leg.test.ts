/**
 * One owner of each click-to-call CDR (issue 11 review): a visitor leg that answered but reaches
 * the outbound socket only after the connect watchdog's deadline is still served, and its call
 * session writes the one CDR — the watchdog asks FreeSWITCH (uuid_exists), sees the leg is still
 * there and waits, instead of writing a `failed` CDR under the same call UUID (which, CDRs being
 * idempotent by call_uuid, would have been the only one kept).
 */
import t from 'tap';
import { dbTargets } from '../helpers/db';
import { advanceRequest, insertRequest } from '../../src/clicktocall/requests';
import { clickWithHeldLeg, startRig } from './helpers';

const AGENT = '13800000001';
const VISITOR = '13912345678';

t.test('a leg served after the watchdog deadline: exactly one CDR, the real one', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const { rig, release, knex, id, uuid } = await clickWithHeldLeg(t, db.url, VISITOR, AGENT, { clickToCall: { ringTimeoutS: 30, connectTimeoutS: 1, maxPerClientMinute: 0, maxPerClientDay: 0 } });

  // The watchdog's deadline (connectTimeoutS after the answer) passes while the leg is held back:
  // wait until it has judged — it asked FreeSWITCH about the leg, or (the first release) ended
  // the request on its own.
  const judged = async (): Promise<boolean> => {
    if (rig.fs.commands.some((c) => c.line === `api uuid_exists ${uuid}`)) return true;
    const row: { status: string } | undefined = await knex('click_to_call_requests').where({ request_id: id }).first('status');
    return row?.status === 'ended';
  };
  for (let i = 0; i < 500 && !(await judged()); i++) await new Promise((res) => setTimeout(res, 20));
  t.ok(await judged(), 'the watchdog judged the attempt before the leg arrived');
  const before: { status: string } | undefined = await knex('click_to_call_requests').where({ request_id: id }).first('status');
  t.equal(before?.status, 'visitor_answered', 'not ended: FreeSWITCH still has the leg');

  release();
  const originate = rig.fs.originates.find((o) => o.visitor === VISITOR);
  await originate?.call;
  const end = await rig.follow(id);
  t.match(end, { status: 'ended', visitor: 'answered', outcome: 'answered' });
  const cdr = await rig.d.cdr(uuid);
  t.match(cdr, { outcome: 'answered', answered_by: AGENT, origin: 'click_to_call' }, 'the call session\'s CDR');
  await rig.d.daemon.clickToCall?.dialer.idle();
  const rows: Array<{ outcome: string }> = await knex('cdrs').where({ call_uuid: uuid }).select('outcome');
  t.same(rows.map((x) => x.outcome), ['answered'], 'exactly one CDR for the call');
  t.equal(await rig.d.daemon.clickToCall?.dialer.sweep(new Date(Date.now() + 600_000)), 0, 'the sweeper has nothing to end');
});

t.test('legState: served here, advanced elsewhere, alive, gone, unknown', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const rig = await startRig(db.url, { fs: { channels: ['5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0a01'] } });
  t.teardown(() => rig.stop());
  const dialer = rig.d.daemon.clickToCall!.dialer;
  const { knex } = rig.d;
  const insert = async (requestId: string, status: 'visitor_answered' | 'connecting'): Promise<void> => {
    await insertRequest(knex, {
      requestId, callUuid: requestId.replace(/.$/, '1'), widgetId: 1, tenantId: 1, accessNumber: '4001012345', visitorNumber: VISITOR,
      clientAddress: '127.0.0.1', webOrigin: null, node: 'test', requestedAt: new Date(),
    });
    await advanceRequest(knex, requestId, status);
  };
  await insert('5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0a00', 'visitor_answered');
  t.equal(await dialer.legState({ requestId: '5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0a00', callUuid: '5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0a01' }), 'alive');
  t.equal(await dialer.legState({ requestId: '5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0a00', callUuid: '5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0a99' }), 'gone');
  await insert('5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0b00', 'connecting');
  t.equal(await dialer.legState({ requestId: '5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0b00', callUuid: '5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0b01' }), 'served', 'a session elsewhere advanced it');
  await rig.fs.close();
  for (let i = 0; i < 200 && rig.d.daemon.clickToCall!.originator.ready; i++) await new Promise((res) => setTimeout(res, 10));
  t.equal(await dialer.legState({ requestId: '5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0a00', callUuid: '5b6c0a44-6a4e-4a55-9b7e-0a0a0a0a0a01' }), 'unknown', 'FreeSWITCH cannot be asked');
});
