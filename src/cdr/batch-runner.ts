/**
 * Where a CDR batch's statements run (writeCdrBatch, batch.ts): on the main thread, or, for an
 * SQLite database file, on a thread of its own with its own connection.
 *
 * better-sqlite3 is synchronous: on the main thread a batch's INSERTs and its COMMIT (with the WAL
 * checkpoint a commit sometimes runs) hold the event loop, and every call that reads its socket
 * meanwhile waits. At 200 calls/s a batch of ~40 CDRs held it 1.4 ms on average and 6 ms at worst,
 * SQLite's whole excess of setup p99 over the protocol's ceiling (bench/PROFILE.md, release 18). The
 * thread takes a batch (its records and what it needs of the tenants in force) as a message and
 * answers with the batch's result or its error, rebuilt here with its code, so the writer decides
 * as before (a data error halves the batch, anything else keeps the spool). MariaDB does the work
 * in its own server: its batches stay on the main thread.
 *
 * SQLite has one writer: a call's write on the main thread (admission of a capped tenant, a PIN
 * failure, a round-robin position) waits, asynchronously, for the batch out (db/write-gate.ts);
 * any other write of the main thread that meets the thread's transaction waits in busy_timeout,
 * as between two processes on one database file. Readers (the config, caller memory) never wait (WAL).
 */
import path from 'node:path';
import { inspect } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { sqliteFile } from '../db/connect';
import { gateWrites } from '../db/write-gate';
import { CdrDataError, writeCdrBatch, type BatchTenantFacts, type CdrDataErrorCode, type TenantsOf, type WriteResult } from './batch';
import type { CdrRecord } from './record';
import type { ThreadPriority } from './thread-priority';

export interface CdrBatchRunner {
  /** Writes and charges one batch in its own transaction; rejects with the database's error as writeCdrBatch does. */
  write(records: readonly CdrRecord[], tenants?: TenantsOf, clock?: () => Date): Promise<WriteResult>;
  /** Ends what the runner holds (the thread and its connection); writes after it start a new thread. */
  close(): Promise<void>;
  /**
   * Starts now what the first batch would start (the thread: its code loaded, its connection
   * opened), so that neither the first CDRs after a start wait for it nor the first calls pay for
   * it. A thread that cannot start fails as at a first batch: the next batch starts another.
   */
  prepare(): void;
}

/** Batches written on the calling thread, on the daemon's own connection pool. */
export function inProcessRunner(knex: Knex): CdrBatchRunner {
  return {
    write: (records, tenants, clock) => writeCdrBatch(knex, records, tenants, clock),
    close: () => Promise.resolve(),
    prepare: () => undefined,
  };
}

/** A batch as the thread gets it. `tenants`: null when no snapshot is in force (tools). */
export interface BatchRequest {
  readonly id: number;
  readonly records: readonly CdrRecord[];
  readonly tenants: ReadonlyArray<readonly [number, BatchTenantFacts]> | null;
  /** When the batch is written (ms since the epoch): which CDRs are late (late-cdrs.ts). */
  readonly now: number;
}

/** An error that crossed the thread: what the writer and the log read of it. */
export interface ThreadError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly sqlState?: string;
  readonly errno?: number;
}

export type BatchReply = { readonly id: number; readonly ok: true; readonly result: WriteResult } | { readonly id: number; readonly ok: false; readonly error: ThreadError };

/** The thread's first message: its connection is made, batches can be timed. */
export interface ThreadReady {
  readonly ready: true;
  /** What became of the nice value it was asked to take (thread-priority.ts). */
  readonly priority: ThreadPriority;
}

/** The thread stopped (crashed, or could not start): the batch is not written, and stays in the spool. */
export class CdrThreadError extends Error {
  override readonly name = 'CdrThreadError';
  readonly code = 'CDR_THREAD_STOPPED';
}

