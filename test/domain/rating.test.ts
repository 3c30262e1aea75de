// Rating to the 1/10000: increments rounded up, connect fees, sub-unit amounts rounded up,
// the rate chosen (tenant's, else default), what a balance pays for, and when to cut a call.
import t from 'tap';
import { callCutPlan, callPricing, rateCdr, runningCostExceedsBalance } from '../../src/billing/rate-cdr';
import { searchedCutAt, secondsUntilOverBudget, sharedCutAt, totalLiveCost, type SpendingCall } from '../../src/billing/live-calls';
import type { CallerGeo } from '../../src/domain/geo';
import { formatMoney, MAX_MONEY, money, parseMoney, type Money } from '../../src/domain/money';
import { affordableBillsec, billedSeconds, chooseRate, costSoFar, exactCallCost, rateCall, rateCallCapped, type RateTerms } from '../../src/domain/rating';
import type { Rate } from '../../src/snapshot/types';

const m = (s: string): Money => parseMoney(s);

/** mulberry32: the same whole numbers below n every run for one seed, evenly spread in every bit. */
function pseudoRandom(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return Math.floor((((x ^ (x >>> 14)) >>> 0) / 2 ** 32) * n);
  };
}
const terms = (perMinute: string, incrementS: number, connectFee = '0'): RateTerms => ({ perMinute: m(perMinute), incrementS, connectFee: m(connectFee) });

void t.test('rateCall: increments rounded up, connect fee, exact 1/10000', async (t) => {
  // [per_minute, increment_s, connect_fee, billsec, expected cost]
  const table: Array<[string, number, string, number, string]> = [
    ['0.15', 60, '0', 0, '0.0000'],
    ['0.15', 60, '0', 1, '0.1500'],
    ['0.15', 60, '0', 59, '0.1500'],
    ['0.15', 60, '0', 60, '0.1500'],
    ['0.15', 60, '0', 61, '0.3000'],
    ['0.15', 60, '0', 120, '0.3000'],
    ['0.15', 60, '0', 121, '0.4500'],
    ['0.15', 60, '0', 3600, '9.0000'],
    ['0.15', 6, '0', 1, '0.0150'],
    ['0.15', 6, '0', 6, '0.0150'],
    ['0.15', 6, '0', 7, '0.0300'],
    ['0.15', 6, '0', 60, '0.1500'],
    ['0.15', 6, '0', 61, '0.1650'],
    ['0.10', 6, '0.05', 7, '0.0700'],
    ['0.10', 60, '0.05', 60, '0.1500'],
    ['0.22', 60, '0', 185, '0.8800'],
    ['0.30', 6, '0', 185, '0.9300'], // 186 s = 31 increments of 0.03
    // Sub-1/10000 time charges are rounded up: 0.1234/min for 6 s = 0.01234 → 0.0124.
    ['0.1234', 6, '0', 1, '0.0124'],
    ['0.1234', 6, '0', 12, '0.0247'], // 0.02468
    ['0.1234', 6, '0', 60, '0.1234'], // a whole minute is exact
    ['0.1234', 60, '0', 1, '0.1234'],
    ['0.1', 1, '0', 7, '0.0117'], // 0.011666…
    ['0.0001', 6, '0', 6, '0.0001'], // 0.00001 → 0.0001
    ['0', 60, '0', 600, '0.0000'],
    ['0', 60, '0.20', 600, '0.2000'],
    ['99999.9999', 60, '0', 60, '99999.9999'],
  ];
  for (const [pm, inc, fee, billsec, expected] of table) {
    t.equal(formatMoney(rateCall(terms(pm, inc, fee), billsec)), expected, `${pm}/min per ${inc} s + ${fee}, ${billsec} s → ${expected}`);
  }
  t.equal(formatMoney(rateCall(terms('0.10', 6, '0.05'), 0, true)), '0.0500', 'answered, dropped in the first second: the connect fee only');
  t.equal(formatMoney(rateCall(terms('0.10', 6, '0.05'), 0)), '0.0000', 'not answered: nothing');
  t.equal(formatMoney(rateCall(terms('0.15', 60), 0.4, true)), '0.1500', 'a fraction of a second counts as a second');
  t.throws(() => rateCall(terms('0.15', 0), 10), RangeError, 'an increment of 0 is a bug, not free time');
  // A cost cdrs.cost cannot hold is capped to its maximum (9999999999.9999), never a throw: the CDR must be written.
  t.equal(formatMoney(rateCall({ perMinute: money(Number.MAX_SAFE_INTEGER), incrementS: 60, connectFee: money(0) }, 600)), '9999999999.9999');
  t.same(rateCallCapped(terms('0.15', 60), 61), { cost: money(3000), capped: false });
  t.same(rateCallCapped(terms('9999999999.9999', 60, '0.0001'), 60), { cost: MAX_MONEY, capped: true }, 'one minute plus a fee over the maximum');
  t.equal(formatMoney(rateCall(terms('0.15', 60), Number.POSITIVE_INFINITY)), '9999999999.9999', 'an absurd billsec: capped, not a RangeError');
  t.equal(formatMoney(rateCall(terms('0.15', 60), 1e25)), '9999999999.9999');
});

