/**
 * A click-to-call request whose `ended` write fails (the database went away as the call ended) is
 * written later, not forgotten: it stays "served here" meanwhile — so the sweeper never writes a
 * second, `failed` CDR for a call this daemon served — and leaves that set once written (before,
 * the request stayed in memory for the life of the process and in `connected` in the table).
 * Real SQLite; the table is renamed away to make the writes fail, as a DBA's mistake or an
 * outage would.
 */
import type { Knex } from 'knex';
import pino from 'pino';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { dbTargets } from '../helpers/db';
import { until } from '../helpers/wait';
import { ClickToCallCalls, type RequestProgress } from '../../src/clicktocall/session';
import { ClickToCallMetrics } from '../../src/clicktocall/metrics';
import { insertRequest, readRequest } from '../../src/clicktocall/requests';
import type { CdrRecord } from '../../src/cdr/record';

const log = pino({ level: 'silent' });

/** Real SQLite, and the call flow's click-to-call side retrying every 50 ms. */
async function setup(t: Test): Promise<{ knex: Knex; calls: ClickToCallCalls }> {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const calls = new ClickToCallCalls(db.knex, new ClickToCallMetrics(new Registry()), 2_000, () => new Date(), log, 50);
  t.teardown(() => calls.stop());
  return { knex: db.knex, calls };
}

/** A request whose visitor leg reached a call session here. */
async function served(knex: Knex, calls: ClickToCallCalls, requestId: string, channel: { onBridge(fn: () => void): void } = { onBridge: () => undefined }): Promise<RequestProgress> {
  await insertRequest(knex, {
    requestId, callUuid: `c2c-${requestId}`, widgetId: 1, tenantId: 1, accessNumber: '4001012345', visitorNumber: '13912345678',
    clientAddress: null, webOrigin: null, node: 'test', requestedAt: new Date(),
  });
  return calls.started(
    { requestId, widgetId: 1, accessNumber: '4001012345', visitor: '13912345678', clickedAt: new Date(), visitorAnsweredAt: new Date(), visitorRingS: 1 },
    channel,
    log,
  );
}

const ENDED = { outcome: 'answered', hangup_cause: 'NORMAL_CLEARING' } as CdrRecord;

t.test('an end that could not be written is retried until it is, and only then leaves "served here"', async (t) => {
  const { knex, calls } = await setup(t);
  const requestId = 'req-end-retry-1';
  let bridge: () => void = () => undefined;
  const progress = await served(knex, calls, requestId, { onBridge: (fn) => (bridge = fn) });
  bridge();
  await until('connected', async () => (await readRequest(knex, requestId))?.status === 'connected');

  await knex.schema.renameTable('click_to_call_requests', 'click_to_call_requests_away');
  await progress.finished(ENDED);
  t.equal(calls.isServing(requestId), true, 'still served here while the end is unwritten');
  t.equal(calls.unfinishedCount, 1, 'one end waiting');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(calls.isServing(requestId), true, 'failed retries keep it');

  await knex.schema.renameTable('click_to_call_requests_away', 'click_to_call_requests');
  await until('the retry wrote the end', () => !calls.isServing(requestId));
  const row = await readRequest(knex, requestId);
  t.match(row, { status: 'ended', outcome: 'answered', hangupCause: 'NORMAL_CLEARING' }, 'the row says how the call ended');
  t.equal(calls.unfinishedCount, 0, 'nothing left to retry');
});

t.test('a request whose row keeps refusing the update does not hold up the others', async (t) => {
  const { knex, calls } = await setup(t);
  const ids = ['req-stuck', 'req-free'];
  const progress = [];
  for (const requestId of ids) progress.push(await served(knex, calls, requestId));
  await knex.schema.renameTable('click_to_call_requests', 'click_to_call_requests_away');
  for (const p of progress) await p.finished(ENDED);
  t.equal(calls.unfinishedCount, 2);
  await knex.schema.renameTable('click_to_call_requests_away', 'click_to_call_requests');
  // The first request's row refuses every update (as a row another session keeps locked would).
  await knex.raw("CREATE TRIGGER refuse_stuck BEFORE UPDATE ON click_to_call_requests WHEN OLD.request_id = 'req-stuck' BEGIN SELECT RAISE(ABORT, 'row locked'); END");
  await until('the second request ended', () => !calls.isServing('req-free'));
  t.equal((await readRequest(knex, 'req-free'))?.status, 'ended', 'the request behind the stuck one is ended');
  t.equal(calls.isServing('req-stuck'), true, 'the stuck one is still retried');
  await knex.raw('DROP TRIGGER refuse_stuck');
  await until('the stuck request ended', () => !calls.isServing('req-stuck'));
  t.equal((await readRequest(knex, 'req-stuck'))?.status, 'ended');
});
