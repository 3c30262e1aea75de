/**
 * The click-to-call sweeper (Dialer.sweep) against a real database, SQLite and MariaDB, with a fake
 * clock and stand-ins for FreeSWITCH and the CDR spool:
 *  - it ends only attempts nobody talks on: a session elsewhere that took the leg while the
 *    sweeper was judging it keeps the call (no `failed` CDR under its call UUID, which, CDRs being
 *    idempotent by call_uuid, would have been the only one kept and the call never charged);
 *  - the swept attempt's call type comes from the access number's home_area_code in the snapshot;
 *  - an ended attempt whose CDR was not spooled (the spool refused it, or the daemon died between
 *    the end and the spool) is rebuilt and written by the sweeper once the grace period is over,
 *    exactly once.
 */
import t from 'tap';
import type { Knex } from 'knex';
import pino from 'pino';
import { withDatabases } from '../helpers/db';
import { loadSettings } from '../../src/config';
import { seedDemoIfEmpty } from '../../src/db/demo-seed';
import { loadSnapshot } from '../../src/snapshot/store';
import { loadGeoData } from '../../src/domain/geo';
import { CDR_OWED_GRACE_MS, Dialer } from '../../src/clicktocall/dialer';
import { ClickToCallMetrics } from '../../src/clicktocall/metrics';
import { advanceRequest, endAttempt, insertRequest, readRequest } from '../../src/clicktocall/requests';
import type { CdrRecord } from '../../src/cdr/record';
import { Registry } from 'prom-client';

const ACCESS = '4001012345';
const LOCAL_VISITOR = '01062345678'; // Beijing landline; the access number's home area is 010
const T0 = new Date('2026-12-04T10:00:00.000Z');
const LATER = new Date(T0.getTime() + 3_600_000); // long past ringing and connecting

interface Rig {
  dialer: Dialer;
  recorded: CdrRecord[];
  /** The next record() calls fail (a full spool disk). */
  failRecords: { n: number };
  /** Runs when FreeSWITCH is asked about a leg; returns whether it exists. */
  onExists: { fn: () => Promise<boolean | null> };
}

async function rig(knex: Knex): Promise<Rig> {
  await seedDemoIfEmpty(knex);
  await knex('access_numbers').where({ number: ACCESS }).update({ home_area_code: '010' });
  await knex('click_to_call_widgets').insert({ tenant_id: 1, access_number_id: 1, public_key: 'k-sweeper', enabled: 1 });
  const snapshot = await loadSnapshot(knex, 1);
  const settings = loadSettings({ env: {}, overrides: { log: { level: 'silent' }, node: { name: 'sweeper-test' } } });
  const recorded: CdrRecord[] = [];
  const failRecords = { n: 0 };
  const onExists = { fn: async (): Promise<boolean | null> => false };
  const dialer = new Dialer({
    settings, knex, snapshot: () => snapshot, metrics: new ClickToCallMetrics(new Registry()), log: pino({ level: process.env.TEST_LOG ?? 'silent' }), clock: () => LATER,
    cdrs: {
      record: async (cdr: CdrRecord) => {
        if (failRecords.n > 0) {
          failRecords.n--;
          throw new Error('ENOSPC: no space left on device');
        }
        recorded.push(cdr);
        return 'spooled' as const;
      },
    },
    originator: { ready: true, bgapi: () => Promise.reject(new Error('not in this test')), channelExists: () => onExists.fn() },
    socketAddress: '127.0.0.1:1',
  });
  return { dialer, recorded, failRecords, onExists };
}

let seq = 0;
async function request(knex: Knex, visitor = LOCAL_VISITOR): Promise<{ requestId: string; callUuid: string }> {
  seq++;
  const hex = seq.toString(16).padStart(12, '0');
  const requestId = `00000000-0000-4000-8000-${hex}`;
  const callUuid = `11111111-0000-4000-8000-${hex}`;
  await insertRequest(knex, {
    requestId, callUuid, widgetId: 1, tenantId: 1, accessNumber: ACCESS, visitorNumber: visitor, clientAddress: '127.0.0.1', webOrigin: null, node: 'gone-daemon', requestedAt: T0,
  });
  return { requestId, callUuid };
}

t.before(() => loadGeoData());

