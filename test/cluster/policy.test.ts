// The primary's decisions: restart backoff, leader choice, what a worker's exit means.
import t from 'tap';
import { nextFailuresInRow, pickLeader, restartDelayMs, STABLE_AFTER_MS, verdictOnExit } from '../../src/cluster/policy';

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
