/** Routing decisions without sockets: identification, rule choice, percentage split, hunt plan. */
import t from 'tap';
import { chooseRule, classifyLeg, drawByPercent, huntOutcome, huntPlan, identify } from '../../src/domain/routing';
import { buildSnapshot, type RawTables } from '../../src/snapshot/build';
import type { RoutingRule } from '../../src/snapshot/types';

function tables(extra: Partial<RawTables> = {}): RawTables {
  return {
    tenants: [
      { id: 1, name: 'A', status: 'active', timezone: 'Asia/Shanghai', ring_timeout_s: 15 },
      { id: 2, name: 'B', status: 'suspended', timezone: 'Asia/Shanghai' },
      { id: 3, name: 'C', status: 'closed', timezone: 'Asia/Shanghai' },
    ],
    access_numbers: [
      { id: 1, number: '4001000001', tenant_id: 1, kind: 'hotline', enabled: 1 },
      { id: 2, number: '4001000002', tenant_id: 2, kind: 'hotline', enabled: 1 },
      { id: 3, number: '4001000003', tenant_id: 3, kind: 'hotline', enabled: 1 },
      { id: 4, number: '4001000004', tenant_id: 1, kind: 'hotline', enabled: 0 },
      { id: 5, number: '02088880000', tenant_id: 1, kind: 'switchboard', enabled: 1 },
    ],
    destination_groups: [
      { id: 10, tenant_id: 1, name: 'g10', strategy: 'sequential', ring_timeout_s: 70 - 45, failover_group_id: 11 },
      { id: 11, tenant_id: 1, name: 'g11', strategy: 'sequential', ring_timeout_s: null, failover_group_id: 12 },
      { id: 12, tenant_id: 1, name: 'g12', strategy: 'sequential', ring_timeout_s: null, failover_group_id: 10 },
    ],
    destinations: [
      { id: 1, group_id: 10, number: '13800000002', position: 2 },
      { id: 2, group_id: 10, number: '13800000001', position: 1 },
      { id: 3, group_id: 11, number: '13800000003', position: 1 },
      { id: 4, group_id: 12, number: '13800000004', position: 1 },
    ],
    routing_rules: [],
    prompts: [],
    ...extra,
  };
}

const rule = (id: number, priority: number, percent = 100, accessNumberId: number | null = null): RoutingRule => ({
  id, tenantId: 1, accessNumberId, priority, regions: null, scheduleId: null, percent, action: 'group', targetId: 10,
});

t.test('identify: every kind of access number', async (t) => {
  const snap = buildSnapshot(tables(), 1, new Date(0));
  t.equal(identify(snap, '4001000001').kind, 'ok');
  t.equal(identify(snap, '+864001000001').kind, 'ok', '+86 prefix');
  t.equal(identify(snap, '00864001000001').kind, 'ok', '0086 prefix');
  t.equal(identify(snap, '864001000001').kind, 'ok', '86 prefix');
  t.equal(identify(snap, '4001000002').kind, 'tenant_suspended');
  t.equal(identify(snap, '4001000003').kind, 'tenant_closed');
  t.equal(identify(snap, '4001000004').kind, 'number_disabled');
  t.equal(identify(snap, '4009999999').kind, 'unknown_number');
  t.equal(identify(snap, '').kind, 'unknown_number');
  t.equal(identify(snap, '020-8888-0000').kind, 'ok', 'punctuation is not part of the number');
  // A switchboard number stored with its trunk 0, dialled in the spellings the dialplan's
  // switchboard regex accepts (freeswitch/vars_hotline.xml): all of them are the tenant's number.
  for (const n of ['+862088880000', '862088880000', '00862088880000', '2088880000', '+86 020 8888 0000']) {
    t.equal(identify(snap, n).kind, 'ok', `${n}: the switchboard number 02088880000`);
  }
});

t.test('chooseRule: first priority level with a match wins', async (t) => {
  const rules = [rule(1, 1, 100, 99), rule(2, 5), rule(3, 5), rule(4, 9)];
  const choice = chooseRule(rules, 1, () => true, () => 0)!;
  t.same(choice.candidates.map((r) => r.id), [2, 3], 'rule 1 is for another access number');
  t.equal(choice.rule.id, 2);
  t.equal(chooseRule(rules, 99, () => true, () => 0)!.rule.id, 1, 'number-specific rule');
  t.equal(chooseRule(rules, 1, (r) => r.id === 4, () => 0)!.rule.id, 4, 'falls through non-matching levels');
  t.equal(chooseRule(rules, 1, () => false, () => 0), null);
  t.equal(chooseRule([], 1, () => true, () => 0), null);
});

