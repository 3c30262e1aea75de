// The primary's record of dead workers' cron lease holders (src/cluster/dead-leases.ts): when to
// ask, whom, how often, and when to give up. Pure: a clock in ms and the serving slots.
import t from 'tap';
import { DeadLeaseHolders, GIVE_UP_MS, GRACE_MS, RETRY_MS } from '../../src/cluster/dead-leases';

const A = 'hotline-1/worker-1/101/aaaa';
const B = 'hotline-1/worker-2/202/bbbb';

t.test('nothing dead: nothing to ask, no timer', async (t) => {
  const d = new DeadLeaseHolders();
  t.same(d.next(0, [1, 2]), { action: 'wait' });
  t.equal(d.wakeInMs(0), null);
});

t.test('not before the grace: a statement the dead worker sent may still be running', async (t) => {
  const d = new DeadLeaseHolders();
  d.add(A, 1000);
  t.same(d.next(1000, [2]), { action: 'wait' }, 'at once: not yet');
  t.equal(d.wakeInMs(1000), GRACE_MS, 'look again when the grace ends');
  t.same(d.next(1000 + GRACE_MS - 1, [2]), { action: 'wait' });
  t.same(d.next(1000 + GRACE_MS, [2]), { action: 'ask', slot: 2, holders: [A] }, 'then asked');
  t.equal(d.wakeInMs(1000 + GRACE_MS), RETRY_MS, 'and again after RETRY_MS unless answered');
});

t.test('each serving worker in turn: one that does not answer is not asked forever', async (t) => {
  const d = new DeadLeaseHolders();
  d.add(A, 0);
  const asked = [0, 1, 2, 3, 4].map((i) => d.next(GRACE_MS + i * RETRY_MS, [3, 1, 2]));
  t.same(asked.map((s) => (s.action === 'ask' ? s.slot : null)), [1, 2, 3, 1, 2]);
  t.same(d.next(GRACE_MS, [2]), { action: 'ask', slot: 2, holders: [A] }, 'the only one serving, whoever was asked before');
  t.same(d.next(GRACE_MS, []), { action: 'wait' }, 'nobody serving: wait for the next one to be ready');
});

t.test('only holders past their grace are asked for; an answer removes them', async (t) => {
  const d = new DeadLeaseHolders();
  d.add(A, 0);
  d.add(B, 5000);
  d.add(A, 9000);
  t.same(d.next(GRACE_MS, [1]), { action: 'ask', slot: 1, holders: [A] }, 'B is still in its grace (A keeps its first exit time)');
  t.equal(d.wakeInMs(GRACE_MS), 5000, 'B\'s grace ends first');
  t.same(d.next(GRACE_MS + 5000, [1]), { action: 'ask', slot: 1, holders: [A, B] });
  d.handedBack([A]);
  t.equal(d.size, 1);
  t.same(d.next(GRACE_MS + 5000, [1]), { action: 'ask', slot: 1, holders: [B] });
  d.handedBack([B, 'someone-else']);
  t.equal(d.size, 0);
  t.equal(d.wakeInMs(GRACE_MS + 5000), null, 'all handed back: no timer');
});

t.test('given up once every lease has expired by itself', async (t) => {
  const d = new DeadLeaseHolders();
  d.add(A, 0);
  d.add(B, 60_000);
  t.same(d.expire(GIVE_UP_MS - 1), [], 'not yet');
  t.same(d.expire(GIVE_UP_MS), [A], 'A is dropped and returned for the log');
  t.same(d.next(GIVE_UP_MS, [1]), { action: 'ask', slot: 1, holders: [B] });
  t.same(d.expire(GIVE_UP_MS + 60_000), [B]);
  t.equal(d.wakeInMs(GIVE_UP_MS + 60_000), null);
  t.ok(GIVE_UP_MS > 10 * 60_000, 'longer than the longest lease (reports and retention: 10 min)');
});