void t.test('billedSeconds', async (t) => {
  const table: Array<[number, number, number]> = [[0, 60, 0], [-5, 60, 0], [1, 60, 60], [60, 60, 60], [61, 60, 120], [1, 6, 6], [13, 6, 18], [30, 30, 30], [31, 30, 60], [7, 1, 7]];
  for (const [b, inc, want] of table) t.equal(billedSeconds(b, inc), want, `${b} s by ${inc} s → ${want}`);
});

const rate = (id: number, tenantId: number | null, callType: Rate['callType'], pm = '0.10'): Rate => ({ id, tenantId, callType, perMinute: m(pm), incrementS: 60, connectFee: money(0) });
const CALL_TYPES: ReadonlyArray<Rate['callType']> = ['local', 'long_distance', 'mobile', 'international'];

void t.test('chooseRate: the tenant\'s rate for the call type, else the default, else none', async (t) => {
  for (const frozen of [false, true]) {
    const list = (rates: Rate[]): readonly Rate[] => (frozen ? Object.freeze(rates) : rates);
    const rates = list([rate(1, null, 'local', '0.10'), rate(2, null, 'long_distance', '0.20'), rate(3, 7, 'local', '0.05'), rate(4, 8, 'mobile', '0.25')]);
    const how = frozen ? 'frozen list' : 'list';
    t.equal(chooseRate(rates, 7, 'local')?.id, 3, `${how}: own rate`);
    t.equal(chooseRate(rates, 7, 'long_distance')?.id, 2, `${how}: default for a type it has no rate for`);
    t.equal(chooseRate(rates, 9, 'local')?.id, 1, `${how}: tenant without rates: default`);
    t.equal(chooseRate(rates, 7, 'mobile'), null, `${how}: another tenant's rate is not a default`);
    t.equal(chooseRate(rates, 8, 'mobile')?.id, 4, how);
    t.equal(chooseRate(rates, null, 'local')?.id, 1, `${how}: unknown tenant: default`);
    t.equal(chooseRate(list([]), 7, 'international'), null, how);
    t.equal(chooseRate(list([rate(5, 7, 'local', '0.01'), rate(1, null, 'local', '0.10')]), 7, 'local')?.id, 5, `${how}: order does not matter`);
    t.equal(chooseRate(list([rate(1, null, 'local', '0.10'), rate(5, 7, 'local', '0.01')]), 7, 'local')?.id, 5, how);
    t.equal(chooseRate(list([rate(6, 7, 'local'), rate(5, 7, 'local'), rate(2, null, 'local'), rate(1, null, 'local')]), 7, 'local')?.id, 6, `${how}: of two own rates, the first`);
    t.equal(chooseRate(list([rate(6, 7, 'local'), rate(2, null, 'local'), rate(1, null, 'local')]), 8, 'local')?.id, 2, `${how}: of two defaults, the first`);
  }
});

