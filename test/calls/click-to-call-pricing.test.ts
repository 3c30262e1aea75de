/**
 * A click-to-call is priced for two legs wherever it is priced: its CDR (rateCdr plus the visitor
 * leg, src/clicktocall/cdr.ts), the session's spend guard, and the live-call jobs — the node-local
 * guard and the caps recount, through live_calls, on both databases (billedLegs, liveCost).
 */
import t from 'tap';
import { runCaps, publishedLiveCalls, cappedReasons } from '../../src/billing/caps';
import { liveCost, type LiveCall } from '../../src/billing/live-calls';
import { LiveCallGuard } from '../../src/billing/live-guard';
import { billedLegs, rateCdr } from '../../src/billing/rate-cdr';
import { addClickToCall } from '../../src/clicktocall/cdr';
import type { CdrRecord } from '../../src/cdr/record';
import { toDbTimestamp } from '../../src/db/connect';
import { loadGeoData } from '../../src/domain/geo';
import { parseMoney } from '../../src/domain/money';
import { createLogger } from '../../src/log';
import { buildSnapshot } from '../../src/snapshot/build';
import { callerGeo } from '../../src/calls/plan';
import { addTenant, eachDb } from '../billing/helpers';

const log = createLogger('silent');
const ANSWERED = new Date('2026-11-21T02:00:00.000Z');
const RATES = [
  { id: 1, tenant_id: null, call_type: 'mobile', per_minute: '0.1500', increment_s: 60, connect_fee: '0.0500' },
  { id: 2, tenant_id: 1, call_type: 'mobile', per_minute: '0.0700', increment_s: 6, connect_fee: '0' },
];

t.before(async () => {
  await loadGeoData();
});

function cdrCost(tenantId: number, billsec: number, clickToCall: boolean): string | null {
  const snapshot = buildSnapshot({
    tenants: [{ id: 1, name: 'T', status: 'active', timezone: 'Asia/Shanghai' }, { id: 2, name: 'U', status: 'active', timezone: 'Asia/Shanghai' }],
    access_numbers: [], destination_groups: [], destinations: [], routing_rules: [], prompts: [], rates: RATES,
  }, 1, new Date(0));
  const geo = callerGeo('13912345678');
  const cdr = {
    call_uuid: 'u', tenant_id: tenantId, access_number: '4001012345', caller: '13912345678', caller_region: null,
    started_at: toDbTimestamp(ANSWERED), answered_at: toDbTimestamp(ANSWERED), ended_at: toDbTimestamp(new Date(ANSWERED.getTime() + billsec * 1000)),
    duration_s: billsec, billsec, outcome: 'answered', hangup_cause: 'NORMAL_CLEARING', answered_by: '13800000001', group_id: null,
    ivr_path: null, cost: null, recording_path: null, node: 'n',
  } satisfies CdrRecord as CdrRecord;
  cdr.cost = rateCdr(snapshot, cdr, geo, null).cost;
  if (clickToCall) addClickToCall(cdr, { requestId: 'r', widgetId: 1, accessNumber: '4001012345', visitor: '13912345678', clickedAt: ANSWERED, visitorAnsweredAt: ANSWERED, visitorRingS: 3 }, snapshot, geo, null);
  return cdr.cost;
}

function rateOf(tenantId: number) {
  const row = RATES.find((r) => r.tenant_id === tenantId) ?? RATES[0];
  return { perMinute: parseMoney(row.per_minute), incrementS: row.increment_s, connectFee: parseMoney(row.connect_fee) };
}

t.test('the live cost at the end of the call is what the CDR charges, one leg or two', async (t) => {
  for (const tenantId of [1, 2]) {
    for (const billsec of [0, 1, 5, 6, 59, 60, 61, 125, 3599, 3600]) {
      for (const clickToCall of [false, true]) {
        const live = liveCost({ rate: rateOf(tenantId), answeredAt: ANSWERED, legs: billedLegs(clickToCall) }, new Date(ANSWERED.getTime() + billsec * 1000 + 400));
        t.equal(parseMoney(cdrCost(tenantId, billsec, clickToCall) ?? '0'), live, `tenant ${tenantId}, ${billsec} s, ${clickToCall ? 'click-to-call' : 'dialled'}`);
      }
    }
  }
});

const NOW = new Date('2026-11-21T02:10:00.000Z');
const call = (uuid: string, tenantId: number, legs: 1 | 2): LiveCall => ({
  uuid, tenantId, startedAt: new Date(NOW.getTime() - 125_000), answeredAt: new Date(NOW.getTime() - 120_000), callType: 'mobile', rate: rateOf(1), admitted: true, legs,
});

eachDb(t, 'published live calls keep their legs; the caps job prices a click-to-call for two', async (t, { knex }) => {
  // 0.07/min in 6 s steps, answered 120 s ago: one leg has cost 0.1400, two 0.2800.
  const oneLeg = await addTenant(knex, { balance: '0.2000' });
  const twoLegs = await addTenant(knex, { balance: '0.2000' });
  const live = [call('c2c-call', twoLegs, 2), call('dialled-call', oneLeg, 1)];
  const guard = new LiveCallGuard({ knex, node: 'node-a', source: { liveCalls: () => live }, connectInbound: null, warningFile: () => '/sounds/hotline/capped.wav', log, clock: () => NOW });
  t.teardown(() => guard.stop());
  await guard.check();
  const published = await publishedLiveCalls(knex, NOW);
  const byUuid = new Map(published.map((c) => [c.uuid, c]));
  t.equal(byUuid.get('c2c-call')?.legs, 2, 'a click-to-call is published with two legs');
  t.equal(byUuid.get('dialled-call')?.legs, 1);
  const c2c = byUuid.get('c2c-call');
  t.equal(c2c ? liveCost(c2c, NOW) : null, parseMoney('0.2800'), 'read back: priced for two legs');
  await runCaps(knex, NOW, log);
  t.same((await cappedReasons(knex, twoLegs)).map((r) => r.reason), ['balance'], 'two legs (0.28) ran through the balance (0.20)');
  t.same(await cappedReasons(knex, oneLeg), [], 'one leg (0.14) did not');
});
