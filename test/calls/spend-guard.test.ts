/**
 * The spend guard's timers count from the answer, not from when its database query returned; a
 * call that ends first is left alone. A fake clock (injected timers) makes it exact.
 */
import t from 'tap';
import { SpendGroups, SpendGuard, type SpendPeers } from '../../src/calls/spend-guard';
import { FakeTimers, settle } from '../helpers/fake-timers';
import { createLogger } from '../../src/log';
import { money, parseMoney, type Money } from '../../src/domain/money';
import { MAX_TIMER_MS } from '../../src/timer-limit';


// The capture's tenant: 0.0700 left, 0.60/min in 6 s increments → 6 s affordable, cut 2 s early.
const RATE = { perMinute: parseMoney('0.6000'), incrementS: 6, connectFee: money(0) };

t.test('a 3 s headroom query does not move the cut: warn at answer, cut 4 s after answer', async (t) => {
  const timers = new FakeTimers();
  const events: string[] = [];
  let release!: (m: number) => void;
  let reads = 0;
  const guard = new SpendGuard({
    rate: RATE,
    // The first read takes 3 s; the re-read before the cut answers at once, the same money.
    readHeadroom: () => (reads++ === 0 ? new Promise((r) => (release = (m) => r(money(m)))) : Promise.resolve(parseMoney('0.0700'))),
    warn: async () => void events.push(`warn@${timers.t}`),
    cut: async () => void events.push(`cut@${timers.t}`),
    log: createLogger('silent'),
    timers,
  });
  const armed = guard.answered();
  timers.advance(3000); // the database takes 3 s
  release(parseMoney('0.0700'));
  const plan = await armed;
  t.same(plan, { warnAfterS: 0, cutAfterS: 4 });
  timers.advance(0);
  t.same(events, ['warn@3000'], 'the warning due at answer is played as soon as the plan is known');
  timers.advance(999);
  t.same(events, ['warn@3000'], 'not cut yet at 3.999 s');
  timers.advance(1);
  await settle();
  t.same(events, ['warn@3000', 'cut@4000'], 'cut 4 s after the ANSWER, not 4 s after the query');
});

t.test('timers that fire early (a busy turn of the event loop) never cut early', async (t) => {
  const timers = new FakeTimers();
  timers.early = 60;
  const events: string[] = [];
  const guard = new SpendGuard({
    rate: RATE,
    readHeadroom: async () => parseMoney('1.0000'), // cut at 94 s, warn at 64 s
    warn: async () => void events.push(`warn@${timers.t}`),
    cut: async () => void events.push(`cut@${timers.t}`),
    log: createLogger('silent'),
    timers,
  });
  t.same(await guard.answered(), { warnAfterS: 64, cutAfterS: 94 });
  timers.advance(93_999);
  t.same(events, ['warn@64000'], 'the timers fired 60 ms early and waited out the rest');
  timers.advance(1);
  await settle();
  t.same(events, ['warn@64000', 'cut@94000'], 'cut on the dot');
});

t.test('headroom enough for a minute: warned 30 s before the cut; a call that ends first is not touched', async (t) => {
  const timers = new FakeTimers();
  const events: string[] = [];
  const guard = new SpendGuard({
    rate: RATE,
    readHeadroom: async () => parseMoney('1.0000'), // 16 increments (96 s) affordable → cut at 94 s, warn at 64 s
    warn: async () => void events.push(`warn@${timers.t}`),
    cut: async () => void events.push(`cut@${timers.t}`),
    log: createLogger('silent'),
    timers,
  });
  t.same(await guard.answered(), { warnAfterS: 64, cutAfterS: 94 });
  timers.advance(70_000);
  t.same(events, ['warn@64000']);
  guard.stop();
  timers.advance(60_000);
  t.same(events, ['warn@64000'], 'stopped: no cut');
});

t.test('no headroom read (database down): not guarded, nothing scheduled', async (t) => {
  const timers = new FakeTimers();
  const guard = new SpendGuard({
    rate: RATE,
    readHeadroom: () => Promise.reject(new Error('timeout')),
    warn: async () => t.fail('no warning'),
    cut: async () => t.fail('no cut'),
    log: createLogger('silent'),
    timers,
  });
  t.same(await guard.answered(), { warnAfterS: null, cutAfterS: null });
  timers.advance(3_600_000);
});

