/**
 * bench:ab's arithmetic (bench/ab.ts): medians of the paired rounds, B against A, and the rounds
 * B won on CPU. The runs themselves are measurements, not tests.
 */
import t from 'tap';
import { formatSummary, median, summarize, type AbRound } from '../../bench/ab';

const round = (callsPerSecond: number, cpuMsPerCall: number, setupP50Ms = 50, failed = 0): AbRound => ({ callsPerSecond, cpuMsPerCall, setupP50Ms, failed });

t.test('median: odd and even counts, order of input does not matter, empty is NaN', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([5]), 5);
  t.ok(Number.isNaN(median([])));
});

t.test('summarize: medians, ratios of the medians, rounds won by B on CPU (ties count for neither)', async (t) => {
  const a = [round(1000, 0.7, 50), round(1100, 0.65, 48), round(900, 0.8, 60, 1), round(1000, 0.7, 52)];
  const b = [round(1100, 0.6, 45), round(1050, 0.7, 47), round(1000, 0.75, 55), round(1000, 0.7, 50, 2)];
  const s = summarize(a, b);
  t.same(s.a, { callsPerSecond: 1000, cpuMsPerCall: 0.7, setupP50Ms: 51 });
  t.same(s.b, { callsPerSecond: 1025, cpuMsPerCall: 0.7, setupP50Ms: 48.5 });
  t.equal(s.ratio.callsPerSecond, 1.025);
  t.equal(s.ratio.cpuMsPerCall, 1);
  t.equal(s.bLessCpu, 2, 'round 1 and round 3; round 2 lost, round 4 a tie');
  t.equal(s.rounds, 4);
  t.same(s.failed, { a: 1, b: 2 });
  t.match(formatSummary(s, { a: 'HEAD~1', b: '.' }), /\| B \/ A \| 1\.025× \| 1\.000× \| 0\.951× \|[\s\S]*in 2 of 4 rounds; calls failed: A 1, B 2/);
});

t.test('summarize refuses rounds that do not pair up', async (t) => {
  t.throws(() => summarize([round(1, 1)], []), /must pair up/);
});
