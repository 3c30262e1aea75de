/**
 * Synthetic calls through the daemon's own call flow before it listens, so that the first real
 * calls after a start meet compiled code.
 *
 * Why: V8 runs new code in its interpreter and optimises what runs often. A daemon just started
 * spent 0.79-0.82 ms of CPU on each of its first 1,000 calls at saturation, against 0.25-0.27 ms
 * once a few thousand had gone through; after this warm-up 0.54-0.61 ms (bench/PROFILE.md,
 * release 25; three V8 flags that change when code is compiled did no better, releases 21 and 22).
 * At a busy hour the first seconds after a restart are when FreeSWITCH's backlog of calls arrives.
 *
 * How: a CallServer of its own (`warmUp: true`: 127.0.0.1, any free port, bound by this process),
 * fed by the FreeSWITCH emulator the bench uses (freeswitch-call.ts: captured FreeSWITCH traffic,
 * test/fixtures/esl, replayed byte for byte with each call's UUID, caller and times), `calls` calls
 * at most, 100 in flight. The calls are the demo tenant's shape (src/db/demo-seed.ts: greeting, one
 * routing rule, a sequential hunt whose first phone answers) on a tenant that exists only in this
 * module's snapshot, with caller memory off, so that nothing reaches the database. They run with
 * the daemon's own settings object, a logger made as the daemon's that writes nowhere, a metrics
 * registry of their own (thrown away), a CdrWriter that is never started, spooling their CDRs, and
 * a call journal, both in a temporary folder removed at the end; no click-to-call. The code they
 * compile thus sees the objects real calls see, and the daemon's /metrics, CDRs, caps and log see
 * none of them: two log lines say it starts and how it ended.
 *
 * Bounds: after `maxMs` no call starts, one second later the calls still up are ended (failed),
 * and the warm-up's server gets two seconds more to see them end; `signal` (SIGTERM during the
 * start) ends them at once. So it takes at most about maxMs + 3 s.
 *
 * A warm-up that fails (the captures missing: neither test/fixtures/esl nor the build's copy in
 * dist/captures/esl; calls that fail) is logged and the daemon starts anyway, cold: never a
 * reason not to take calls.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Settings } from '../config';
import { CallServer } from '../calls/call-server';
import { CallJournal } from '../cdr/journal';
import { CdrSpool } from '../cdr/spool';
import { CdrWriter } from '../cdr/writer';
import { DEFAULT_RATES, DEMO_GROUP, DEMO_PHONES, DEMO_RULE, DEMO_TENANT } from '../db/demo-seed';
import { createLogger } from '../log';
import { Metrics } from '../metrics';
import type { PromptResolver } from '../prompts';
import { buildSnapshot, type RawTables } from '../snapshot/build';
import type { ConfigSnapshot } from '../snapshot/types';
import { forgetWarmUpFolder, removeAbandonedWarmUpFolders, trackWarmUpFolder, warmUpFolderPrefix } from './folders';
import { shortCall, type CallPlan } from './freeswitch-call';
import { LoadDriver, type LoadResult } from './load';
import { loadTemplates, type Templates } from './templates';

/** The warm-up tenant's access number: dialled only by the warm-up, on its own listener. */
export const WARM_UP_NUMBER = '4000000000';
/** Calls in flight at once, as the bench's closed loop (bench/run.ts). */
const IN_FLIGHT = 100;

export interface WarmUpOptions {
  settings: Settings;
  knex: Knex;
  prompts: PromptResolver;
  log: Logger;
  /** Calls to run at most (WARM_UP_CALLS); 0: none. */
  calls: number;
  /** Start no call after this long (WARM_UP_MAX_S); a second later, the calls still up are ended. */
  maxMs: number;
  /** The emulated FreeSWITCH's traffic; by default read from the captures (tests give one that fails). */
  templates?: () => Templates;
  /** Where the warm-up's CDR spool and journal folder is made (and removed); by default the system's temporary folder. */
  tmpDir?: string;
  /** The daemon is being stopped while it starts (SIGTERM): the calls end at once, the warm-up returns. */
  signal?: AbortSignal;
  /** A cluster worker's tag from its primary, put in the folder's name (warmUpFolderPrefix). */
  folderTag?: string;
}

export interface WarmUpResult {
  calls: number;
  failed: number;
  /** Failure reasons and how many calls had each (a non-empty one is a defect of the call flow). */
  errors: Record<string, number>;
  /** CDRs the call flow spooled (one per call), into the warm-up's folder, removed with it. */
  cdrs: number;
  seconds: number;
  /** maxMs passed before the calls were done. */
  outOfTime: boolean;
  /** The daemon's stop (`signal`) ended the calls. */
  stopped: boolean;
}

/** The bench's short call, each given up after 30 s. */
const PLAN: CallPlan = { ...shortCall(), timeoutMs: 30_000 };

/**
 * After maxMs no call starts; GRACE_MS later the calls still up are ended, counted failed (a call
 * of the warm-up takes a few ms: one still up then is stuck).
 */
const GRACE_MS = 1000;
/**
 * The warm-up's server is given this long to see its calls end after the emulator's side has
 * closed; then the warm-up goes on without waiting (what is left ends on its own).
 */
const STOP_MS = 2000;

