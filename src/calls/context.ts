/**
 * What every call shares with the daemon: settings, the snapshot it started with, metrics, the
 * database for shared call state, the clock and random source its decisions take, the queue
 * book, and the prompts (resolver and the latest file check).
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Settings } from '../config';
import type { Metrics } from '../metrics';
import type { PromptResolver } from '../prompts';
import type { PromptFileStatus } from '../prompts/file-check';
import type { ConfigSnapshot } from '../snapshot/types';
import type { CallerMemoryLookup } from './caller-memory';

export interface CallDeps {
  settings: Settings;
  snapshot: ConfigSnapshot;
  metrics: Metrics;
  log: Logger;
  clock: () => Date;
  random: () => number;
  /** Shared call state (admission, PIN lockouts, rotation, caller memory). */
  knex: Knex;
  /** Caller memory lookups (caller-memory.ts: batched across calls). */
  callerMemory: CallerMemoryLookup;
  /** Caller memory answers within the turn of the event loop it is asked in (CallerMemory.answersInTurn). */
  callerMemoryInTurn: boolean;
  /**
   * Callers answered recently, in memory (answered-callers-feed.ts): `answeredNone` true means no
   * lookup is needed, the answer is "nobody"; null or false: ask `callerMemory`.
   */
  callerMemoryIndex?: { answeredNone(tenantId: number, caller: string, since: Date): boolean } | null;
  /** Callers waiting in each group's queue on this daemon. */
  queues: QueueBook;
  /** Turns prompt rows (file or TTS) and system prompt names into what the channel plays. */
  prompts: PromptResolver;
  /** Prompt files known to be missing (null: the daemon cannot see FreeSWITCH's files). */
  promptFiles: PromptFileStatus | null;
}

/** Per-daemon queue occupancy by group (max_queue is enforced per daemon). */
export class QueueBook {
  private readonly waiting = new Map<number, number>();
  constructor(private readonly onChange: (total: number) => void = () => undefined) {}

  size(groupId: number): number {
    return this.waiting.get(groupId) ?? 0;
  }

  get total(): number {
    let n = 0;
    for (const v of this.waiting.values()) n += v;
    return n;
  }

  enter(groupId: number): void {
    this.waiting.set(groupId, this.size(groupId) + 1);
    this.onChange(this.total);
  }

  leave(groupId: number): void {
    const n = this.size(groupId) - 1;
    if (n <= 0) this.waiting.delete(groupId);
    else this.waiting.set(groupId, n);
    this.onChange(this.total);
  }
}
