/**
 * The warm-up's temporary folders (its CDR spool and call journal), named after the process that
 * made them (`hotline-warm-up-<pid>-XXXXXX`, in the system's temporary folder; a cluster worker's
 * `hotline-warm-up-<pid>-<tag>-XXXXXX`, the tag its primary gave it).
 *
 * While a warm-up runs its folder is registered here, so that a process ending by a signal
 * mid-warm-up removes it first (src/exit-codes.ts `endBySignal`): a signal's default action ends
 * the process without running the warm-up's `finally`. A process killed outright (SIGKILL: the
 * cluster primary's quit timer, the OOM killer, a service manager's stop timeout) runs nothing;
 * its folder is removed by whoever sees it gone: the cluster primary when its worker exits
 * (removeWarmUpFoldersOf: by pid and tag, so that a process of another pid namespace sharing the
 * folder, with the same pid, keeps its own), and the first warm-up on this machine once the folder has been left
 * unchanged for an hour (removeAbandonedWarmUpFolders). Only this user's own directories are
 * ever removed (a shared, sticky /tmp: nobody else can swap them for a link).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const PREFIX = 'hotline-warm-up-';
/** `hotline-warm-up-<pid>-[<tag>-]<mkdtemp's six characters>`. */
const NAME = /^hotline-warm-up-(\d+)-[^/]+$/;
/** A cluster worker's tag: 8 hex digits, random, from its primary (newWarmUpTag). */
export const WARM_UP_TAG = /^[0-9a-f]{8}$/;

/** A tag for a worker about to be forked. */
export function newWarmUpTag(): string {
  return randomBytes(4).toString('hex');
}

const live = new Set<string>();

/** The mkdtemp prefix of process `pid`'s warm-up folders in `tmpDir`, with a worker's tag when it has one. */
export function warmUpFolderPrefix(tmpDir: string, pid: number = process.pid, tag?: string): string {
  return path.join(tmpDir, `${PREFIX}${pid}-${tag === undefined ? '' : `${tag}-`}`);
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

export interface RemovalOptions {
  /** The folder's owner must be this user (a shared /tmp: another user's is left alone); by default this process's. */
  uid?: number | null;
}

/**
 * Removes the warm-up folders a cluster worker, process `pid` given `tag`, left in `tmpDir`; the
 * caller knows it has ended. Folders of this user only. Returns their paths; never throws.
 */
export function removeWarmUpFoldersOf(pid: number, tag: string, tmpDir: string, options: RemovalOptions = {}): string[] {
  const uid = uidOf(options);
  const prefix = path.basename(warmUpFolderPrefix(tmpDir, pid, tag));
  return removeWhere(tmpDir, (_owner, dir) => path.basename(dir).startsWith(prefix) && isOwnFolder(dir, uid));
}

export interface AbandonedOptions extends RemovalOptions {
  /** Whether process `pid` is running; by default signal 0 (ESRCH: gone; EPERM: someone else's, running). */
  isRunning?: (pid: number) => boolean;
  /** Now, in ms since the epoch (tests). */
  now?: number;
}

/**
 * A folder, or anything in it, changed this recently is left alone, whatever its pid says. A
 * process of another pid namespace that shares the temporary folder (containers started alike)
 * looks gone from here while its warm-up runs, for at most WARM_UP_MAX_S and 3 s.
 */
export const ABANDONED_AFTER_MS = 3_600_000;

/**
 * Removes the warm-up folders in `tmpDir` whose process has ended, this user's only, none changed
 * within ABANDONED_AFTER_MS, never this process's own. A pid reused since only delays the removal
 * to a later start. Returns their paths; never throws.
 */
export function removeAbandonedWarmUpFolders(tmpDir: string, options: AbandonedOptions = {}): string[] {
  const isRunning = options.isRunning ?? processRunning;
  const uid = uidOf(options);
  const before = (options.now ?? Date.now()) - ABANDONED_AFTER_MS;
  return removeWhere(tmpDir, (owner, dir) => owner !== process.pid && isOwnFolder(dir, uid) && !isRunning(owner) && unchangedSince(dir, before));
}

function uidOf(options: RemovalOptions): number | null {
  return options.uid === undefined ? (process.getuid?.() ?? null) : options.uid;
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

/** A directory itself (not a symlink to one), owned by `uid` (any owner when null). */
function isOwnFolder(dir: string, uid: number | null): boolean {
  try {
    const st = fs.lstatSync(dir);
    return st.isDirectory() && (uid === null || st.uid === uid);
  } catch {
    return false;
  }
}

/** Neither the folder nor anything directly in it was modified at or after `before` (ms since the epoch). */
function unchangedSince(dir: string, before: number): boolean {
  try {
    if (fs.lstatSync(dir).mtimeMs >= before) return false;
    for (const name of fs.readdirSync(dir)) {
      if (fs.lstatSync(path.join(dir, name)).mtimeMs >= before) return false;
    }
    return true;
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
