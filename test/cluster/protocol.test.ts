// The cluster's IPC messages are checked as they arrive: a malformed one is ignored, never trusted
// (node:cluster sends internal messages of its own on the same channel).
import t from 'tap';
import { parseToPrimary, parseToWorker } from '../../src/cluster/protocol';

const HOLDER = 'hotline-1/worker-2/4242/0a1b2c3d';

t.test('start carries the slot and the warm-up folder\'s tag (8 hex digits: it goes into a path)', async (t) => {
  t.same(parseToWorker({ type: 'hotline:start', slot: 2, warmUpTag: '0a1b2c3d' }), { type: 'hotline:start', slot: 2, warmUpTag: '0a1b2c3d' });
  // An earlier primary sends none; anything else is no tag either: the worker still starts.
  for (const warmUpTag of [undefined, '', '0A1B2C3D', '0a1b2c3', '0a1b2c3d4', '../../etc', 'x/y-1234', 12345678]) {
    t.same(parseToWorker({ type: 'hotline:start', slot: 2, warmUpTag }), { type: 'hotline:start', slot: 2, warmUpTag: null }, `tag ${JSON.stringify(warmUpTag) ?? 'undefined'}`);
  }
  t.equal(parseToWorker({ type: 'hotline:start', slot: 0, warmUpTag: '0a1b2c3d' }), null, 'slots count from 1');
});

t.test('ready carries the worker\'s cron lease holder, or null with cron off', async (t) => {
  t.same(parseToPrimary({ type: 'hotline:ready', eslPort: 8084, cronHolder: HOLDER }), { type: 'hotline:ready', eslPort: 8084, cronHolder: HOLDER });
  t.same(parseToPrimary({ type: 'hotline:ready', eslPort: 8084, cronHolder: null }), { type: 'hotline:ready', eslPort: 8084, cronHolder: null });
  for (const cronHolder of [undefined, '', 42, 'x'.repeat(129), {}]) {
    t.equal(parseToPrimary({ type: 'hotline:ready', eslPort: 8084, cronHolder }), null, `holder ${JSON.stringify(cronHolder) ?? 'undefined'}`);
  }
  t.equal(parseToPrimary({ type: 'hotline:ready', eslPort: -1, cronHolder: null }), null, 'a port that is no port');
});

t.test('handing back a dead worker\'s leases: the request and its answer', async (t) => {
  t.same(parseToWorker({ type: 'hotline:release-leases', holders: [HOLDER] }), { type: 'hotline:release-leases', holders: [HOLDER] });
  for (const holders of [undefined, [], [''], [HOLDER, 7], HOLDER, ['y'.repeat(129)]]) {
    t.equal(parseToWorker({ type: 'hotline:release-leases', holders }), null, `holders ${JSON.stringify(holders) ?? 'undefined'}`);
  }
  t.same(parseToPrimary({ type: 'hotline:leases-released', holders: [HOLDER], released: 2 }), { type: 'hotline:leases-released', holders: [HOLDER], released: 2 });
  t.equal(parseToPrimary({ type: 'hotline:leases-released', holders: [HOLDER], released: -1 }), null);
  t.equal(parseToPrimary({ type: 'hotline:leases-released', holders: [HOLDER] }), null, 'no count');
  t.equal(parseToPrimary({ type: 'hotline:leases-released', holders: [], released: 0 }), null, 'no holder');
});

t.test('quit (the primary\'s second signal) names SIGTERM or SIGINT', async (t) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) t.same(parseToWorker({ type: 'hotline:quit', signal }), { type: 'hotline:quit', signal });
  for (const signal of [undefined, 'SIGKILL', 'sigterm', 15, '']) {
    t.equal(parseToWorker({ type: 'hotline:quit', signal }), null, `signal ${JSON.stringify(signal) ?? 'undefined'}`);
  }
});

t.test('a worker says it drains instead of quitting', async (t) => {
  t.same(parseToPrimary({ type: 'hotline:quit-ignored' }), { type: 'hotline:quit-ignored' });
  t.same(parseToPrimary({ type: 'hotline:quit-ignored', extra: 1 }), { type: 'hotline:quit-ignored' }, 'nothing else carried');
});

t.test('ping and pong: the primary\'s watch for hung workers', async (t) => {
  t.same(parseToWorker({ type: 'hotline:ping' }), { type: 'hotline:ping' });
  t.same(parseToWorker({ type: 'hotline:ping', id: 7 }), { type: 'hotline:ping' }, 'nothing else carried');
  t.same(parseToPrimary({ type: 'hotline:pong' }), { type: 'hotline:pong' });
  t.equal(parseToPrimary({ type: 'hotline:ping' }), null, 'a ping goes one way only');
  t.equal(parseToWorker({ type: 'hotline:pong' }), null, 'and a pong the other');
});

t.test('a parsed message is a copy: the sender\'s array is not kept', async (t) => {
  const holders = [HOLDER];
  const m = parseToWorker({ type: 'hotline:release-leases', holders });
  holders.push('changed-later');
  t.same(m, { type: 'hotline:release-leases', holders: [HOLDER] });
});

t.test('anything else is ignored', async (t) => {
  for (const m of [null, 'hotline:ready', [], { type: 'NODE_CLUSTER' }, { type: 'hotline:unknown' }]) {
    t.equal(parseToPrimary(m), null);
    t.equal(parseToWorker(m), null);
  }
});
