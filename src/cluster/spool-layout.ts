/**
 * The CDR spool folders of a daemon run with workers (CLUSTER_WORKERS > 1):
 *
 *   CDR_SPOOL_DIR/            locked by the primary for as long as it runs (a second daemon, with
 *                             or without workers, on the same folder exits 3 as before)
 *   CDR_SPOOL_DIR/worker-1/   worker 1's spool, locked by worker 1 (and by its replacement after
 *   CDR_SPOOL_DIR/worker-2/   a crash, which replays what the dead one left)
 *   …
 *
 * Segments are only ever moved between these folders by a process that holds the locks of both
 * (the lock of a dead process is gone with it): at start-up the primary moves segments left in
 * the top folder (a single-process run before) and in worker folders beyond CLUSTER_WORKERS (a run
 * with more workers before) into worker-1; a single-process daemon moves the segments of every
 * worker-<n> folder into its own. The call journals (src/cdr/journal.ts: calls a stopped process
 * left in progress) move with the segments, and whoever opens the folder next writes their CDRs.
 * So changing CLUSTER_WORKERS loses no CDR. Quarantine files stay where they are, for a person to
 * look at.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SpoolLock, SpoolLockedError } from '../cdr/spool-lock';

const WORKER_DIR = /^worker-([1-9]\d{0,5})$/;
/** Spool segments and call journals: `<kind>-<ms>-<seq>.jsonl`. */
const MOVED_FILE = /^(segment|calls-in-progress)-(\d+)-(\d+)\.jsonl$/;

/** The spool folder of worker `slot` (1-based). */
export function workerSpoolDir(root: string, slot: number): string {
  return path.join(root, `worker-${slot}`);
}

/** Worker folders under the spool root, by slot. */
export function workerSpoolDirs(root: string): Array<{ slot: number; dir: string }> {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  return names
    .map((n) => ({ n, m: WORKER_DIR.exec(n) }))
    .filter((e): e is { n: string; m: RegExpExecArray } => e.m !== null && fs.statSync(path.join(root, e.n)).isDirectory())
    .map((e) => ({ slot: Number(e.m[1]), dir: path.join(root, e.n) }))
    .sort((a, b) => a.slot - b.slot);
}

export interface MovedSegments {
  /** Folders whose segments (and call journals) were moved, and how many. */
  moved: Array<{ from: string; segments: number; journals?: number }>;
  /** Folders left alone because another process holds them. */
  busy: string[];
}

/**
 * Moves every segment file of `from` into `to` (no name is overwritten: a clash gets a higher
 * sequence number). The caller holds `to`'s lock; `from`'s lock is taken here for the move
 * unless `fromLocked` says the caller holds it already; a folder some live process holds is
 * skipped and reported as busy.
 */
export function moveSegments(froms: readonly string[], to: string, options: { fromLocked?: boolean } = {}): MovedSegments {
  const result: MovedSegments = { moved: [], busy: [] };
  fs.mkdirSync(to, { recursive: true, mode: 0o700 });
  for (const from of froms) {
    if (!fs.existsSync(from)) continue;
    let lock: SpoolLock | null = null;
    if (!options.fromLocked) {
      try {
        lock = SpoolLock.acquire(from);
      } catch (err) {
        if (err instanceof SpoolLockedError) {
          result.busy.push(from);
          continue;
        }
        throw err;
      }
    }
    try {
      let segments = 0;
      let journals = 0;
      for (const name of fs.readdirSync(from)) {
        const m = MOVED_FILE.exec(name);
        if (!m) continue;
        moveOne(path.join(from, name), to, m[1], m[2], Number(m[3]));
        if (m[1] === 'segment') segments++;
        else journals++;
      }
      if (segments + journals > 0) {
        fsyncDir(to);
        fsyncDir(from);
        result.moved.push(journals > 0 ? { from, segments, journals } : { from, segments });
      }
    } finally {
      lock?.release();
    }
  }
  return result;
}

/** link() never overwrites (EEXIST), so a clash is seen, not suffered; then the old name goes. */
function moveOne(file: string, to: string, kind: string, ms: string, seq: number): void {
  for (let attempt = 0; ; attempt++) {
    const target = path.join(to, `${kind}-${ms}-${String(seq + attempt * 1_000_000).padStart(6, '0')}.jsonl`);
    try {
      fs.linkSync(file, target);
      fs.unlinkSync(file);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 1000) throw err;
    }
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
