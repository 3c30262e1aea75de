/**
 * For tests whose own process is the cluster primary (ClusterPrimary.start) and whose workers are
 * stand-ins (fake-worker.ts): the workers' temporary folder, and how they are forked.
 */
import cluster, { type Worker } from 'node:cluster';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { ClusterPrimary } from '../../src/cluster/primary';
import { loadSettings } from '../../src/config';
import { capturingLogger } from '../helpers/log';

/**
 * A temporary folder of the test file's own that the workers (which inherit TMPDIR) and this
 * process's os.tmpdir() use until the file ends; removed then, and TMPDIR given back.
 */
export function workersTmpDir(t: Test, name: string): string {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `hotline-${name}-`));
  const realTmp = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  t.teardown(() => {
    if (realTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = realTmp;
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  return tmp;
}

/** The workers forked from now on are fake-worker.ts with these arguments (its behaviour first). */
function forkFakeWorkers(args: readonly string[]): void {
  cluster.setupPrimary({ exec: path.join(__dirname, 'fake-worker.ts'), args: [...args] });
}

export interface FakePrimary {
  primary: ClusterPrimary;
  /** Everything the primary logged, parsed. */
  lines: Array<Record<string, unknown>>;
  /** The first worker it forked, and how and when (Date.now()) that one ended. */
  first: Worker;
  firstEnded: Promise<{ code: number | null; signal: string | null; at: number }>;
}

/**
 * This process as a cluster primary whose workers are fake-worker.ts with `args`, its spool in a
 * folder of `tmp`, metrics on a port of its own, and the settings `env` adds.
 */
export async function startFakePrimary(tmp: string, args: readonly string[], env: Record<string, string>): Promise<FakePrimary> {
  forkFakeWorkers(args);
  const spoolDir = fs.mkdtempSync(path.join(tmp, 'spool-'));
  const settings = loadSettings({ env: { CDR_SPOOL_DIR: spoolDir, METRICS_HOST: '127.0.0.1', METRICS_PORT: '0', ...env } });
  const { log, lines } = capturingLogger('debug');
  // A worker an earlier test of the file left behind (it failed before its teardown) is not ours.
  const before = new Set(Object.keys(cluster.workers ?? {}));
  const primary = await ClusterPrimary.start(settings, log);
  const first = Object.entries(cluster.workers ?? {})
    .filter(([id]) => !before.has(id))
    .sort(([a], [b]) => Number(a) - Number(b))[0]?.[1];
  if (!first) throw new Error('no worker forked');
  const firstEnded = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) => first.on('exit', (code: number | null, signal: string | null) => resolve({ code, signal, at: Date.now() })));
  return { primary, lines, first, firstEnded };
}
