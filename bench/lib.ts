/**
 * What the bench commands share: starting the controllers (each in its own process) and the load
 * generator, reading a process's CPU time from /proc, a throw-away MariaDB database, the daemon's
 * /metrics, and the machine's description.
 */
import { fork, type ChildProcess, type ForkOptions } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import mysql from 'mysql2/promise';
import { intendedNodeFlags } from '../src/node-flags';
import type { CallPlan } from '../src/warmup/freeswitch-call';
import type { LoadResult, LoadSpec } from '../src/warmup/load';
import type { GeneratorMessage, GeneratorRequest } from './freeswitch/main';

export const DIST = path.resolve(__dirname, '..');
/** The access number of the demo tenant the daemon seeds (src/db/demo-seed.ts). */
export const DEMO_NUMBER = '4001012345';

export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, was ${raw}`);
  return n;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

const CLOCK_TICKS = 100; // USER_HZ: 100 on every Linux build these run on (getconf CLK_TCK)

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  return cpuSecondsOf(`/proc/${pid}/stat`);
}

/** utime + stime of a /proc stat file (a process's or a thread's), in seconds. */
function cpuSecondsOf(statFile: string): number {
  const stat = fs.readFileSync(statFile, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * utime + stime of a process's main thread, in seconds (/proc/<pid>/task/<pid>/stat: the main
 * thread's id is the process's). A Node process's JavaScript runs there; V8's and libuv's threads
 * are the rest of cpuSeconds.
 */
export function mainThreadSeconds(pid: number): number {
  return cpuSecondsOf(`/proc/${pid}/task/${pid}/stat`);
}

/** The machine's CPU time, busy and in all, summed over its CPUs (/proc/stat's first line), in clock ticks. */
export function machineTicks(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  // idle and iowait are the fourth and fifth fields: the CPUs had nothing to run.
  return { busy: total - (ticks[3] ?? 0) - (ticks[4] ?? 0), total };
}

/** The pid of the MariaDB server, to read its CPU time (null when it is not on this machine). */
export function mariadbPid(): number | null {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (comm === 'mariadbd' || comm === 'mysqld') return Number(entry);
    } catch {
      // a process that ended while we looked
    }
  }
  return null;
}

export function machine(): string {
  const cpu = os.cpus();
  const model = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? cpu[0]?.model ?? '?';
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return `${os.availableParallelism()} vCPU (${model}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${load}`;
}

export interface Controller {
  name: string;
  port: number;
  pid: number;
  metricsPort?: number;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited(child);
  clearTimeout(timer);
}

/** A controller script that says 'ready' over IPC once it listens (ceiling, bare modesl). */
export async function startScript(name: string, script: string, args: string[], nodeArgs: string[] = []): Promise<Controller> {
  const port = await freePort();
  const child = fork(path.join(DIST, 'bench', script), [String(port), ...args], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: nodeArgs });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it listened`)));
  });
  return { name, port, pid: child.pid!, stop: () => stopChild(child) };
}

export interface DaemonOptions {
  databaseUrl: string;
  /** Node.js flags after the production ones (src/node-flags.ts: what `npm start` passes). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** The daemon's working directory (where --cpu-prof writes); a fresh temp dir by default. */
  dir?: string;
}

/** The real daemon (dist/src/main.js) on a fresh spool, seeded with the demo tenant. */
export async function startDaemon(name: string, options: DaemonOptions): Promise<Controller & { dir: string }> {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-bench-'));
  const port = await freePort();
  const metricsPort = await freePort();
  const child = fork(path.join(DIST, 'src', 'main.js'), [], {
    cwd: dir,
    execArgv: [...intendedNodeFlags(), ...(options.nodeArgs ?? [])],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      SEED_DEMO: 'always',
      CDR_SPOOL_DIR: path.join(dir, 'spool'),
      REPORTS_DIR: path.join(dir, 'reports'),
      TTS_CACHE_DIR: path.join(dir, 'tts'),
      ESL_LISTEN_PORT: String(port),
      METRICS_PORT: String(metricsPort),
      ...options.env,
    },
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name}: daemon exited with ${child.exitCode} during start-up`);
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`${name}: daemon did not start within 120 s`);
    }
    const health = await httpGet(metricsPort, '/healthz').catch(() => null);
    if (health !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // /metrics opens just before the call listener (src/daemon.ts); a probe connection would count
  // as a failed handshake, so give the listener a moment instead.
  await new Promise((r) => setTimeout(r, 300));
  return { name, port, pid: child.pid!, metricsPort, dir, stop: () => stopChild(child) };
}

export function httpGet(port: number, pathname: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathname, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** One sample (no labels) from Prometheus text, e.g. nodejs_heap_size_used_bytes. */
export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** The MariaDB server the tests use; a throw-away database is made and dropped per bench. */
export function mysqlServerUrl(): string {
  return process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
}

export async function createDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const server = new URL(mysqlServerUrl());
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
  const conn = await mysql.createConnection({ host: server.hostname, port: Number(server.port || 3306), user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) });
  await conn.query(`CREATE DATABASE \`${name}\``);
  await conn.end();
  server.pathname = `/${name}`;
  return {
    url: server.toString(),
    async drop() {
      const c = await mysql.createConnection({ host: server.hostname, port: Number(server.port || 3306), user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) });
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await c.end();
    },
  };
}