void t.test('chooseRate answers as the rule reads, for any list, frozen or not', async (t) => {
  // The rule itself, one scan a question: the first own rate of the type, else the first default of it.
  const byTheRule = (rates: readonly Rate[], tenantId: number | null, callType: Rate['callType']): number | null =>
    (rates.find((r) => r.callType === callType && tenantId !== null && r.tenantId === tenantId) ?? rates.find((r) => r.callType === callType && r.tenantId === null))?.id ?? null;
  // mulberry32: the same lists on every run, and every pattern of tenants and types among them.
  let seed = 7;
  const next = (n: number): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
  let asked = 0;
  for (let list = 0; list < 300; list++) {
    const rates = Array.from({ length: next(12) }, (_, i) => rate(i + 1, next(4) === 0 ? null : 1 + next(3), CALL_TYPES[next(4)]));
    for (const frozen of [false, true]) {
      const given = frozen ? Object.freeze([...rates]) : rates;
      for (const tenantId of [null, 1, 2, 3, 4]) {
        for (const callType of CALL_TYPES) {
          const want = byTheRule(rates, tenantId, callType);
          if ((chooseRate(given, tenantId, callType)?.id ?? null) !== want) t.fail(`list ${JSON.stringify(rates.map((r) => [r.id, r.tenantId, r.callType]))}, tenant ${tenantId}, ${callType}: want rate ${want}`);
          asked++;
        }
      }
    }
  }
  t.pass(`${asked} questions over 300 lists answered as the rule reads`);
});

void t.test('chooseRate: a list that can still change is indexed anew on every question', async (t) => {
  const rates = [rate(1, null, 'local')];
  t.equal(chooseRate(rates, 7, 'local')?.id, 1, 'the default before');
  rates.push(rate(2, 7, 'local'));
  t.equal(chooseRate(rates, 7, 'local')?.id, 2, 'the own rate added since counts');
});

const mobile: CallerGeo = { e164: '+8613800138000', country: 'CN', province: '广东省', city: '广州市', areaCode: '20', isMobile: true, description: '广东省广州市' };
const beijingFixed: CallerGeo = { e164: '+861062345678', country: 'CN', province: '北京市', city: null, areaCode: '10', isMobile: false, description: '北京市' };
const usCaller: CallerGeo = { e164: '+12025550123', country: 'US', province: null, city: null, areaCode: null, isMobile: false, description: null };

void t.test('rateCdr: call type from the caller, billable outcomes only', async (t) => {
  const rates: Rate[] = [
    { id: 1, tenantId: null, callType: 'local', perMinute: m('0.10'), incrementS: 60, connectFee: money(0) },
    { id: 2, tenantId: null, callType: 'long_distance', perMinute: m('0.20'), incrementS: 6, connectFee: money(0) },
    { id: 3, tenantId: null, callType: 'mobile', perMinute: m('0.15'), incrementS: 60, connectFee: m('0.02') },
    { id: 4, tenantId: 1, callType: 'international', perMinute: m('1.00'), incrementS: 60, connectFee: money(0) },
  ];
  const snap = { rates };
  const cdr = (outcome: string, billsec: number, answered = true) => ({ tenant_id: 1, answered_at: answered ? '2026-11-20 10:00:05.000' : null, billsec, outcome: outcome as 'answered' });
  t.match(rateCdr(snap, cdr('answered', 61), beijingFixed, '10'), { callType: 'local', cost: '0.2000' });
  t.match(rateCdr(snap, cdr('answered', 61), beijingFixed, '020'), { callType: 'long_distance', cost: '0.2200' });
  t.match(rateCdr(snap, cdr('answered', 61), beijingFixed, null), { callType: 'long_distance' }, 'a 400 number has no home area');
  t.match(rateCdr(snap, cdr('answered', 30), mobile, '20'), { callType: 'mobile', cost: '0.1700' });
  t.match(rateCdr(snap, cdr('answered', 30), usCaller, '10'), { callType: 'international', cost: '1.0000' });
  t.match(rateCdr(snap, cdr('voicemail', 20), mobile, null), { cost: '0.1700' }, 'voicemail is billed');
  for (const outcome of ['busy', 'no_answer', 'blocked', 'capped', 'pin_failed', 'announced', 'abandoned', 'failed']) {
    t.equal(rateCdr(snap, cdr(outcome, 30), mobile, null).cost, '0.0000', `${outcome}: not billed`);
  }
  t.equal(rateCdr(snap, cdr('answered', 30, false), mobile, null).cost, '0.0000', 'no answer time: not billed');
  t.equal(rateCdr(snap, { ...cdr('answered', 30), tenant_id: null }, mobile, null).cost, '0.0000', 'no tenant: not billed');
  t.equal(rateCdr({ rates: [] }, cdr('answered', 30), mobile, null).cost, '0.0000', 'no rate: free');
  t.same(callPricing(snap, 1, usCaller, null), { callType: 'international', rate: rates[3] });
});