/** An error as it crosses the thread (structured clone keeps neither its code nor its class). */
export function toThreadError(err: unknown): ThreadError {
  const e = (err ?? {}) as { name?: unknown; message?: unknown; code?: unknown; sqlState?: unknown; errno?: unknown };
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : String(err),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.sqlState === 'string' ? { sqlState: e.sqlState } : {}),
    ...(typeof e.errno === 'number' ? { errno: e.errno } : {}),
  };
}

/** The error back on this side: a CdrDataError again, or an Error with the database's code. */
export function fromThreadError(e: ThreadError): Error {
  if (e.name === 'CdrDataError' && e.code) return new CdrDataError(e.code as CdrDataErrorCode, e.message);
  const err = new Error(e.message) as Error & { code?: string; sqlState?: string; errno?: number };
  err.name = e.name;
  if (e.code !== undefined) err.code = e.code;
  if (e.sqlState !== undefined) err.sqlState = e.sqlState;
  if (e.errno !== undefined) err.errno = e.errno;
  return err;
}

/** What the thread needs of the tenants in force: the batch's tenants only, three fields each. */
export function batchTenantFacts(tenants: TenantsOf | undefined, records: readonly CdrRecord[]): BatchRequest['tenants'] {
  if (!tenants) return null;
  const inForce = tenants();
  const out: Array<readonly [number, BatchTenantFacts]> = [];
  const seen = new Set<number>();
  for (const r of records) {
    if (typeof r.tenant_id !== 'number' || seen.has(r.tenant_id)) continue;
    seen.add(r.tenant_id);
    const t = inForce.get(r.tenant_id);
    if (t) out.push([r.tenant_id, { id: t.id, timezone: t.timezone, missedCallNotify: t.missedCallNotify }]);
  }
  return out;
}

/** How long close() lets the thread end its connection before it is stopped. */
const CLOSE_GRACE_MS = 5000;

/**
 * How long a batch may take, from when its thread is up, before the thread is taken for hung and
 * stopped. A batch of 2,000 rows takes a tenth of a second; one that meets another process's lock
 * waits busy_timeout (5 s) up to four times (writeCdrBatch). Past this the batch fails like an
 * outage (kept in the spool): should the thread still commit it, the replay finds its rows and
 * charges nothing twice. A thread gets as long to start.
 */
export const BATCH_TIMEOUT_MS = 60_000;

interface Bounds {
  /** A batch's bound, counted from when its thread is up. */
  batchTimeoutMs: number;
  /** How long a thread may take to start (load its code, open its connection). */
  startTimeoutMs: number;
}

/**
 * Batches written by a thread of their own (src/cdr/batch-thread.ts), started by prepare() (the
 * writer's start) or the first batch, and again after it stopped. The thread keeps the process
 * alive only while a batch is out. A
 * batch not answered within its bound, or a thread that does not start within its own, fails, and
 * the thread is stopped.
 */
export class ThreadRunner implements CdrBatchRunner {
  private worker: Worker | null = null;
  /** For each thread started: true when it is up (its first message), false when it ended before. */
  private readonly ready = new WeakMap<Worker, Promise<boolean>>();
  /** Threads that are up. */
  private readonly up = new WeakSet<Worker>();
  private readonly bounds: Bounds;
  private nextId = 1;
  /** Batches sent and not yet answered, with the thread each went to. */
  private readonly pending = new Map<number, { worker: Worker; resolve(result: WriteResult): void; reject(err: Error): void }>();
  /** The batches out, for close() to wait for. */
  private readonly out = new Set<Promise<WriteResult>>();

  /** A thread's priority problem was logged (once: every thread started after meets the same). */
  private priorityLogged = false;

