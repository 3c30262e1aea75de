/** What the tests of abandoned warm-up folders (src/warmup/folders.ts) make: a process that has ended, and files old enough to count as left. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { ABANDONED_AFTER_MS } from '../../src/warmup/folders';

/** The pid of a process that was started and has ended (reused only once the kernel's pids wrap). */
export function endedPid(): number {
  const pid = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { env: {} }).stdout.toString());
  if (!(pid > 0)) throw new Error('no pid from the child');
  return pid;
}

/** Sets the times of `paths` to twice ABANDONED_AFTER_MS ago: unchanged for long enough to be removed. */
export function leftLongAgo(...paths: string[]): void {
  const old = (Date.now() - 2 * ABANDONED_AFTER_MS) / 1000;
  for (const p of paths) fs.utimesSync(p, old, old);
}