t.test('a click-to-call pays two legs: half the headroom lasts; its leg was answered before it reached us', async (t) => {
  const timers = new FakeTimers();
  timers.t = 10_000;
  const events: string[] = [];
  const guard = new SpendGuard({
    rate: RATE,
    legs: 2,
    readHeadroom: async () => parseMoney('2.0000'), // 1.0000 a leg: 16 increments (96 s) → cut at 94 s, warn at 64 s
    warn: async () => void events.push(`warn@${timers.t}`),
    cut: async () => void events.push(`cut@${timers.t}`),
    log: createLogger('silent'),
    timers,
  });
  // FreeSWITCH answered the visitor 1.5 s before the session armed the guard (no CHANNEL_ANSWER comes).
  t.same(await guard.answered(1500), { warnAfterS: 64, cutAfterS: 94 });
  timers.advance(62_499);
  t.same(events, [], 'nothing before 64 s after the visitor answered');
  timers.advance(1);
  t.same(events, ['warn@72500'], 'warned 64 s after the answer, counted from FreeSWITCH\'s answer time');
  timers.advance(30_000);
  await settle();
  t.same(events, ['warn@72500', 'cut@102500'], 'cut 94 s after the answer: both legs together stay within the 2.0000');
});

// A month cap of 5,000.00 at 0.10 a minute pays for 50,000 minutes (34.7 days): more than the
// 24.8 days one setTimeout can wait. Node.js would fire such a timer after 1 ms.
const CHEAP = { perMinute: parseMoney('0.1000'), incrementS: 60, connectFee: money(0) };

t.test('headroom for more than 24.8 days of talk: waited out in steps, not warned and cut at once', async (t) => {
  const timers = new FakeTimers();
  const events: string[] = [];
  const guard = new SpendGuard({
    rate: CHEAP,
    readHeadroom: async () => parseMoney('5000.0000'),
    warn: async () => void events.push(`warn@${timers.t}`),
    cut: async () => void events.push(`cut@${timers.t}`),
    log: createLogger('silent'),
    timers,
  });
  const plan = await guard.answered();
  t.equal(plan?.cutAfterS, 50_000 * 60 - 2, 'the plan: 50,000 minutes less the guard');
  timers.advance(60_000);
  t.same(events, [], 'nothing in the first minute');
  t.ok(timers.longest <= MAX_TIMER_MS, `no timer longer than setTimeout takes (longest ${timers.longest} ms)`);
  timers.advance(plan!.cutAfterS! * 1000 - 60_000);
  await settle();
  t.same(events, [`warn@${plan!.warnAfterS! * 1000}`, `cut@${plan!.cutAfterS! * 1000}`], 'warned and cut when the money runs out, to the millisecond');
  guard.stop();
});

t.test('the same on the real clock: a large headroom does not cut the call', async (t) => {
  const events: string[] = [];
  const guard = new SpendGuard({
    rate: CHEAP,
    readHeadroom: async () => parseMoney('99999999.0000'),
    warn: async () => void events.push('warn'),
    cut: async () => void events.push('cut'),
    log: createLogger('silent'),
  });
  t.teardown(() => guard.stop());
  await guard.answered();
  await new Promise((r) => setTimeout(r, 100));
  t.same(events, [], 'neither warned nor cut 100 ms after the answer');
});

// The tenant's calls here spend one headroom. Planned one by one, each took all of it: five calls
// answered together on a balance of 0.07 ended it at -0.23 (a review). 1.0000 pays 16 increments
// of 6 s at 0.60/min: one call alone is cut at 94 s; two calls 10 s apart pay 9 + 7 increments at
// 50 s, and the second's 8th would start at 53 s (its 43rd second): both are cut at 50 s.
function groupGuard(name: string, peers: SpendPeers, timers: FakeTimers, events: string[], headroom: () => Money): SpendGuard {
  return new SpendGuard({
    rate: RATE,
    peers,
    readHeadroom: async () => headroom(),
    warn: async () => void events.push(`${name} warn@${timers.t}`),
    cut: async () => void events.push(`${name} cut@${timers.t}`),
    log: createLogger('silent'),
    timers,
  });
}