t.test('percentage split at 1 % granularity', async (t) => {
  const pair = [rule(1, 5, 30), rule(2, 5, 70)];
  // Every ticket 0..99 exactly once: 30 go to rule 1, 70 to rule 2.
  const counts = new Map<number, number>();
  for (let i = 0; i < 100; i++) {
    const r = drawByPercent(pair, () => i / 100);
    counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
  }
  t.same([counts.get(1), counts.get(2)], [30, 70]);
  // 10,000 pseudo-random calls land within ±2 % of 30/70.
  let seed = 42;
  const lcg = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let first = 0;
  for (let i = 0; i < 10_000; i++) if (drawByPercent(pair, lcg).id === 1) first++;
  t.ok(Math.abs(first / 10_000 - 0.3) < 0.02, `30 % rule got ${(first / 100).toFixed(1)} %`);
  t.equal(drawByPercent([rule(1, 5, 1), rule(2, 5, 99)], () => 0.0099).id, 1, '1 % is reachable');
  t.equal(drawByPercent([rule(1, 5, 1), rule(2, 5, 99)], () => 0.01).id, 2);
  t.equal(drawByPercent([rule(1, 5, 50), rule(2, 5, 20)], () => 0.99).id, 2, 'totals under 100 act as weights');
});

t.test('huntPlan: failover chain, loop cut, ring timeouts capped at 60', async (t) => {
  const snap = buildSnapshot(tables(), 1, new Date(0));
  const tenant = snap.tenants.get(1)!;
  const plan = huntPlan(snap, tenant, 10, 10);
  t.same(plan.map((s) => s.group.id), [10, 11, 12], 'loop 10→11→12→10 stops after 12');
  t.same(plan[0].destinations.map((d) => d.number), ['13800000001', '13800000002'], 'position order');
  t.same(plan.map((s) => s.ringTimeoutS), [25, 15, 15]);
  t.same(huntPlan(snap, tenant, 10, 2).map((s) => s.group.id), [10, 11], 'maxGroups bound');
  t.same(huntPlan(snap, tenant, 999, 10), [], 'missing group: nothing to hunt');
  t.same(huntPlan(snap, snap.tenants.get(2)!, 10, 10), [], 'another tenant\'s group is never hunted');
});

t.test('classifyLeg and huntOutcome from FreeSWITCH dispositions', async (t) => {
  t.equal(classifyLeg('SUCCESS', 'SUCCESS'), 'answered');
  t.equal(classifyLeg('BUSY', 'USER_BUSY'), 'busy');
  t.equal(classifyLeg('ALLOTTED_TIMEOUT', 'ALLOTTED_TIMEOUT'), 'no_answer');
  t.equal(classifyLeg('NOANSWER', 'NO_ANSWER'), 'no_answer');
  t.equal(classifyLeg('CANCEL', 'ORIGINATOR_CANCEL'), 'cancelled');
  t.equal(classifyLeg('CHANUNAVAIL', 'NETWORK_OUT_OF_ORDER'), 'failed');
  t.equal(classifyLeg('', ''), 'failed', 'missing variables are a failure, not an answer');
  t.equal(huntOutcome(['busy', 'busy']), 'busy');
  t.equal(huntOutcome(['busy', 'no_answer']), 'no_answer');
  t.equal(huntOutcome(['failed', 'answered']), 'answered');
  t.equal(huntOutcome([]), 'no_answer');
});

import { checkRule, dialBatches, inBusinessHours, MAX_BRIDGE_LEGS, orderDestinations } from '../../src/domain/routing';
import { geocode, loadGeoData } from '../../src/domain/geo';
import type { DestinationGroup } from '../../src/snapshot/types';

const group = (strategy: DestinationGroup['strategy'], weights = [1, 1, 1, 1]): DestinationGroup => ({
  id: 1, tenantId: 1, name: 'g', strategy, ringTimeoutS: null, maxQueue: 0, queueTimeoutS: 0, failoverGroupId: null,
  destinations: weights.map((weight, i) => ({ id: i + 1, groupId: 1, number: `1380000000${i}`, position: i + 1, weight, label: null })),
});
const numbers = (list: Array<{ number: string }>) => list.map((d) => d.number.slice(-1)).join('');

