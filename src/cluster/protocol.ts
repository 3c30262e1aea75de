/**
 * Messages between the primary and its workers over the cluster's IPC channel. Every message has
 * a `type` starting with "hotline:"; what arrives is checked by `parse*`, which never throws (an
 * unknown or malformed message is ignored: node:cluster sends its own internal ones too).
 */
import type { Health } from '../http/metrics-server';
import { WARM_UP_TAG } from '../warmup/folders';
import type { MetricJson } from './aggregate';

/** The signals that stop the daemon (README "Stopping"). */
export type StopSignal = 'SIGTERM' | 'SIGINT';

/** SIGTERM or SIGINT: a signal's name as a process's exit or a message gives it. */
export function isStopSignal(signal: unknown): signal is StopSignal {
  return signal === 'SIGTERM' || signal === 'SIGINT';
}

/** Primary → worker. */
export type ToWorker =
  /**
   * First message: which slot (its spool folder worker-<slot>) this worker serves, and the tag
   * its warm-up folder's name carries (src/warmup/folders.ts WARM_UP_TAG). A primary of an
   * earlier release (dist/ replaced under a running one, whose forks run the new code) sends no
   * tag: null, the folder untagged (removed by a later warm-up), never a worker that waits for a
   * start it dropped.
   */
  | { type: 'hotline:start'; slot: number; warmUpTag: string | null }
  /** This worker runs the cluster's cron jobs and writes the configuration cache from now on. */
  | { type: 'hotline:leader' }
  | { type: 'hotline:metrics?'; id: number }
  | { type: 'hotline:health?'; id: number }
  /** Stop as on SIGTERM: close the listener, drain, flush CDRs, exit 0. */
  | { type: 'hotline:drain' }
  /**
   * A second signal reached the primary while this worker still starts (after its drain): end at
   * once by `signal`, as a single daemon does on a second signal during its start. A worker
   * whose outbound socket has opened ignores it (says so: hotline:quit-ignored) and goes on draining.
   */
  | { type: 'hotline:quit'; signal: StopSignal }
  /** Hand back the cron leases of these holders: workers that exited (their runs cannot go on). */
  | { type: 'hotline:release-leases'; holders: string[] }
  /** Are you there? Answered at once (hotline:pong) by a worker whose event loop runs. */
  | { type: 'hotline:ping' };

/** Worker → primary. */
export type ToPrimary =
  /** The worker listens for messages: send it its slot. */
  | { type: 'hotline:hello' }
  /** Configuration loaded and the ESL listener open; its cron scheduler's lease holder (null: cron off). */
  | { type: 'hotline:ready'; eslPort: number; cronHolder: string | null }
  /** A quit came after this worker's outbound socket opened (calls may be up): it drains instead; the primary must not kill it. */
  | { type: 'hotline:quit-ignored' }
  /** The answer to hotline:ping. */
  | { type: 'hotline:pong' }
  /** The leases of these holders are handed back (`released` rows were still held). */
  | { type: 'hotline:leases-released'; holders: string[]; released: number }
  | { type: 'hotline:metrics'; id: number; metrics: MetricJson[] }
  | { type: 'hotline:health'; id: number; health: Health };

function record(m: unknown): Record<string, unknown> | null {
  return m !== null && typeof m === 'object' && !Array.isArray(m) ? (m as Record<string, unknown>) : null;
}

function whole(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A cron lease holder as the scheduler writes it (cron_leases.holder is at most 128 characters). */
function holder(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 128;
}

function holders(v: unknown): v is string[] {
  return Array.isArray(v) && v.length > 0 && v.every(holder);
}

export function parseToWorker(m: unknown): ToWorker | null {
  const r = record(m);
  if (!r) return null;
  switch (r.type) {
    case 'hotline:start':
      return whole(r.slot) && r.slot >= 1 ? { type: r.type, slot: r.slot, warmUpTag: typeof r.warmUpTag === 'string' && WARM_UP_TAG.test(r.warmUpTag) ? r.warmUpTag : null } : null;
    case 'hotline:leader':
    case 'hotline:drain':
    case 'hotline:ping':
      return { type: r.type };
    case 'hotline:metrics?':
    case 'hotline:health?':
      return whole(r.id) ? { type: r.type, id: r.id } : null;
    case 'hotline:release-leases':
      return holders(r.holders) ? { type: r.type, holders: [...r.holders] } : null;
    case 'hotline:quit':
      return isStopSignal(r.signal) ? { type: r.type, signal: r.signal } : null;
    default:
      return null;
  }
}

export function parseToPrimary(m: unknown): ToPrimary | null {
  const r = record(m);
  if (!r) return null;
  switch (r.type) {
    case 'hotline:hello':
    case 'hotline:quit-ignored':
    case 'hotline:pong':
      return { type: r.type };
    case 'hotline:ready':
      return whole(r.eslPort) && (r.cronHolder === null || holder(r.cronHolder)) ? { type: r.type, eslPort: r.eslPort, cronHolder: r.cronHolder } : null;
    case 'hotline:leases-released':
      return holders(r.holders) && whole(r.released) ? { type: r.type, holders: [...r.holders], released: r.released } : null;
    case 'hotline:metrics':
      return whole(r.id) && Array.isArray(r.metrics) && r.metrics.every(isMetricJson) ? { type: r.type, id: r.id, metrics: r.metrics } : null;
    case 'hotline:health': {
      const h = record(r.health);
      return whole(r.id) && h && typeof h.ok === 'boolean' && typeof h.status === 'string' ? { type: r.type, id: r.id, health: h as Health } : null;
    }
    default:
      return null;
  }
}

function isMetricJson(m: unknown): m is MetricJson {
  const r = record(m);
  return r !== null && typeof r.name === 'string' && typeof r.type === 'string' && typeof r.help === 'string' && Array.isArray(r.values);
}