  constructor(
    private readonly databaseUrl: string,
    bounds: Partial<Bounds> = {},
    /** Where a thread that ends with no batch out (started ahead by prepare()) says why; batches' failures are the writer's to log. */
    private readonly log?: Pick<Logger, 'warn'>,
    /** The thread's nice value (CDR_WRITER_THREAD_NICE, thread-priority.ts); 0 leaves it at the process's. */
    private readonly nice = 0,
    /** Tests: the system the thread takes itself to run on (ThreadData.platform). */
    private readonly platform?: NodeJS.Platform,
  ) {
    this.bounds = { batchTimeoutMs: bounds.batchTimeoutMs ?? BATCH_TIMEOUT_MS, startTimeoutMs: bounds.startTimeoutMs ?? BATCH_TIMEOUT_MS };
  }

  write(records: readonly CdrRecord[], tenants?: TenantsOf, clock?: () => Date): Promise<WriteResult> {
    const request: BatchRequest = { id: this.nextId++, records, tenants: batchTenantFacts(tenants, records), now: (clock?.() ?? new Date()).getTime() };
    const worker = this.thread();
    const written = new Promise<WriteResult>((resolve, reject) => {
      // Sent first: should it throw, no entry is left behind (a reply cannot come before it returns).
      worker.postMessage(request);
      this.pending.set(request.id, { worker, resolve, reject });
      worker.ref();
    });
    let timer: NodeJS.Timeout | null = null;
    let settled = false;
    void this.ready.get(worker)?.then((up) => {
      if (up && !settled) timer = setTimeout(() => this.hung(request.id, worker, `did not answer a batch within ${this.bounds.batchTimeoutMs} ms`), this.bounds.batchTimeoutMs);
    });
    this.out.add(written);
    const forget = (): void => {
      settled = true;
      if (timer) clearTimeout(timer);
      this.out.delete(written);
    };
    written.then(forget, forget);
    return written;
  }

  prepare(): void {
    this.thread();
  }

  /** The thread running now: true once it is up (its code loaded, its connection open), false if it ended first; null when none runs. */
  whenUp(): Promise<boolean> | null {
    return this.worker ? (this.ready.get(this.worker) ?? null) : null;
  }

  /** Settles when every batch out now is answered; null when none is out. */
  batchesOut(): Promise<void> | null {
    if (this.out.size === 0) return null;
    return Promise.allSettled([...this.out]).then(() => undefined);
  }

