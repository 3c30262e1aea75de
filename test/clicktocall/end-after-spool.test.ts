/**
 * A click-to-call served by a call session: its request turns `ended` only once the call's CDR is
 * spooled. The other way round, a daemon that died between the two left an ended request (which
 * nobody judges again) and no CDR: the call was never charged. Now it leaves the CDR in the spool
 * (replayed at restart) and an unended request, which the sweeper ends later.
 */
import t from 'tap';
import type { HeldCdrCallbacks } from '../../src/cdr/writer';
import type { CdrRecord } from '../../src/cdr/record';
import { dbTargets } from '../helpers/db';
import { callUuidOf, startRig } from './helpers';

const AGENT = '13800000001';
const VISITOR = '13912345678';

t.test('the request ends after the CDR is on disk, not before', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const rig = await startRig(db.url, {
    fs: {
      visitors: { [VISITOR]: { result: 'answer', ringMs: 10 } },
      callScript: () => ({ legs: { [AGENT]: { result: 'answer', ringMs: 20, talkMs: 100 } } }),
    },
    settings: { clickToCall: { maxPerClientMinute: 0, maxPerClientDay: 0 } },
  });
  t.teardown(() => rig.stop());
  const { knex } = rig.d;
  // The spool write of the call's CDR is held until the test lets it go.
  const writer = rig.d.daemon.cdrs;
  const record = writer.record.bind(writer);
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  let reached: (cdr: CdrRecord) => void = () => undefined;
  const spooling = new Promise<CdrRecord>((resolve) => (reached = resolve));
  writer.record = async (cdr: CdrRecord, then?: HeldCdrCallbacks): Promise<'spooled' | 'held'> => {
    reached(cdr);
    await held;
    return record(cdr, then);
  };

  const r = await rig.post({ widget: 'demo-click-to-call', number: VISITOR });
  t.equal(r.status, 202);
  const id = String(r.body.id);
  const uuid = await callUuidOf(knex, id);
  const cdr = await spooling;
  t.equal(cdr.call_uuid, uuid, 'the call is over and its CDR is being spooled');
  const during: { status: string } | undefined = await knex('click_to_call_requests').where({ request_id: id }).first('status');
  t.not(during?.status, 'ended', 'the request is not ended while its CDR is not on disk');
  release();
  t.match(await rig.follow(id), { status: 'ended', outcome: 'answered' }, 'ended once spooled');
  t.match(await rig.d.cdr(uuid), { outcome: 'answered', answered_by: AGENT });
});