/** Runs the warm-up (see the header); null when `calls` is 0. Throws only what it cannot start with. */
export async function warmUp(options: WarmUpOptions): Promise<WarmUpResult | null> {
  const { calls, maxMs, settings, signal } = options;
  if (calls <= 0 || signal?.aborted) return null;
  const templates = (options.templates ?? (() => loadTemplates(WARM_UP_NUMBER)))();
  const snapshot = warmUpSnapshot();
  // What the calls log is written nowhere, by a logger made as the daemon's is (src/log.ts).
  const log = createLogger(settings.log.level, { write: () => undefined });
  const metrics = new Metrics({ tenantIds: settings.metrics.tenantIds, processMetrics: false });
  // The CDRs and the call journal go through their own code, into a folder of the warm-up's
  // removed after it; the CDR writer is never started, so nothing reaches the database.
  const tmpDir = options.tmpDir ?? os.tmpdir();
  const abandoned = removeAbandonedWarmUpFolders(tmpDir);
  if (abandoned.length > 0) options.log.info({ folders: abandoned }, 'warm-up: removed the folders of warm-ups whose process was killed');
  const dir = fs.mkdtempSync(warmUpFolderPrefix(tmpDir, process.pid, options.folderTag));
  trackWarmUpFolder(dir);
  const t0 = process.hrtime.bigint();
  try {
    const spool = new CdrSpool(dir);
    try {
      await spool.open();
      const journal = CallJournal.open(dir, { log });
      try {
        const cdrs = new CdrWriter(options.knex, spool, { flushIntervalMs: settings.cdr.flushIntervalMs, retryIntervalMs: settings.cdr.retryIntervalMs }, log, metrics);
        const server = new CallServer({
          settings, store: { current: snapshot, onLoad: () => undefined }, cdrs, metrics, log, knex: options.knex, prompts: options.prompts, journal, warmUp: true,
        });
        let driven: Driven;
        try {
          const { port } = await server.listen();
          driven = await drive(new LoadDriver(port, templates, PLAN), calls, maxMs, signal);
        } finally {
          await stopWithin(server, STOP_MS);
        }
        // After stop(): a call's CDR is spooled after FreeSWITCH's side has seen it end.
        const { result, outOfTime, stopped } = driven;
        return { calls: result.calls, failed: result.failed, errors: result.errors, cdrs: cdrs.spoolDepth, seconds: Number(process.hrtime.bigint() - t0) / 1e9, outOfTime, stopped };
      } finally {
        await journal.close();
      }
    } finally {
      await spool.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    forgetWarmUpFolder(dir);
  }
}

interface Driven {
  result: LoadResult;
  /** maxMs passed before the calls were done. */
  outOfTime: boolean;
  /** `signal` ended the calls. */
  stopped: boolean;
}

/** server.stop(0), waited for at most `ms`. */
async function stopWithin(server: CallServer, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([server.stop(0), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** The closed loop, bounded by maxMs (and GRACE_MS) and ended at once when `signal` aborts. */
async function drive(driver: LoadDriver, calls: number, maxMs: number, signal: AbortSignal | undefined): Promise<Driven> {
  let late = false;
  let stopped = false;
  const outOfTime = setTimeout(() => {
    late = true;
    driver.stop();
  }, maxMs);
  const stuck = setTimeout(() => driver.abort('warm-up out of time'), maxMs + GRACE_MS);
  const onAbort = (): void => {
    stopped = true;
    driver.abort('daemon stopping');
  };
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort);
  try {
    const result = await driver.run({ mode: 'closed', calls, concurrency: Math.min(IN_FLIGHT, calls) });
    return { result, outOfTime: late, stopped };
  } finally {
    clearTimeout(outOfTime);
    clearTimeout(stuck);
    signal?.removeEventListener('abort', onAbort);
    // Whatever ended the loop (a throw included), no call of the emulator stays up.
    driver.abort('warm-up ended');
  }
}

/** warmUp(), logged; a failure is a warning and the daemon starts cold. */
export async function warmUpLogged(options: WarmUpOptions): Promise<WarmUpResult | null> {
  try {
    if (options.calls > 0 && !options.signal?.aborted) options.log.info({ calls: options.calls, max_s: options.maxMs / 1000 }, 'warm-up: running synthetic calls through the call flow before listening');
    const r = await warmUp(options);
    if (r === null) return null;
    const fields = { calls: r.calls, failed: r.failed, seconds: Math.round(r.seconds * 100) / 100, out_of_time: r.outOfTime };
    if (r.stopped) options.log.info(fields, 'warm-up: cut short, the daemon is stopping');
    else if (r.failed > 0) options.log.warn({ ...fields, errors: r.errors }, 'warm-up: some synthetic calls failed (a defect to report); taking calls anyway');
    else options.log.info(fields, 'warm-up: done, synthetic calls run through the call flow before listening');
    return r;
  } catch (err) {
    options.log.warn({ err }, 'warm-up could not run; taking calls without it (the first calls run slower)');
    return null;
  }
}

/** The demo tenant's rows (src/db/demo-seed.ts, the same constants) on WARM_UP_NUMBER, caller memory off; built as the store builds any. */
export function warmUpSnapshot(): ConfigSnapshot {
  const raw: RawTables = {
    tenants: [{ id: 1, ...DEMO_TENANT, name: 'Warm-up', caller_memory_hours: 0 }],
    access_numbers: [{ id: 1, number: WARM_UP_NUMBER, tenant_id: 1, kind: 'hotline', enabled: 1 }],
    destination_groups: [{ id: 1, tenant_id: 1, ...DEMO_GROUP }],
    destinations: DEMO_PHONES.map((p, i) => ({ id: i + 1, group_id: 1, ...p })),
    routing_rules: [{ id: 1, tenant_id: 1, ...DEMO_RULE, target_id: 1 }],
    prompts: [],
    rates: DEFAULT_RATES.map((r, i) => ({ id: i + 1, tenant_id: null, ...r })),
  };
  const snapshot = buildSnapshot(raw, 0, new Date());
  if (snapshot.rejected.length > 0) throw new Error(`warm-up tenant rejected: ${JSON.stringify(snapshot.rejected)}`);
  return snapshot;
}
