/**
 * The primary's second signal (ClusterPrimary.quitStarting) while a worker it killed as hung has
 * not exited yet: that worker is no longer serving, but it is no worker still starting either. It
 * is not told to quit, not counted among the starting ones, and the quit timer does not kill it
 * again; its end still makes the exit code 1 (it was killed as hung, which a quit would excuse).
 * A starting worker that answers the quit with nothing is killed by the quit timer as ever.
 * This test's process is the primary; its workers are stand-ins (fake-worker.ts): `hangs-once`
 * (serves, then blocks its event loop for good at its third ping) and `deaf` (starts for ever,
 * answers no quit).
 *
 * Assumed: a process can take long to end after SIGKILL (one in uninterruptible sleep, a hung NFS
 * read, ends only when the read returns). Stood in for by holding back the primary's kill of the
 * hung worker (its ChildProcess.kill replaced) until the test lets it through.
 */
import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { ClusterPrimary } from '../../src/cluster/primary';
import { processAlive, until } from '../helpers/wait';
import { startFakePrimary, workersTmpDir } from './fake-cluster';

const tmp = workersTmpDir(t, 'quit-hung');

const HUNG = 'worker hung: it answered no ping in time; killed (a replacement replays its CDR spool)';
const SECOND = 'second signal: workers still starting end at once; those serving go on draining';
const QUIT_KILL = 'worker told to quit did not end in time; killed';

/**
 * Holds back every signal the primary sends `worker`'s process (recorded), and records the
 * messages it sends it; `release()` sends the signals held back.
 */
function holdKills(t: Test, primary: ClusterPrimary, worker: Worker): { held: Array<NodeJS.Signals | number | undefined>; sent: string[]; release: () => void } {
  const proc = worker.process;
  const pid = proc.pid as number;
  const realKill = proc.kill.bind(proc);
  const held: Array<NodeJS.Signals | number | undefined> = [];
  const sent: string[] = [];
  proc.kill = (signal?: NodeJS.Signals | number): boolean => {
    held.push(signal);
    return true;
  };
  const realSend = worker.send.bind(worker) as (...args: unknown[]) => boolean;
  worker.send = (message: unknown, ...rest: unknown[]): boolean => {
    sent.push(String((message as { type?: unknown }).type));
    return realSend(message, ...rest);
  };
  // Whatever happened, no worker of this test is left behind. The primary is stopped first (the
  // test's own stop, or one now if the test failed before it): a stopping primary forks no
  // replacement for the workers killed here.
  t.teardown(async () => {
    void primary.stop();
    for (const w of [pid, ...Object.values(cluster.workers ?? {}).map((x) => x?.process.pid)]) if (w !== undefined && processAlive(w)) process.kill(w, 'SIGKILL');
    await until('every worker gone', () => Object.keys(cluster.workers ?? {}).length === 0, 30_000);
  });
  return { held, sent, release: () => void realKill('SIGKILL') };
}

/** The primary's `worker stopped` line for `slot` (logged for each worker that ends while the daemon stops). */
const stoppedLine = (lines: Array<Record<string, unknown>>, slot: number): Record<string, unknown> | undefined => lines.find((l) => l.msg === 'worker stopped' && l.worker === slot);

t.test('a hung worker awaiting its exit is left alone by the second signal; a deaf starting worker is killed by the quit timer; exit 1', async (t) => {
  const flag = path.join(tmp, 'hung-two');
  const { primary, lines, first } = await startFakePrimary(tmp, ['hangs-once', flag], { CLUSTER_WORKERS: '2', CLUSTER_WORKER_HANG_TIMEOUT_S: '2', DRAIN_TIMEOUT_S: '5' });
  // Worker 2 is forked when worker 1 is ready, a message not read before this turn of the event
  // loop ends: from here on the workers forked are `deaf`.
  cluster.setupPrimary({ args: ['deaf'] });
  const hungPid = first.process.pid as number;
  const h = holdKills(t, primary, first);

  await until('worker 1 killed as hung (its kill held back) and worker 2 starting', () => lines.some((l) => l.msg === HUNG) && lines.some((l) => l.msg === 'worker started' && l.worker === 2), 30_000);
  t.same(h.held, ['SIGKILL'], 'the primary killed worker 1 once');
  t.ok(processAlive(hungPid), 'its process is still there');
  const deafPid = Number(lines.find((l) => l.msg === 'worker started' && l.worker === 2)?.pid);
  t.ok(processAlive(deafPid), 'worker 2 starts');

  h.sent.length = 0;
  const stopped = primary.stop();
  const quitAt = Date.now();
  t.equal(primary.quitStarting('SIGTERM'), false, 'a worker had served: the primary does not end by the signal');
  t.same(lines.find((l) => l.msg === SECOND)?.workers, [2], 'only worker 2 counted as starting');

  await until('worker 2 ended', () => stoppedLine(lines, 2) !== undefined, 30_000);
  const deafEnd = stoppedLine(lines, 2)!;
  t.match(deafEnd, { code: null, signal: 'SIGKILL' }, 'worker 2 killed');
  t.ok(Number(deafEnd.time) - quitAt >= 1900, `by the quit timer (${Number(deafEnd.time) - quitAt} ms after the quit)`);
  // The quit timer has run (it killed worker 2): what it did to worker 1 is known now.
  t.same(lines.filter((l) => l.msg === QUIT_KILL).map((l) => l.worker), [2], 'the quit timer killed worker 2 alone');
  t.same(h.held, ['SIGKILL'], 'worker 1 not killed again');
  t.same(h.sent, ['hotline:drain'], 'worker 1 was told to drain (as every live worker), not to quit');
  t.ok(processAlive(hungPid), 'worker 1 still there');

  h.release();
  t.equal(await stopped, 1, 'exit 1');
  t.match(stoppedLine(lines, 1), { code: null, signal: 'SIGKILL' }, 'worker 1 ended by the kill');
});

t.test('a hung worker whose exit comes after the second signal still makes the exit code 1 (no quit excuses it)', async (t) => {
  const flag = path.join(tmp, 'hung-one');
  const { primary, lines, first } = await startFakePrimary(tmp, ['hangs-once', flag], { CLUSTER_WORKERS: '1', CLUSTER_WORKER_HANG_TIMEOUT_S: '2', DRAIN_TIMEOUT_S: '5' });
  const h = holdKills(t, primary, first);
  await until('worker 1 killed as hung (its kill held back)', () => lines.some((l) => l.msg === HUNG), 30_000);
  h.sent.length = 0;
  const stopped = primary.stop();
  t.equal(primary.quitStarting('SIGTERM'), false, 'it had served: the primary does not end by the signal');
  t.same(lines.find((l) => l.msg === SECOND)?.workers, [], 'no worker counted as starting');
  t.same(h.sent, ['hotline:drain'], 'not told to quit');
  // Its exit comes now, before the quit timer would have run.
  h.release();
  t.equal(await stopped, 1, 'exit 1: a worker killed as hung is a failure');
  t.match(stoppedLine(lines, 1), { code: null, signal: 'SIGKILL' });
  t.notOk(lines.some((l) => l.msg === QUIT_KILL), 'no quit kill');
});