withDatabases(t, async (t, knex) => {
  const r = await rig(knex);

  await t.test('a leg a session takes while the sweeper judges it is never ended', async (t) => {
    const { requestId } = await request(knex);
    await advanceRequest(knex, requestId, 'visitor_answered', { visitorResult: 'answered', visitorAnsweredAt: T0 });
    // The session on another daemon advances the request just as FreeSWITCH is asked (and the leg
    // is, by then, already bridged elsewhere: say "gone" to make the sweeper want to end it).
    r.onExists.fn = async () => {
      await advanceRequest(knex, requestId, 'connecting');
      return false;
    };
    t.equal(await r.dialer.sweep(LATER), 0, 'nothing ended');
    t.match(await readRequest(knex, requestId), { status: 'connecting', cdrPending: false }, 'the session keeps the call');
    t.same(r.recorded, [], 'no CDR under the call\'s UUID');
    t.notOk(await endAttempt(knex, requestId, { endedAt: LATER, visitorResult: 'answered', outcome: 'failed', hangupCause: null }), 'endAttempt refuses a served request');
    await advanceRequest(knex, requestId, 'connected', { connectedAt: LATER });
    t.notOk(await endAttempt(knex, requestId, { endedAt: LATER, visitorResult: 'answered', outcome: 'failed', hangupCause: null }), 'and a connected one');
    r.onExists.fn = async () => false;
  });

  await t.test('a daemon that cannot ask FreeSWITCH (no FS_ESL_PASSWORD) does not end a leg (another daemon may serve it) until no call could still last', async (t) => {
    t.equal(loadSettings({ env: {} }).freeswitch.inboundPassword, '', 'this rig has no inbound password');
    r.recorded.length = 0;
    const { requestId, callUuid } = await request(knex);
    await advanceRequest(knex, requestId, 'visitor_answered', { visitorResult: 'answered', visitorAnsweredAt: T0 });
    r.onExists.fn = async () => null;
    t.equal(await r.dialer.sweep(LATER), 0, 'an hour after the click: left alone');
    t.match(await readRequest(knex, requestId), { status: 'visitor_answered' });
    t.same(r.recorded, [], 'no CDR that would take the place of the call\'s own');
    const maxDurationS = loadSettings({ env: {} }).calls.maxDurationS;
    const long = new Date(T0.getTime() + (maxDurationS + 3600 + 60) * 1000);
    await r.dialer.sweep(long);
    t.match(await readRequest(knex, requestId), { status: 'ended', outcome: 'failed' }, 'past the longest call and an hour: ended');
    t.match(r.recorded.filter((c) => c.call_uuid === callUuid), [{ outcome: 'failed' }], 'with its CDR');
    r.onExists.fn = async () => false;
  });

  await t.test('the swept attempt is typed with the access number\'s area code from the snapshot', async (t) => {
    r.recorded.length = 0;
    const { requestId, callUuid } = await request(knex);
    t.equal(await r.dialer.sweep(LATER), 1);
    t.match(await readRequest(knex, requestId), { status: 'ended', outcome: 'failed', cdrPending: false });
    t.equal(r.recorded.length, 1);
    t.match(r.recorded[0], { call_uuid: callUuid, call_type: 'local', access_number: ACCESS, tenant_id: 1, widget_id: 1, outcome: 'failed', cost: '0.0000' });
  });

  await t.test('a CDR the spool refused is written by the sweeper after the grace period, once', async (t) => {
    r.recorded.length = 0;
    const { requestId, callUuid } = await request(knex);
    r.failRecords.n = 1;
    t.equal(await r.dialer.sweep(LATER), 1, 'the attempt is ended');
    t.match(await readRequest(knex, requestId), { status: 'ended', cdrPending: true }, 'its CDR is owed');
    t.same(r.recorded, [], 'not spooled');
    t.equal(await r.dialer.sweep(new Date(LATER.getTime() + CDR_OWED_GRACE_MS - 1000)), 0, 'not within the grace period');
    t.same(r.recorded, []);
    const after = new Date(LATER.getTime() + CDR_OWED_GRACE_MS + 1000);
    t.equal(await r.dialer.sweep(after), 1, 'written after it');
    t.equal(r.recorded.length, 1);
    t.match(r.recorded[0], { call_uuid: callUuid, outcome: 'failed', call_type: 'local', ended_at: /^2026-12-04 11:00:00/ }, 'rebuilt from the row: the end the request says');
    t.match(await readRequest(knex, requestId), { cdrPending: false });
    t.equal(await r.dialer.sweep(new Date(after.getTime() + 600_000)), 0, 'and only once');
    t.equal(r.recorded.length, 1);
  });

  await t.test('a daemon that died between ending the attempt and spooling: the sweeper writes it', async (t) => {
    r.recorded.length = 0;
    const { requestId, callUuid } = await request(knex);
    t.ok(await endAttempt(knex, requestId, { endedAt: LATER, visitorResult: 'busy', outcome: 'abandoned', hangupCause: 'USER_BUSY' }));
    t.equal(await r.dialer.sweep(new Date(LATER.getTime() + CDR_OWED_GRACE_MS + 1000)), 1);
    t.equal(r.recorded.length, 1);
    t.match(r.recorded[0], { call_uuid: callUuid, outcome: 'abandoned', hangup_cause: 'USER_BUSY', cost: '0.0000', call_type: 'local' });
    t.match(await readRequest(knex, requestId), { status: 'ended', cdrPending: false });
  });

  await t.test('an owed CDR already in cdrs is not written again', async (t) => {
    r.recorded.length = 0;
    const { requestId, callUuid } = await request(knex);
    t.ok(await endAttempt(knex, requestId, { endedAt: LATER, visitorResult: 'failed', outcome: 'failed', hangupCause: null }));
    await knex('cdrs').insert({
      call_uuid: callUuid, tenant_id: 1, access_number: ACCESS, caller: LOCAL_VISITOR, started_at: '2026-12-04 10:00:00.000', ended_at: '2026-12-04 11:00:00.000',
      duration_s: 3600, billsec: 0, outcome: 'failed', cost: '0.0000', node: 'gone-daemon',
    });
    t.equal(await r.dialer.sweep(new Date(LATER.getTime() + CDR_OWED_GRACE_MS + 1000)), 1, 'the debt is settled');
    t.same(r.recorded, [], 'without a second CDR');
    t.match(await readRequest(knex, requestId), { cdrPending: false });
  });
});
