// The primary's decisions: restart backoff, leader choice, what a worker's exit means.
import t from 'tap';
import { isHung, nextFailuresInRow, pickLeader, pingIntervalMs, pingStep, restartDelayMs, roundWasLate, STABLE_AFTER_MS, verdictOnExit } from '../../src/cluster/policy';

t.test('restart backoff doubles from 250 ms up to 30 s, and starts again after a stable run', async (t) => {
  t.same([1, 2, 3, 4, 8, 50].map(restartDelayMs), [250, 500, 1000, 2000, 30_000, 30_000]);
  t.equal(restartDelayMs(0), 250, 'never less than the first wait');
  t.equal(nextFailuresInRow(0, 10), 1);
  t.equal(nextFailuresInRow(3, 1000), 4, 'died young again');
  t.equal(nextFailuresInRow(7, STABLE_AFTER_MS), 1, 'it had been up long enough: the count starts over');
});

t.test('the leader stays while it serves; otherwise the lowest serving slot', async (t) => {
  t.equal(pickLeader(null, []), null);
  t.equal(pickLeader(null, [3, 2]), 2);
  t.equal(pickLeader(3, [1, 2, 3]), 3, 'a worker coming back does not take the lead away');
  t.equal(pickLeader(1, [2, 3]), 2, 'the leader died: the next one takes over');
});

t.test('a worker\'s exit: codes 2 and 3 stop the daemon with that code; a failed start-up stops it with 1; a clean stop or a serving daemon\'s worker: restart', async (t) => {
  t.same(verdictOnExit(2, null, true), { action: 'stop', exitCode: 2, reason: 'invalid setting' });
  t.same(verdictOnExit(3, null, true), { action: 'stop', exitCode: 3, reason: 'CDR spool folder in use' });
  t.same(verdictOnExit(1, null, false), { action: 'stop', exitCode: 1, reason: 'start-up failed' });
  t.same(verdictOnExit(null, 'SIGKILL', false), { action: 'stop', exitCode: 1, reason: 'start-up failed' });
  t.same(verdictOnExit(null, 'SIGSEGV', false), { action: 'stop', exitCode: 1, reason: 'start-up failed' });
  t.same(verdictOnExit(null, 'SIGKILL', true), { action: 'restart' }, 'kill -9 of a serving daemon\'s worker');
  t.same(verdictOnExit(1, null, true), { action: 'restart' });
  t.same(verdictOnExit(0, null, true), { action: 'restart' }, 'even a clean exit nobody asked for');
  t.same(verdictOnExit(0, null, false), { action: 'restart' }, 'a worker signalled alone while the daemon starts stopped cleanly: no start-up failed');
  for (const signal of ['SIGTERM', 'SIGINT']) t.same(verdictOnExit(null, signal, false), { action: 'restart' }, `a worker signalled twice alone while it starts ended by ${signal}: replaced`);
  t.same(verdictOnExit(2, null, false), { action: 'stop', exitCode: 2, reason: 'invalid setting' });
});

t.test('hung workers: pinged every quarter of the bound (250 ms to 5 s), hung once a ping waited past it, never with 0', async (t) => {
  t.same([1000, 2000, 20_000, 60_000, 3_600_000].map(pingIntervalMs), [250, 500, 5000, 5000, 5000]);
  t.equal(pingIntervalMs(100), 250, 'not a busy loop for a tiny bound');
  t.equal(isHung(null, 1_000_000, 60_000), false, 'answering: no ping outstanding');
  t.equal(isHung(1000, 61_000, 60_000), false, 'exactly the bound: not yet');
  t.equal(isHung(1000, 61_001, 60_000), true, 'past it');
  t.equal(isHung(1000, 10_000_000, 0), false, '0: never');
  t.equal(roundWasLate(5000, 5000), false, 'on time');
  t.equal(roundWasLate(10_000, 5000), false, 'one round late: still counts');
  t.equal(roundWasLate(10_001, 5000), true, 'the primary itself was stalled: the silence says nothing');
  t.equal(roundWasLate(-1, 5000), true, 'a clock that went back: start again');
});

t.test('a ping round\'s step: a worker not serving (starting, or killed and its exit awaited) is left alone; a hung one killed unless the round is late', async (t) => {
  t.equal(pingStep(false, 0, 1_000_000, 2000, false), 'skip', 'not serving: neither pinged nor killed, however long silent');
  t.equal(pingStep(true, null, 1_000_000, 2000, false), 'ping');
  t.equal(pingStep(true, 10_000, 11_000, 2000, false), 'ping', 'silent, within the bound');
  t.equal(pingStep(true, 10_000, 12_001, 2000, false), 'kill');
  t.equal(pingStep(true, 10_000, 12_001, 2000, true), 'ping', 'a late round: pinged again, its clock restarted');
  t.equal(pingStep(true, 10_000, 1e12, 0, false), 'ping', 'bound 0: never killed');
});