  /** After the batches out are answered: the thread closes its connection and ends. */
  async close(): Promise<void> {
    // Until none is out: a batch written while close() waited goes to the same thread.
    while (this.out.size > 0) await Promise.allSettled([...this.out]);
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    if (!this.up.has(worker)) {
      // Started ahead and still loading its code (a stop during the daemon's start): nothing is
      // open or uncommitted there, and it would read the close only once loaded.
      await worker.terminate();
      await exited;
      return;
    }
    worker.postMessage({ close: true });
    const timer = setTimeout(() => void worker.terminate(), CLOSE_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  /**
   * A batch (`id`) past its time, or a thread (null) that did not start or cannot be read: that
   * batch, or every batch the thread holds, fails now with `what`; the thread is stopped, and any
   * other batch it holds fails as it exits.
   */
  private hung(id: number | null, worker: Worker, what: string): void {
    if (id !== null && !this.pending.has(id)) return; // answered meanwhile
    this.dropThread(worker, new CdrThreadError(`the CDR writer thread ${what}; stopped`), what, id);
    void worker.terminate();
  }

  /**
   * Fails the batches `worker` holds (only batch `id` when given) with `error`, and forgets the
   * thread if it is the current one, saying `why` when no batch carried the news (a thread
   * started ahead); a thread close() already ends is not current, and says nothing.
   */
  private dropThread(worker: Worker, error: Error, why: string, id: number | null = null): void {
    let failed = 0;
    for (const [key, p] of this.pending) {
      if (p.worker !== worker || (id !== null && key !== id)) continue;
      this.pending.delete(key);
      failed++;
      p.reject(error);
    }
    if (this.worker !== worker) return;
    this.worker = null;
    if (failed === 0) this.log?.warn({ why }, 'the CDR writer thread stopped with no batch out; the next batch starts another');
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = startThread({ databaseUrl: this.databaseUrl, nice: this.nice, platform: this.platform });
    this.worker = worker;
    let settle: (up: boolean) => void = () => undefined;
    this.ready.set(worker, new Promise<boolean>((resolve) => (settle = resolve)));
    const { startTimeoutMs } = this.bounds;
    const starting = setTimeout(() => this.hung(null, worker, `did not start within ${startTimeoutMs} ms`), startTimeoutMs);
    starting.unref();
    worker.on('message', (reply: BatchReply | ThreadReady) => {
      if ('ready' in reply) {
        clearTimeout(starting);
        this.up.add(worker);
        settle(true);
        const { problem, nice } = reply.priority;
        if (problem && !this.priorityLogged) {
          this.priorityLogged = true;
          this.log?.warn({ asked: this.nice, nice, problem }, 'the CDR writer thread is not at the nice value asked (CDR_WRITER_THREAD_NICE): its batches may take the CPU from calls');
        }
        return;
      }
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (![...this.pending.values()].some((p) => p.worker === worker)) worker.unref();
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(fromThreadError(reply.error));
    });
    // Only this thread's batches fail: a batch sent since to a new thread is not this one's.
    const stopped = (why: string): void => this.dropThread(worker, new CdrThreadError(`the CDR writer thread stopped: ${why}`), why);
    // An error the thread could not send whole (not an Error) is shown as it came, not as [object Object].
    worker.on('error', (err: unknown) => stopped(err instanceof Error ? err.message : inspect(err, { breakLength: Infinity })));
    // A reply that cannot be read names no batch: the thread and its batches go, as in a crash.
    worker.on('messageerror', () => this.hung(null, worker, 'sent a reply that could not be read'));
    worker.on('exit', (code) => {
      clearTimeout(starting);
      settle(false);
      stopped(`exit code ${code}`);
    });
    // After the listeners: adding a 'message' listener refs the thread again, and a thread started
    // ahead (prepare) would then keep the process alive with no batch out.
    worker.unref();
    return worker;
  }
}

/**
 * The thread, from the compiled file beside this one. Where this file is the TypeScript source
 * (the tests run src/ through ts-node), the thread's source is compiled the same way.
 */
function startThread(workerData: ThreadData): Worker {
  const extension = path.extname(__filename);
  const entry = path.join(__dirname, `batch-thread${extension}`);
  if (extension !== '.ts') return new Worker(entry, { workerData });
  const register = require.resolve('ts-node/register/transpile-only');
  return new Worker(`require(${JSON.stringify(register)}); require(${JSON.stringify(entry)});`, { eval: true, workerData });
}

/** What a thread is started with. */
export interface ThreadData {
  readonly databaseUrl: string;
  /** CDR_WRITER_THREAD_NICE. */
  readonly nice: number;
  /** The system the thread takes itself to run on (tests: another one's answer); by default process.platform. */
  readonly platform?: NodeJS.Platform;
}

/** A database file whose batches a thread can write: SQLite on disk (an in-memory one is the connection's own). */
export function threadCanWrite(databaseUrl: string): boolean {
  return sqliteFile(databaseUrl) !== null;
}

/**
 * The runner for this database: a thread for an SQLite file when `thread` allows, else the main
 * thread. With the thread, the calls' writes on `knex` wait for its batches (db/write-gate.ts).
 */
export function cdrBatchRunner(knex: Knex, databaseUrl: string, thread: boolean, log?: Pick<Logger, 'warn'>, nice = 0): CdrBatchRunner {
  if (!thread || !threadCanWrite(databaseUrl)) return inProcessRunner(knex);
  const runner = new ThreadRunner(databaseUrl, {}, log, nice);
  gateWrites(knex, () => runner.batchesOut());
  return runner;
}