void t.test('affordableBillsec: the longest call a budget pays for', async (t) => {
  const table: Array<[RateTerms, string, number]> = [
    [terms('0.15', 60), '0.45', 180],
    [terms('0.15', 60), '0.4499', 120],
    [terms('0.15', 60), '0.15', 60],
    [terms('0.15', 60), '0.1499', 0],
    [terms('0.15', 60), '0', 0],
    [terms('0.15', 60, '0.05'), '0.04', -1],
    [terms('0.15', 60, '0.05'), '0.20', 60],
    [terms('0.1234', 6), '0.0124', 6],
    [terms('0.1234', 6), '0.0123', 0],
    [terms('0.1234', 6), '0.0247', 12],
    [terms('0', 60, '0.01'), '0.01', Infinity],
    [terms('0.15', 60), '-1', -1],
  ];
  for (const [rate, budget, want] of table) t.equal(affordableBillsec(rate, m(budget)), want, `${formatMoney(rate.perMinute)}/${rate.incrementS}s+${formatMoney(rate.connectFee)} with ${budget} → ${want} s`);
  // Property: cost(affordable) ≤ budget < cost(affordable + 1), for many rates and budgets.
  let checked = 0;
  for (const pm of [1, 7, 99, 1234, 1500, 2000, 9999, 123457]) {
    for (const inc of [1, 6, 10, 30, 60]) {
      for (const fee of [0, 1, 500]) {
        for (let budget = 0; budget < 60_000; budget += 977) {
          const r = { perMinute: money(pm), incrementS: inc, connectFee: money(fee) };
          const a = affordableBillsec(r, money(budget));
          if (a < 0) {
            if (fee <= budget) t.fail(`-1 although the fee is affordable: ${JSON.stringify(r)} ${budget}`);
            continue;
          }
          if (rateCall(r, a, true) > budget || rateCall(r, a + 1, true) <= budget) t.fail(`not the longest affordable call: ${JSON.stringify(r)} budget ${budget} → ${a}`);
          checked++;
        }
      }
    }
  }
  t.ok(checked > 5000, `${checked} rate/budget pairs hold the property`);
});

void t.test('cut plans and the running cost check (the session\'s mid-call cut)', async (t) => {
  const rate = terms('0.15', 60);
  t.same(callCutPlan(rate, m('0.45')), { warnAfterS: 148, cutAfterS: 178 }, '3 minutes paid: cut 2 s before, warn 30 s before that');
  t.same(callCutPlan(rate, m('0.10')), { warnAfterS: 0, cutAfterS: 0 }, 'not even a minute: at once');
  t.same(callCutPlan(rate, null), { warnAfterS: null, cutAfterS: null }, 'no limit');
  t.same(callCutPlan(null, m('0')), { warnAfterS: null, cutAfterS: null }, 'free call');
  t.same(callCutPlan(terms('0.15', 6), m('0.03'), { guardS: 1, warnBeforeS: 5 }), { warnAfterS: 6, cutAfterS: 11 });
  const answered = new Date('2026-11-20T02:00:00Z');
  const at = (s: number): Date => new Date(answered.getTime() + s * 1000);
  t.equal(runningCostExceedsBalance(rate, answered, at(177), m('0.45')), false);
  t.equal(runningCostExceedsBalance(rate, answered, at(178), m('0.45')), false, 'at the cut time, 2 s of margin left');
  t.equal(runningCostExceedsBalance(rate, answered, at(179), m('0.45')), true, 'one second later the next minute would be charged');
  t.equal(runningCostExceedsBalance(rate, null, at(1000), m('0')), false, 'not answered yet');
  t.equal(runningCostExceedsBalance(rate, answered, at(1000), null), false, 'postpaid, no caps');
  t.equal(formatMoney(costSoFar(rate, 60_999)), '0.1500');
  t.equal(formatMoney(costSoFar(rate, 61_000)), '0.3000');
});

