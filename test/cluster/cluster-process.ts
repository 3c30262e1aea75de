/**
 * A daemon process with CLUSTER_WORKERS workers (the real entry point, test/daemon/spawn.ts), and
 * what the cluster tests read from it: its log lines, its /metrics, its spool folders.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { JOURNAL_FILE, readJournal } from '../../src/cdr/journal';
import { startDaemonProcess, type DaemonProcess } from '../daemon/spawn';
import { listeningDescriptors, listeningInodes } from '../helpers/listening';

export interface ClusterProcess extends DaemonProcess {
  dir: string;
  spoolDir: string;
  databaseFile: string;
  /** Resolves once every worker serves calls: the shared ESL port and the primary's metrics port. */
  ready: Promise<{ eslPort: number; metricsPort: number }>;
  /** The log lines (JSON) of the primary and the workers so far. */
  lines(): Array<Record<string, unknown>>;
}

/** Starts the daemon for test `t`, which kills it (SIGKILL, if still up) and removes its folder at teardown. */
export function startCluster(t: Test, env: Record<string, string>, workers = 2): ClusterProcess {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-cluster-'));
  const spoolDir = path.join(dir, 'spool');
  const databaseFile = path.join(dir, 'calls.db');
  const d = startDaemonProcess({
    CLUSTER_WORKERS: String(workers),
    DATABASE_URL: `sqlite:${databaseFile}`,
    SEED_DEMO: 'always',
    CDR_SPOOL_DIR: spoolDir,
    TTS_CACHE_DIR: path.join(dir, 'tts'),
    REPORTS_DIR: path.join(dir, 'reports'),
    PROMPTS_DIR: '/sounds/hotline',
    PROMPTS_SAME_FILESYSTEM: 'no',
    NODE_NAME: 'cluster-test',
    ...env,
  });
  t.teardown(() => {
    d.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const lines = (): Array<Record<string, unknown>> =>
    d.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
  const ready = new Promise<{ eslPort: number; metricsPort: number }>((resolve, reject) => {
    const check = (): void => {
      const all = lines();
      const done = all.find((l) => l.msg === 'all workers serving calls');
      const metrics = all.find((l) => l.msg === 'metrics listening on /metrics');
      if (done && metrics) resolve({ eslPort: Number(done.eslPort), metricsPort: Number(metrics.port) });
    };
    d.child.stdout.on('data', check);
    void d.exited.then((code) => reject(new Error(`the daemon exited (${code}) before its workers served calls:\n${d.stdout()}\n${d.stderr()}`)));
  });
  ready.catch(() => undefined);
  return { ...d, dir, spoolDir, databaseFile, ready, lines };
}

/** The pid of the worker now serving `slot` (its last "worker serving calls" line). */
export function workerPid(c: ClusterProcess, slot: number): number {
  const line = c.lines().filter((l) => l.msg === 'worker serving calls' && l.worker === slot).pop();
  if (!line) throw new Error(`worker ${slot} has not served calls yet`);
  return Number(line.pid);
}

/** Polls `check` until it returns a value that is not undefined (conditions, never fixed sleeps). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function getText(port: number, pathname: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`);
  return res.text();
}

/** One unlabelled or labelled sample from Prometheus text; undefined when absent. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** call_uuids of the CDRs spooled (not yet written) in one worker's folder. */
/** The calls open in worker `slot`'s call journals (src/cdr/journal.ts). */
export function journaledUuids(spoolDir: string, slot: number): string[] {
  const dir = path.join(spoolDir, `worker-${slot}`);
  if (!fs.existsSync(dir)) return [];
  const text = fs.readdirSync(dir).filter((n) => JOURNAL_FILE.test(n)).map((n) => fs.readFileSync(path.join(dir, n), 'utf8')).join('');
  return readJournal(text).open.map((o) => o.call);
}

export function spooledUuids(spoolDir: string, slot: number): string[] {
  const dir = path.join(spoolDir, `worker-${slot}`);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => n.startsWith('segment-'))
    .flatMap((n) => fs.readFileSync(path.join(dir, n), 'utf8').split('\n'))
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [(JSON.parse(l) as { call_uuid: string }).call_uuid];
      } catch {
        return [];
      }
    });
}

/**
 * Does process `pid` hold the socket listening on `port`? Read from /proc (Linux): the LISTEN
 * entry's inode in /proc/net/tcp{,6}, then the process's file descriptors. Under node:cluster's
 * round-robin only the primary holds it; with CLUSTER_SCHEDULING=os every worker does too.
 */
export function holdsListeningSocket(pid: number, port: number): boolean {
  if (listeningInodes(port).size === 0) throw new Error(`nothing listens on port ${port}`);
  return listeningDescriptors(pid, port) > 0;
}
