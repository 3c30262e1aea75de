/**
 * Starts a real daemon for a test: its own database (SQLite file or a fresh MariaDB database),
 * ESL and metrics on port 0, a private CDR spool, short timers, silent logs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { loadSettings, type Settings } from '../../src/config';
import { Daemon, type DaemonOptions } from '../../src/daemon';
import { createLogger, type Logger } from '../../src/log';

/**
 * The temporary folders made here (SQLite files, spools), removed when the test file's process
 * exits: a test that never stops its daemon (a start expected to fail), or hands a database URL
 * to a child process, would otherwise leave them in the system's temporary directory (some 150
 * a CI run did).
 */
const made: string[] = [];
process.once('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export interface TestDaemon {
  daemon: Daemon;
  knex: Knex;
  port: number;
  settings: Settings;
  spoolDir: string;
  /** Waits until the CDR for this call UUID is in the database. */
  cdr(uuid: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export async function startTestDaemon(
  databaseUrl: string,
  overrides: Record<string, unknown> = {},
  options: DaemonOptions = {},
  /** The daemon's logger (a test that reads what it logs); by default silent (TEST_LOG_LEVEL). */
  logger?: Logger,
): Promise<TestDaemon> {
  const spoolDir = tempDir('hotline-spool-');
  const settings = loadSettings({
    env: {},
    overrides: deepMerge(
      {
        database: { url: databaseUrl, seedDemo: 'always' },
        esl: { listenPort: 0, lingerS: 10, replyTimeoutMs: 2000, appTimeoutMarginMs: 2000 },
        metrics: { port: 0 },
        cdr: { spoolDir, flushIntervalMs: 20, retryIntervalMs: 100 },
        reports: { dir: path.join(spoolDir, 'reports') },
        configCache: { pollIntervalMs: 50 },
        calls: { drainTimeoutS: 2, warmUpCalls: 0 },
        prompts: { systemDir: '/sounds/hotline', sameFilesystem: 'no' },
        node: { name: 'test-node' },
        log: { level: process.env.TEST_LOG_LEVEL ?? 'silent' },
      },
      overrides,
    ),
  });
  // Cron jobs run only when a test calls runTick(): node-cron's real-time ticks would race the
  // test's own at minute boundaries ("claimed"), and add runs a test does not expect.
  const daemon = await Daemon.start(settings, logger ?? createLogger(settings.log.level), { cronSchedule: false, ...options });
  const knex = daemon.knex;
  return {
    daemon,
    knex,
    port: daemon.eslPort,
    settings,
    spoolDir,
    // 30 s: on SQLite the first CDR waits for the batch thread, which compiles its sources with
    // ts-node under the tests; on a loaded 2-vCPU machine that alone took over 5 s (four tests
    // failed so, in one run). A wait for a condition: it costs nothing when the CDR comes.
    async cdr(uuid, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const row = (await knex('cdrs').where({ call_uuid: uuid }).first()) as Record<string, unknown> | undefined;
        if (row) return row;
        if (Date.now() > deadline) throw new Error(`no CDR for ${uuid} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      await daemon.stop();
      fs.rmSync(spoolDir, { recursive: true, force: true });
    },
  };
}

function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] = b && typeof b === 'object' && v && typeof v === 'object' && !Array.isArray(v)
      ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
      : v;
  }
  return out;
}

/** The daemon's /metrics page (Prometheus text); throws on any answer but 200. */
export async function fetchMetrics(d: TestDaemon): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${d.daemon.metricsPort}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  return res.text();
}

export function tempSqliteUrl(): string {
  return `sqlite:${path.join(tempDir('hotline-db-'), 'calls.db')}`;
}