t.test('two calls of one tenant share its money: the second\'s answer plans both again, to be cut together', async (t) => {
  const timers = new FakeTimers();
  const groups = new SpendGroups();
  const events: string[] = [];
  const money100 = (): Money => parseMoney('1.0000'); // nothing committed while both talk
  const a = groupGuard('A', groups.of('7/2026-12-07'), timers, events, money100);
  const b = groupGuard('B', groups.of('7/2026-12-07'), timers, events, money100);
  t.same(await a.answered(), { warnAfterS: 64, cutAfterS: 94 }, 'alone: the whole 1.0000');
  timers.advance(10_000);
  t.same(await b.answered(), { warnAfterS: 10, cutAfterS: 40 }, 'B: cut 40 s after its answer, at 50 s');
  timers.advance(39_999);
  t.same(events, ['A warn@20000', 'B warn@20000'], 'A planned again: warned at 20 s, not 64 s');
  timers.advance(1);
  await settle();
  t.same(events, ['A warn@20000', 'B warn@20000', 'A cut@50000', 'B cut@50000'], 'both cut at 50 s: 9 + 7 increments, 0.96 of the 1.0000');
  a.stop();
  b.stop();
  t.equal(groups.size, 0, 'the group is gone with its calls');
});

t.test('a call that ends gives back what it did not spend: its peer is planned again at its cut', async (t) => {
  const timers = new FakeTimers();
  const groups = new SpendGroups();
  const events: string[] = [];
  let headroom = parseMoney('1.0000');
  const a = groupGuard('A', groups.of('7/2026-12-07'), timers, events, () => headroom);
  const b = groupGuard('B', groups.of('7/2026-12-07'), timers, events, () => headroom);
  await a.answered();
  timers.advance(10_000);
  await b.answered();
  timers.advance(20_000);
  // B hangs up at 30 s, 20 s talked: 4 increments (0.24) charged by its CDR.
  b.stop();
  headroom = parseMoney('0.7600');
  await timers.advanceSettling(20_000);
  t.same(events, ['A warn@20000', 'B warn@20000'], 'not cut at 50 s: the money read again pays A alone for 12 increments');
  // 0.76 pays 12 increments (72 s) of A alone: cut at 70 s, not warned again.
  await timers.advanceSettling(19_999);
  t.same(events, ['A warn@20000', 'B warn@20000']);
  await timers.advanceSettling(1);
  t.same(events, ['A warn@20000', 'B warn@20000', 'A cut@70000'], 'A cut at 70 s: 12 + 4 increments, 0.96 of the 1.0000');
  a.stop();
  t.equal(groups.size, 0);
});

t.test('calls charged to another day, or of another tenant, are not planned together', async (t) => {
  const timers = new FakeTimers();
  const groups = new SpendGroups();
  const events: string[] = [];
  const money100 = (): Money => parseMoney('1.0000');
  const a = groupGuard('A', groups.of('7/2026-12-07'), timers, events, money100);
  const b = groupGuard('B', groups.of('7/2026-12-08'), timers, events, money100);
  const c = groupGuard('C', groups.of('8/2026-12-07'), timers, events, money100);
  await a.answered();
  timers.advance(10_000);
  t.same(await b.answered(), { warnAfterS: 64, cutAfterS: 94 });
  t.same(await c.answered(), { warnAfterS: 64, cutAfterS: 94 });
  timers.advance(54_000);
  t.same(events, ['A warn@64000'], 'A keeps its own plan');
  for (const g of [a, b, c]) g.stop();
  t.equal(groups.size, 0);
});

t.test('a call whose money could not be read is still counted by its peers, and armed by them', async (t) => {
  const timers = new FakeTimers();
  const groups = new SpendGroups();
  const events: string[] = [];
  let failing = true;
  const a = new SpendGuard({
    rate: RATE,
    peers: groups.of('7/2026-12-07'),
    readHeadroom: () => (failing ? Promise.reject(new Error('timeout')) : Promise.resolve(parseMoney('1.0000'))),
    warn: async () => void events.push(`A warn@${timers.t}`),
    cut: async () => void events.push(`A cut@${timers.t}`),
    log: createLogger('silent'),
    timers,
  });
  t.same(await a.answered(), { warnAfterS: null, cutAfterS: null }, 'unguarded alone');
  failing = false;
  timers.advance(10_000);
  const b = groupGuard('B', groups.of('7/2026-12-07'), timers, events, () => parseMoney('1.0000'));
  t.same(await b.answered(), { warnAfterS: 10, cutAfterS: 40 }, 'B counts A\'s talk');
  await timers.advanceSettling(40_000);
  t.same(events, ['A warn@20000', 'B warn@20000', 'A cut@50000', 'B cut@50000'], 'A is warned and cut with B');
  a.stop();
  b.stop();
});
