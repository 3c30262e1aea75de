/**
 * The CDR writer thread's CPU priority (CDR_WRITER_THREAD_NICE).
 *
 * The thread sleeps until a batch is posted to it, every CDR_FLUSH_INTERVAL_MS. Woken at the same
 * priority as the main thread on a machine whose cores are busy (the daemon's calls, FreeSWITCH,
 * the database), the kernel gave it the main thread's core at once: the main thread's
 * `postMessage` of a batch took 0.55-0.65 ms on average and up to 3 ms at 200 calls/s, every call
 * that arrived meanwhile waited, and setup p99 was 2.2 ms against 1.7 ms with the thread at nice
 * 10 (bench/PROFILE.md, release 29). With a higher nice value the thread takes the CPU the calls
 * leave; its batches are not urgent (the spool holds the CDRs until they are written).
 *
 * On Linux the nice value belongs to a thread (setpriority(2), "BUGS"; libuv's
 * uv_os_setpriority(0, …) is the calling thread's), so the main thread keeps its own. Elsewhere it
 * belongs to the process, and nothing is changed. Never lowered below the process's own: an
 * unprivileged process may not, and a service manager that set a higher one meant it.
 */
import nodeOs from 'node:os';

/** What the thread did about its priority, for the main thread's log. */
export interface ThreadPriority {
  /** The thread's nice value after the attempt; null where it was not read (not Linux, or not asked). */
  readonly nice: number | null;
  /** Why the asked value is not in force: not Linux, or the system refused it. */
  readonly problem?: string;
}

/** The parts of node:os used here (tests pass a stand-in). */
export type PriorityCalls = Pick<typeof nodeOs, 'getPriority' | 'setPriority'>;

/**
 * Lowers the calling thread's priority to nice `wanted` (0 = leave it as it is). Call it from
 * the thread itself. Never throws.
 */
export function lowerThisThreadPriority(wanted: number, platform: NodeJS.Platform = process.platform, calls: PriorityCalls = nodeOs): ThreadPriority {
  if (wanted <= 0) return { nice: null };
  if (platform !== 'linux') return { nice: null, problem: `the nice value is the whole process's on ${platform}: the thread keeps it` };
  let current: number;
  try {
    current = calls.getPriority(0);
  } catch (err) {
    return { nice: null, problem: `its nice value could not be read: ${describe(err)}` };
  }
  if (current >= wanted) return { nice: current };
  try {
    calls.setPriority(0, wanted);
    return { nice: wanted };
  } catch (err) {
    return { nice: current, problem: `nice ${wanted} was refused: ${describe(err)}` };
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