void t.test('secondsUntilOverBudget: several calls of one tenant share its money', async (t) => {
  const now = new Date('2026-11-20T02:00:00Z');
  const rate = terms('0.15', 60);
  const two = [{ rate, answeredAt: now }, { rate, answeredAt: now }];
  t.equal(secondsUntilOverBudget(two, m('0.60'), now, 200, 2), 118, 'two minutes each: the 120th second is the last paid, cut 2 s before it ends (as callCutPlan)');
  t.equal(secondsUntilOverBudget(two, m('0.60'), now, 100, 2), null, 'beyond the horizon');
  t.equal(secondsUntilOverBudget(two, m('0.29'), now, 100, 2), 0, 'already over');
  const older = [{ rate, answeredAt: new Date(now.getTime() - 100_000) }, { rate, answeredAt: now }];
  // At t: first call 100+t+2 s, second t+2 s. 0.30 + 0.15 = 0.45 ≤ 0.45 until the first passes 120 s.
  t.equal(secondsUntilOverBudget(older, m('0.45'), now, 200, 2), 18);
  t.equal(formatMoney(totalLiveCost(older, now)), '0.3000', 'the new call has cost nothing yet (no connect fee)');
  t.equal(secondsUntilOverBudget([{ rate: null, answeredAt: now }], m('0'), now, 100, 2), null, 'free calls never run out');
  // Another daemon's clock 8 s ahead stamped its call's answer in our future: a cut already due stays due.
  const skewed = [{ rate, answeredAt: new Date(now.getTime() - 30_000) }, { rate, answeredAt: new Date(now.getTime() + 8_000) }];
  t.equal(secondsUntilOverBudget(skewed, m('0.10'), now, 100, 2), 0, 'already over: cut at once, not 8 s on');
});

// The calls' cost at an instant, and the cut by brute force: ms by ms until the cost exceeds the
// budget, then guardS + 1 s back (the last paid second ends guardS after the cut), never before
// the last answer. What sharedCutAt must agree with.
function bruteCutAt(calls: readonly SpendingCall[], budget: Money, guardS: number, limitMs: number): number | null {
  const from = Math.max(...calls.map((c) => c.answeredAtMs));
  for (let at = from; at <= from + limitMs; at++) {
    let cost = 0;
    for (const c of calls) if (c.rate) cost += costSoFar(c.rate, at - c.answeredAtMs) * (c.legs ?? 1);
    if (cost > budget) return Math.max(from, at - (guardS + 1) * 1000);
  }
  return null;
}

void t.test('sharedCutAt: one call alone is cut as callCutPlan plans it, by the closed form and by the search alike', async (t) => {
  let cases = 0;
  for (const [perMinute, incrementS, connectFee] of [['0.60', 6, '0'], ['0.15', 60, '0'], ['0.10', 1, '0.05'], ['1.00', 30, '0.30'], ['0', 60, '0.10']] as const) {
    for (const budget of ['0', '0.04', '0.05', '0.06', '0.07', '0.30', '0.45', '1.00', '2.0001']) {
      for (const legs of [1, 2] as const) {
        for (const answeredAtMs of [0, 1234]) {
          const rate = terms(perMinute, incrementS, connectFee);
          const plan = callCutPlan(rate, money(Math.floor(m(budget) / legs)));
          const expected = plan.cutAfterS === null ? null : answeredAtMs + plan.cutAfterS * 1000;
          const call = [{ rate, answeredAtMs, legs }];
          t.equal(sharedCutAt(call, m(budget)), expected, `${perMinute}/min per ${incrementS} s + ${connectFee}, ${budget}, ${legs} leg(s), closed form`);
          t.equal(searchedCutAt(call, m(budget), 2), expected, `the same by the search`);
          cases++;
        }
      }
    }
  }
  t.equal(cases, 180);
});