t.test('strategies', async (t) => {
  const r = () => 0.5;
  t.equal(numbers(orderDestinations(group('sequential'), { random: r })), '0123');
  t.equal(numbers(orderDestinations(group('simultaneous'), { random: r })), '0123', 'all ring at once, in position order');
  t.same([0, 1, 2, 3, 4, 5].map((rot) => numbers(orderDestinations(group('round_robin'), { random: r, rotation: rot }))), ['0123', '1230', '2301', '3012', '0123', '1230']);
  // random: every phone comes first about equally often
  let seed = 7;
  const lcg = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const firsts = new Map<string, number>();
  for (let i = 0; i < 4000; i++) {
    const f = numbers(orderDestinations(group('random'), { random: lcg })).slice(0, 1);
    firsts.set(f, (firsts.get(f) ?? 0) + 1);
  }
  t.ok([...firsts.values()].every((n) => n > 850 && n < 1150), `random firsts ${JSON.stringify([...firsts])}`);
  // weighted 1:3: phone 1 first about 3 times as often; weight 0 always last
  const wf = new Map<string, number>();
  for (let i = 0; i < 4000; i++) {
    const order = numbers(orderDestinations(group('weighted', [1, 3, 0]), { random: lcg }));
    t.equal(order.slice(-1), '2', 'weight 0 last', { diagnostic: false });
    wf.set(order[0], (wf.get(order[0]) ?? 0) + 1);
  }
  const ratio = (wf.get('1') ?? 0) / (wf.get('0') ?? 1);
  t.ok(ratio > 2.6 && ratio < 3.4, `weighted 1:3 gave ${ratio.toFixed(2)}`);
  t.equal(numbers(orderDestinations(group('round_robin'), { random: r, rotation: 2, preferred: '13800000000' })), '0231', 'caller memory first, then the normal order');
  t.equal(numbers(orderDestinations(group('sequential'), { random: r, preferred: '19999999999' })), '0123', 'a remembered phone no longer in the group is ignored');
});

t.test('simultaneous ring in chunks of at most 128 legs', async (t) => {
  const big = group('simultaneous', Array.from({ length: 150 }, () => 1));
  const batches = dialBatches({ group: big, destinations: big.destinations, ringTimeoutS: 15 });
  t.same(batches.map((b) => b.length), [MAX_BRIDGE_LEGS, 22]);
  const seq = group('sequential');
  t.same(dialBatches({ group: seq, destinations: seq.destinations, ringTimeoutS: 15 }).map((b) => b.length), [1, 1, 1, 1]);
});

t.test('rule conditions: region and schedule in the tenant time zone', async (t) => {
  await loadGeoData();
  const snap = buildSnapshot(tables({
    schedules: [{ id: 5, tenant_id: 1, name: 'office', exclude_holidays: 1 }],
    schedule_slots: [{ id: 1, schedule_id: 5, weekdays: '1-5', start_time: '09:00', end_time: '18:00' }],
    holidays: [{ id: 1, tenant_id: null, day: '2026-10-01', name: 'National Day' }],
  }), 1, new Date(0));
  t.same(snap.rejected, []);
  const tenant = snap.tenants.get(1)!;
  const r = { ...rule(1, 1), regions: ['北京', '020'], scheduleId: 5 };
  const fri10 = new Date('2026-11-20T02:00:00Z'); // Fri 10:00 in Shanghai
  const fri19 = new Date('2026-11-20T11:00:00Z'); // Fri 19:00
  t.equal(checkRule(snap, tenant, r, geocode('01012345678'), fri10).matches, true);
  t.equal(checkRule(snap, tenant, r, geocode('02012345678'), fri10).matches, true, 'area code token');
  t.equal(checkRule(snap, tenant, r, geocode('075512345678'), fri10).matches, false, 'Shenzhen not listed');
  t.equal(checkRule(snap, tenant, r, geocode('01012345678'), fri19).matches, false, 'after hours');
  t.equal(checkRule(snap, tenant, r, geocode('01012345678'), new Date('2026-10-01T02:00:00Z')).matches, false, 'holiday');
  t.match(checkRule(snap, tenant, r, geocode('01012345678'), fri19).reason, /outside schedule "office"/);
  const withHours = { ...tenant, businessHoursScheduleId: 5 };
  t.equal(inBusinessHours(snap, withHours, fri10).matches, true);
  t.equal(inBusinessHours(snap, withHours, fri19).matches, false);
  t.equal(inBusinessHours(snap, tenant, fri19).matches, true, 'no schedule: always in hours');
});
