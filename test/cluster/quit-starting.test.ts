/**
 * The primary's answer to a second SIGTERM/SIGINT while a worker still starts
 * (ClusterPrimary.quitStarting), with stand-in workers (test/cluster/fake-worker.ts) that answer
 * the quit in the ways a real worker can, including not at all. This test's process is the
 * primary. The real-process cases (a worker that ends by the signal, Ctrl-C twice) are in
 * start-signals.test.ts; these are the ones a real worker cannot be made to show on demand: a
 * worker that neither ends nor answers, one that drains past the quit timer, one whose ready
 * message crosses the quit.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { until } from '../helpers/wait';
import { startFakePrimary, workersTmpDir } from './fake-cluster';

// The workers' warm-up folders go to a temporary folder of this file's (they inherit TMPDIR).
const tmp = workersTmpDir(t, 'quit-starting');

const warmUpFolders = (): string[] => fs.readdirSync(tmp).filter((n) => n.startsWith('hotline-warm-up-'));

interface Run {
  /** What quitStarting returned. */
  endBySignal: boolean;
  exitCode: number;
  /** How the worker ended, and how long after the quit. */
  worker: { code: number | null; signal: string | null; afterQuitMs: number };
  lines: Array<Record<string, unknown>>;
  foldersWhileStarting: string[];
}

async function run(behaviour: 'deaf' | 'drains' | 'ready-crossing'): Promise<Run> {
  const { primary, lines, firstEnded: ended } = await startFakePrimary(tmp, [behaviour], { CLUSTER_WORKERS: '2', DRAIN_TIMEOUT_S: '5' });
  await until('the worker made its warm-up folder', () => warmUpFolders().length === 1, 30_000);
  const foldersWhileStarting = warmUpFolders();
  const stopped = primary.stop();
  const quitAt = Date.now();
  const endBySignal = primary.quitStarting('SIGTERM');
  const exitCode = await stopped;
  const end = await ended;
  return { endBySignal, exitCode, worker: { code: end.code, signal: end.signal, afterQuitMs: end.at - quitAt }, lines, foldersWhileStarting };
}

const said = (r: Run, msg: string): boolean => r.lines.some((l) => l.msg === msg);

t.test('a worker that neither ends nor answers the quit is killed after 2 s; the daemon exits 1; its warm-up folder is removed', async (t) => {
  const r = await run('deaf');
  t.equal(r.endBySignal, true, 'no worker ever served: the primary ends by the signal');
  t.equal(r.worker.signal, 'SIGKILL', 'killed');
  t.ok(r.worker.afterQuitMs >= 1900, `after the quit timer (${r.worker.afterQuitMs} ms)`);
  t.equal(r.exitCode, 1, 'a worker that had to be killed is a failure');
  t.ok(said(r, 'worker told to quit did not end in time; killed'));
  t.same(r.foldersWhileStarting.length, 1);
  t.same(warmUpFolders(), [], 'the folder the killed worker left is removed by the primary');
  const removed = r.lines.find((l) => l.msg === 'removed the warm-up folder the worker left');
  t.same(removed?.folders, [path.join(tmp, r.foldersWhileStarting[0])], 'and the removal is logged');
});

t.test('a worker that answers it drains is not killed, however long it drains; exit 0', async (t) => {
  const r = await run('drains');
  t.equal(r.worker.code, 0);
  t.equal(r.worker.signal, null, 'not killed');
  t.ok(r.worker.afterQuitMs >= 2500, `it outlived the quit timer (${r.worker.afterQuitMs} ms)`);
  t.equal(r.exitCode, 0);
  t.ok(said(r, 'worker told to quit drains its calls instead (its outbound socket had opened)'));
  t.notOk(said(r, 'worker told to quit did not end in time; killed'));
});

t.test('a worker whose ready message crossed the quit is serving: not killed; exit 0', async (t) => {
  const r = await run('ready-crossing');
  t.equal(r.endBySignal, true, 'at the quit no worker had served');
  t.equal(r.worker.code, 0);
  t.equal(r.worker.signal, null, 'not killed');
  t.ok(r.worker.afterQuitMs >= 2500, `it outlived the quit timer (${r.worker.afterQuitMs} ms)`);
  t.equal(r.exitCode, 0);
  t.ok(said(r, 'worker serving calls'));
  t.notOk(said(r, 'worker told to quit did not end in time; killed'));
});