/**
 * The load generator's Node.js flags, whatever node the bench itself runs under. The generator
 * outlives every controller of a run, and after it had warmed up a daemon (a closed loop at 100
 * in flight) V8 kept its old-generation limit a few MB above what it keeps live (about 11 MB).
 * From then on it marked the old generation almost without pause: a full collection every ~300 ms
 * at 200 calls/s, each a pause of 3-4 ms on average plus 2-9 ms of marking steps on its one
 * thread, which every call in flight waited for. The ceiling's setup p99 at 200 calls/s was
 * 11.6-14.6 ms after that, 2.2-3.6 ms from a fresh generator. With the limit at four times what
 * is live it collects every ~6 s and the ceiling's p99 was 3.5-5.4 ms in 3 of 4 rounds (10.2 in
 * the fourth; bench/PROFILE.md, release 17). Not the daemon's flags: a change to those must not
 * change the instrument that measures it.
 */
export const GENERATOR_NODE_FLAGS: readonly string[] = ['--heap-growing-percent=300'];

/** How the generator is forked: its own flags, never the bench process's (fork's default). */
export function generatorForkOptions(): ForkOptions {
  return { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...GENERATOR_NODE_FLAGS] };
}

/** The load generator, in a process of its own. */
export class Generator {
  private readonly child: ChildProcess;

  constructor() {
    this.child = fork(path.join(DIST, 'bench', 'freeswitch', 'main.js'), [], generatorForkOptions());
  }

  get pid(): number {
    return this.child.pid!;
  }

  run(port: number, plan: CallPlan, spec: LoadSpec, onProgress?: (p: { started: number; inFlight: number; handshakes: number }) => void): Promise<LoadResult> {
    const request: GeneratorRequest = { port, destination: DEMO_NUMBER, plan, spec };
    return new Promise((resolve, reject) => {
      const onMessage = (m: GeneratorMessage): void => {
        if (m.type === 'progress') {
          onProgress?.(m);
          return;
        }
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        if (m.type === 'result') resolve(m.result);
        else reject(new Error(`generator: ${m.message}`));
      };
      const onExit = (code: number | null): void => reject(new Error(`generator exited with ${code}`));
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send(request);
    });
  }

  async stop(): Promise<void> {
    this.child.disconnect();
    await exited(this.child);
  }
}

/**
 * The measured load of a bench: `calls` offered at `rate` calls/s (an open loop, as npm run
 * bench's), or a closed loop with `concurrency` in flight when `rate` is 0; and how to say which.
 */
export function measuredLoad(calls: number, rate: number, concurrency: number): { spec: LoadSpec; offered: string } {
  return rate > 0 ? { spec: { mode: 'open', calls, rate }, offered: `offered at ${rate} calls/s` } : { spec: { mode: 'closed', calls, concurrency }, offered: `at ${concurrency} in flight` };
}

export { shortCall } from '../src/warmup/freeswitch-call';

/** The caps and balance of the capped rows: far above what a run uses, so no call is refused. */
const CAPS = { balance: '99999999.0000', max_calls_day: 100_000_000, max_calls_month: 1_000_000_000, max_spend_day: '99999999.0000', max_spend_month: '99999999.0000' };

/**
 * Sets `columns` on the demo tenant's row in the daemon's database and waits until the daemon has
 * reloaded its configuration (CONFIG_POLL_INTERVAL_MS 200 for these rows).
 */
export async function updateDemoTenant(connection: string | { filename: string }, columns: Readonly<Record<string, unknown>>): Promise<void> {
  const knex = typeof connection === 'string' ? knexFactory({ client: 'mysql2', connection }) : knexFactory({ client: 'better-sqlite3', connection, useNullAsDefault: true });
  try {
    const changed = await knex('tenants').update(columns);
    if (changed !== 1) throw new Error(`expected one demo tenant to update, found ${changed}`);
  } finally {
    await knex.destroy();
  }
  await new Promise((r) => setTimeout(r, 1000));
}

/** Gives the demo tenant CAPS (updateDemoTenant). */
export function capDemoTenant(connection: string | { filename: string }): Promise<void> {
  return updateDemoTenant(connection, CAPS);
}

/** A daemon that sees a DBA's edit within 200 ms (the capped rows are made after it starts). */
export const FAST_RELOAD = { CONFIG_POLL_INTERVAL_MS: '200' };