void t.test('sharedCutAt: calls answered at different times, at different rates, share one budget (brute force agrees)', async (t) => {
  const rate6 = terms('0.60', 6);
  const rate60 = terms('0.15', 60, '0.02');
  const groups: Array<{ name: string; calls: SpendingCall[] }> = [
    { name: 'two at one rate, 10 s apart', calls: [{ rate: rate6, answeredAtMs: 0 }, { rate: rate6, answeredAtMs: 10_000 }] },
    { name: 'answers off the second', calls: [{ rate: rate6, answeredAtMs: 250 }, { rate: rate6, answeredAtMs: 3_999 }, { rate: rate60, answeredAtMs: 1_001 }] },
    { name: 'a click-to-call (two legs) and a free call', calls: [{ rate: rate60, answeredAtMs: 0, legs: 2 }, { rate: null, answeredAtMs: 500 }, { rate: rate6, answeredAtMs: 7_000 }] },
  ];
  for (const { name, calls } of groups) {
    for (const budget of ['0', '0.06', '0.07', '0.30', '1.00']) {
      t.equal(sharedCutAt(calls, m(budget)), bruteCutAt(calls, m(budget), 2, 600_000), `${name}, ${budget}`);
    }
  }
  // The worked case of the spend guard's test: 1.0000, two calls 10 s apart at 0.60/min in 6 s
  // increments. Alone the first is cut at 94 s; together they pay 16 increments between them
  // (9 + 7 at 50 s), and a 17th would start when the second reaches 43 s: cut at 50 s.
  t.equal(sharedCutAt(groups[0].calls, m('1.00')), 50_000);
  t.equal(sharedCutAt([{ rate: null, answeredAtMs: 0 }, { rate: terms('0', 60), answeredAtMs: 0 }], m('1.00')), null, 'free calls never run out');
  const twoCheap = [{ rate: terms('0.10', 60), answeredAtMs: 0 }, { rate: terms('0.10', 60), answeredAtMs: 0 }];
  t.equal(sharedCutAt(twoCheap, m('99999999')), (499_999_995 * 60 - 2) * 1000, '950 years of two calls: found all the same');
  const twoCheapest = [{ rate: terms('0.0001', 60), answeredAtMs: 0 }, { rate: terms('0.0001', 60), answeredAtMs: 0 }];
  t.equal(sharedCutAt(twoCheapest, MAX_MONEY), null, 'the most money at the least rate, 95 million years: taken never to run out');
});

void t.test('rateCall in plain numbers agrees with the exact BigInt sum, up to where it hands over', async (t) => {
  // A fixed pseudo-random walk (no Math.random: the same cases every run) over rates and billsecs,
  // from everyday figures to the largest the fast path takes (per_minute × seconds near 2^46).
  const next = pseudoRandom(12345);
  let mismatches = 0;
  for (let i = 0; i < 20_000; i++) {
    const rate = { perMinute: money(next(4) === 0 ? next(2 ** 30) : next(100_000)), incrementS: [1, 6, 30, 60, 7][next(5)], connectFee: money(next(3) === 0 ? next(10_000) : 0) };
    const billsec = next(3) === 0 ? next(2 ** 31) : next(7_200);
    const exact = exactCallCost(rate, billsec, true);
    const capped = exact > BigInt(MAX_MONEY);
    if (rateCall(rate, billsec, true) !== (capped ? MAX_MONEY : Number(exact))) mismatches++;
  }
  t.equal(mismatches, 0, '20,000 cases, the same to the 1/10000');
  const edge = { perMinute: money(2 ** 23 - 1), incrementS: 1, connectFee: money(0) };
  for (const billsec of [2 ** 23 - 1, 2 ** 23, 2 ** 23 + 1, 2 ** 24]) {
    t.equal(rateCall(edge, billsec, true), Number(exactCallCost(edge, billsec, true)), `at the hand-over, ${billsec} s`);
  }
});

void t.test('sharedCutAt agrees with the brute force on 120 groups of random calls', async (t) => {
  // A fixed pseudo-random walk (the same cases every run): 2-5 calls, rates of 0.60-3.00 a minute
  // in 1-60 s increments, connect fees, click-to-calls, answers up to 20 s apart off the second,
  // budgets that run out within two minutes.
  const next = pseudoRandom(424242);
  let disagreements = 0;
  let compared = 0;
  for (let i = 0; i < 120; i++) {
    const calls: SpendingCall[] = [];
    const n = 2 + next(4);
    for (let j = 0; j < n; j++) {
      const answeredAtMs = next(20_000);
      const rate = { perMinute: money(6_000 + next(24_000)), incrementS: [1, 6, 30, 60][next(4)], connectFee: money(next(3) === 0 ? next(1_000) : 0) };
      calls.push({ rate, answeredAtMs, legs: next(5) === 0 ? 2 : 1 });
    }
    const budget = money(next(30_000));
    const want = bruteCutAt(calls, budget, 2, 150_000);
    const got = sharedCutAt(calls, budget);
    if (want !== null) compared++;
    if (want !== null && got !== want) {
      disagreements++;
      t.fail(`group ${i}: ${JSON.stringify(calls)} on ${budget}: ${String(got)}, the brute force ${String(want)}`);
    }
  }
  t.ok(compared >= 100, `${compared} of 120 run out within the brute force's two and a half minutes`);
  t.equal(disagreements, 0, 'the same instant to the ms');
});
