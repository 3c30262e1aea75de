/**
 * A serving worker whose event loop blocks for good (test/cluster/fake-worker.ts `hangs-once`:
 * a synchronous loop at its third ping) is killed by the primary once it has answered no ping for
 * CLUSTER_WORKER_HANG_TIMEOUT_S, replaced in its slot, and counted; the replacement serves and
 * the daemon still stops cleanly. This test's process is the primary. And real workers (a real
 * daemon with two) answer the pings: left alone, with nothing else asked of them, none is killed.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { until } from '../helpers/wait';
import { startCluster } from './cluster-process';
import { startFakePrimary, workersTmpDir } from './fake-cluster';

const tmp = workersTmpDir(t, 'hung-worker');

t.test('a serving worker that stops answering pings is killed after the bound, replaced, and counted', async (t) => {
  const flag = path.join(tmp, 'hung');
  const { primary, lines, first, firstEnded: ended } = await startFakePrimary(tmp, ['hangs-once', flag], { CLUSTER_WORKERS: '1', CLUSTER_WORKER_HANG_TIMEOUT_S: '2' });
  const firstPid = first.process.pid;

  await until('the worker blocked its event loop', () => fs.existsSync(flag) && fs.readFileSync(flag, 'utf8') === String(firstPid), 30_000);
  const hungAt = Date.now();
  // Meanwhile the wall clock runs backwards (steps back, again and again: NTP, an operator).
  // Silence is measured on the monotonic clock, so the kill comes all the same; timed on the wall
  // clock, every round would look late and restart the count.
  const realNow = Date.now;
  const t0 = realNow();
  Date.now = () => t0 - (realNow() - t0);
  let end: { code: number | null; signal: string | null; at: number } | null;
  let bound: NodeJS.Timeout | undefined;
  try {
    // Bounded: a primary that never kills would leave the spinning worker behind.
    end = await Promise.race([ended, new Promise<null>((resolve) => (bound = setTimeout(() => resolve(null), 60_000)))]);
  } finally {
    Date.now = realNow;
    clearTimeout(bound);
  }
  if (end === null) {
    first.process.kill('SIGKILL');
    t.fail('the hung worker was not killed within 60 s');
    await primary.stop();
    return;
  }
  end.at = t0 + (t0 - end.at);
  t.equal(end.signal, 'SIGKILL', 'killed');
  const afterMs = end.at - hungAt;
  // Unanswered from the ping it blocked on; killed at the first round past 2 s (rounds every 500 ms).
  // The bound is what matters; the upper limit only says it came (late rounds on a loaded machine restart the clock).
  t.ok(afterMs >= 1500 && afterMs < 60_000, `once 2 s had passed without an answer (${afterMs} ms after it blocked)`);
  const hung = lines.filter((l) => l.msg === 'worker hung: it answered no ping in time; killed (a replacement replays its CDR spool)');
  t.equal(hung.length, 1, 'said once');
  t.match(hung[0], { worker: 1, pid: firstPid });

  await until('a replacement serves', () => lines.filter((l) => l.msg === 'worker serving calls').length === 2, 30_000);
  const replacement = lines.filter((l) => l.msg === 'worker serving calls')[1];
  t.not(replacement.pid, firstPid, 'a new process in slot 1');
  t.same(fs.readdirSync(tmp).filter((n) => n.startsWith(`hotline-warm-up-${firstPid}-`)), [], 'the killed worker\'s warm-up folder removed');

  // The replacement answers its pings: not killed, however long it runs (three bounds here).
  await new Promise((resolve) => setTimeout(resolve, 6500));
  t.equal(lines.filter((l) => l.msg === 'worker hung: it answered no ping in time; killed (a replacement replays its CDR spool)').length, 1, 'a worker that answers is never killed');

  const text = await (await fetch(`http://127.0.0.1:${primary.metricsPort}/metrics`)).text();
  t.match(text, /^hotline_cluster_workers_killed_hung_total 1$/m, 'counted');
  t.match(text, /^hotline_cluster_worker_restarts_total 1$/m, 'and restarted');
  t.equal(await primary.stop(), 0, 'the daemon stops cleanly');
});

t.test('real workers answer the pings: idle for 2.5 bounds with nothing else asked, none is taken for hung', async (t) => {
  // Pings every 1.5 s; a worker that did not answer would be killed 6 s after its first ping.
  const c = startCluster(t, { CLUSTER_WORKER_HANG_TIMEOUT_S: '6' });
  await c.ready;
  await new Promise((resolve) => setTimeout(resolve, 15_000));
  c.child.kill('SIGTERM');
  t.equal(await c.exited, 0, 'both stop cleanly');
  // Read once every process has ended ('close'): a kill logged in the last LOG_FLUSH_MS is in too.
  t.same(c.lines().filter((l) => typeof l.msg === 'string' && /^worker (hung|died)/.test(l.msg)), [], 'no worker killed');
});
