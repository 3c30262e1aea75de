/**
 * For child processes that watch V8's generations (test/esl/young-gc-child.ts,
 * test/daemon/pretenuring-child.ts): the collector `--expose-gc` exposes, and the old space's use.
 */
import v8 from 'node:v8';

export type Collect = (options?: { type: 'minor' | 'major' }) => void;

/** `gc()` of `--expose-gc`; throws when the process was started without it. */
export function exposedGc(): Collect {
  const collect = (globalThis as { gc?: Collect }).gc;
  if (!collect) throw new Error('run with --expose-gc');
  return collect;
}

/** Bytes in use in V8's old space (where objects that outlived two scavenges are promoted). */
export function oldSpaceUsed(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')?.space_used_size ?? 0;
}
