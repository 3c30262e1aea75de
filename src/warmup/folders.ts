/**
 * The warm-up's temporary folders (its CDR spool and call journal), named after the process that
 * made them (`hotline-warm-up-<pid>-XXXXXX`, in the system's temporary folder).
 *
 * While a warm-up runs its folder is registered here, so that a process ending by a signal
 * mid-warm-up removes it first (src/exit-codes.ts `endBySignal`): a signal's default action ends
 * the process without running the warm-up's `finally`. A process killed outright (SIGKILL: the
 * cluster primary's quit timer, the OOM killer, a service manager's stop timeout) runs nothing;
 * its folder is removed by whoever sees it gone: the cluster primary when its worker exits
 * (removeWarmUpFoldersOf), and the next warm-up on this machine (removeAbandonedWarmUpFolders).
 */
import fs from 'node:fs';
import path from 'node:path';

const PREFIX = 'hotline-warm-up-';
/** `hotline-warm-up-<pid>-<mkdtemp's six characters>`. */
const NAME = /^hotline-warm-up-(\d+)-[^/]+$/;

const live = new Set<string>();

/** The mkdtemp prefix of process `pid`'s warm-up folders in `tmpDir`. */
export function warmUpFolderPrefix(tmpDir: string, pid: number = process.pid): string {
  return path.join(tmpDir, `${PREFIX}${pid}-`);
}

/** The pid a warm-up folder's name carries; null for any other name (an earlier release's folders carry none). */
export function warmUpFolderPid(name: string): number | null {
  const m = NAME.exec(name);
  if (!m) return null;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/** A folder the warm-up made: removed by removeWarmUpFoldersSync() until forgotten. */
export function trackWarmUpFolder(dir: string): void {
  live.add(dir);
}

/** The warm-up removed its folder itself. */
export function forgetWarmUpFolder(dir: string): void {
  live.delete(dir);
}

/** Removes every folder of a warm-up still running; never throws (the process is ending). */
export function removeWarmUpFoldersSync(): void {
  for (const dir of live) {
    removeQuietly(dir);
    live.delete(dir);
  }
}

/**
 * Removes the warm-up folders process `pid` left in `tmpDir`; the caller knows it has ended (a
 * cluster worker that exited). Returns their paths; never throws.
 */
export function removeWarmUpFoldersOf(pid: number, tmpDir: string): string[] {
  return removeWhere(tmpDir, (owner) => owner === pid);
}

export interface AbandonedOptions {
  /** Whether process `pid` is running; by default signal 0 (ESRCH: gone; EPERM: someone else's, running). */
  isRunning?: (pid: number) => boolean;
  /** The folder's owner must be this user (a shared /tmp: another user's folder is left alone); by default this process's. */
  uid?: number | null;
}

/**
 * Removes the warm-up folders in `tmpDir` whose process has ended, this user's only; never this
 * process's own. A pid reused since only delays the removal to a later start. Returns their
 * paths; never throws.
 */
export function removeAbandonedWarmUpFolders(tmpDir: string, options: AbandonedOptions = {}): string[] {
  const isRunning = options.isRunning ?? processRunning;
  const uid = options.uid === undefined ? (process.getuid?.() ?? null) : options.uid;
  return removeWhere(tmpDir, (owner, dir) => owner !== process.pid && !isRunning(owner) && (uid === null || ownedBy(dir, uid)));
}

function removeWhere(tmpDir: string, remove: (pid: number, dir: string) => boolean): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(tmpDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = warmUpFolderPid(name);
    const dir = path.join(tmpDir, name);
    if (pid === null || !remove(pid, dir)) continue;
    if (removeQuietly(dir)) removed.push(dir);
  }
  return removed;
}

function removeQuietly(dir: string): boolean {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
    return true;
  } catch {
    // Left behind: a later start tries again.
    return false;
  }
}

function ownedBy(dir: string, uid: number): boolean {
  try {
    const st = fs.lstatSync(dir);
    return st.isDirectory() && st.uid === uid;
  } catch {
    return false;
  }
}

function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
