/**
 * The warm-up's temporary folders (its CDR spool and call journal) while it runs, so that a
 * process ending by a signal mid-warm-up removes them first (src/exit-codes.ts `endBySignal`): a
 * signal's default action ends the process without running the warm-up's `finally`, and each
 * abandoned start would otherwise leave a folder in the system's temporary directory.
 */
import fs from 'node:fs';

const live = new Set<string>();

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
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // Left behind: nothing more can be done while the process ends.
    }
    live.delete(dir);
  }
}
