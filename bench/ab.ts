/**
 * `npm run bench:ab -- <revA> [<revB>]`: two builds of the daemon compared in alternating rounds
 * under one load generator, the method of bench/PROFILE.md (releases 6-8). A change of a few per
 * cent is below the spread of one `npm run bench` on these shared machines; taking turns, many
 * times, with the medians and a count of the rounds each build won, shows it or shows that it is
 * noise.
 *
 * - Each revision is checked out with `git worktree add --detach` in a temporary folder and built
 *   there (`tsc -p tsconfig.build.json`) with this checkout's node_modules, so revisions whose
 *   dependencies differ from this checkout's cannot be compared this way. `.` (revB's default)
 *   is this checkout as it is, built by the npm script. The worktrees are removed afterwards.
 * - Both daemons are started (each from its own build, with its own SQLite file, or its own
 *   throw-away MariaDB database with BENCH_AB_DB=mariadb), take BENCH_AB_WARMUP (1000) calls
 *   each, then BENCH_AB_ROUNDS (8) rounds in which each runs BENCH_AB_CALLS (4000) calls with
 *   BENCH_CONCURRENCY (100) in flight, calls that talk BENCH_AB_TALK_MS (0: as busy as the CPU
 *   allows; 100: `npm run bench`'s closed loop with 100 ms talks), the order reversed every other
 *   round. With BENCH_AB_RATE (calls/s, e.g. 200) each round offers its calls at that rate
 *   instead (an open loop, `npm run bench`'s latency row): the setup tail is what it compares.
 *   With BENCH_AB_CAPPED=1 the demo tenant has `npm run bench`'s caps and prepaid balance in both
 *   databases (the sqlite-capped and mariadb-capped rows): every call is counted by admission.
 *   BENCH_AB_TENANT_B (a JSON object of `tenants` columns, e.g. '{"caller_memory_hours":0}') is
 *   set on B's demo tenant alone: with `HEAD HEAD`, one build against itself with one setting
 *   changed, to see what a feature costs.
 *   The load generator is this checkout's.
 * - Printed: every round; the medians of calls/s, the daemon's CPU per call, setup p50 and p99;
 *   B against A; in how many rounds B used less CPU than A.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as thisLib from './lib';
import { capDemoTenant, cpuSeconds, createDatabase, envNumber, FAST_RELOAD, Generator, httpGet, machine, measuredLoad, shortCall, updateDemoTenant } from './lib';

/** One daemon's figures in one round. */
export interface AbRound {
  callsPerSecond: number;
  cpuMsPerCall: number;
  setupP50Ms: number;
  setupP99Ms: number;
  /** The collector's time a call (µs), from the daemon's own /metrics; NaN when it has none. */
  gcUsPerCall: number;
  failed: number;
}

/** The medians of one build's rounds (or, in AbSummary.ratio, B's over A's). */
export interface AbMedians {
  callsPerSecond: number;
  cpuMsPerCall: number;
  setupP50Ms: number;
  setupP99Ms: number;
  gcUsPerCall: number;
}

export interface AbSummary {
  a: AbMedians;
  b: AbMedians;
  /** b / a, of the medians. */
  ratio: AbMedians;
  /** Rounds in which B used less CPU per call than A (ties count for neither). */
  bLessCpu: number;
  rounds: number;
  failed: { a: number; b: number };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Medians, ratios and wins of paired rounds (round i of A with round i of B). */
export function summarize(a: readonly AbRound[], b: readonly AbRound[]): AbSummary {
  if (a.length !== b.length) throw new Error(`rounds of A (${a.length}) and B (${b.length}) must pair up`);
  const med = (rounds: readonly AbRound[]): AbSummary['a'] => ({
    callsPerSecond: median(rounds.map((r) => r.callsPerSecond)),
    cpuMsPerCall: median(rounds.map((r) => r.cpuMsPerCall)),
    setupP50Ms: median(rounds.map((r) => r.setupP50Ms)),
    setupP99Ms: median(rounds.map((r) => r.setupP99Ms)),
    gcUsPerCall: median(rounds.map((r) => r.gcUsPerCall)),
  });
  const ma = med(a);
  const mb = med(b);
  return {
    a: ma,
    b: mb,
    ratio: {
      callsPerSecond: mb.callsPerSecond / ma.callsPerSecond,
      cpuMsPerCall: mb.cpuMsPerCall / ma.cpuMsPerCall,
      setupP50Ms: mb.setupP50Ms / ma.setupP50Ms,
      setupP99Ms: mb.setupP99Ms / ma.setupP99Ms,
      gcUsPerCall: mb.gcUsPerCall / ma.gcUsPerCall,
    },
    bLessCpu: a.filter((r, i) => b[i].cpuMsPerCall < r.cpuMsPerCall).length,
    rounds: a.length,
    failed: { a: a.reduce((n, r) => n + r.failed, 0), b: b.reduce((n, r) => n + r.failed, 0) },
  };
}

/**
 * Seconds the daemon's collector has run since it started: the sum of prom-client's
 * nodejs_gc_duration_seconds over every kind (scavenges, mark-compacts, incremental steps) from
 * its /metrics. NaN for a build whose daemon does not say where /metrics listens.
 */
export async function gcSeconds(metricsPort: number | undefined): Promise<number> {
  if (metricsPort === undefined) return NaN;
  return gcSecondsOf(await httpGet(metricsPort, '/metrics'));
}

/** The sum of every `nodejs_gc_duration_seconds_sum{kind=…}` sample of a Prometheus text; NaN when there is none. */
export function gcSecondsOf(text: string): number {
  let sum = NaN;
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_sum\{[^}]*\} ([0-9.e+-]+)$/gm)) sum = (Number.isNaN(sum) ? 0 : sum) + Number(m[1]);
  return sum;
}

export function formatSummary(s: AbSummary, names: { a: string; b: string }): string {
  const row = (name: string, m: AbMedians): string =>
    `| ${name} | ${m.callsPerSecond.toFixed(0)} | ${m.cpuMsPerCall.toFixed(3)} ms | ${m.setupP50Ms.toFixed(1)} ms | ${m.setupP99Ms.toFixed(1)} ms | ${Number.isNaN(m.gcUsPerCall) ? '—' : `${m.gcUsPerCall.toFixed(1)} µs`} |`;
  const r = s.ratio;
  return [
    '| build | calls/s (median) | CPU a call (median) | setup p50 (median) | setup p99 (median) | collector a call (median) |',
    '|---|---|---|---|---|---|',
    row(`A ${names.a}`, s.a),
    row(`B ${names.b}`, s.b),
    `| B / A | ${r.callsPerSecond.toFixed(3)}× | ${r.cpuMsPerCall.toFixed(3)}× | ${r.setupP50Ms.toFixed(3)}× | ${r.setupP99Ms.toFixed(3)}× | ${Number.isNaN(r.gcUsPerCall) ? '—' : `${r.gcUsPerCall.toFixed(3)}×`} |`,
    '',
    `B used less CPU a call than A in ${s.bLessCpu} of ${s.rounds} rounds; calls failed: A ${s.failed.a}, B ${s.failed.b}.`,
  ].join('\n');
}

const REPO = path.resolve(__dirname, '..', '..');

/** A build of `rev`: this checkout for `.`, else a worktree built in `into` (its own folder, so a revision can be compared with itself: the noise). */
function checkout(rev: string, into: string): { root: string; remove(): void } {
  if (rev === '.') return { root: REPO, remove: () => undefined };
  const git = (...args: string[]): string => {
    const r = spawnSync('git', args, { cwd: REPO, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  };
  const sha = git('rev-parse', '--verify', `${rev}^{commit}`);
  const root = fs.mkdtempSync(path.join(into, `${sha.slice(0, 12)}-`));
  git('worktree', 'add', '--detach', root, sha);
  const remove = (): void => void spawnSync('git', ['worktree', 'remove', '--force', root], { cwd: REPO });
  try {
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'), 'dir');
    const tsc = spawnSync(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
    if (tsc.status !== 0) throw new Error(`building ${rev} (${sha.slice(0, 12)}) failed:\n${tsc.stdout}${tsc.stderr}`);
  } catch (err) {
    remove();
    throw err;
  }
  return { root, remove };
}

type Lib = typeof thisLib;

/** BENCH_AB_TENANT_B: a JSON object of column values, or null when unset; anything else is refused. */
export function tenantColumns(text: string | undefined): Record<string, unknown> | null {
  if (text === undefined || text.trim() === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`BENCH_AB_TENANT_B is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0) {
    throw new Error(`BENCH_AB_TENANT_B must be a JSON object of tenants columns, such as {"caller_memory_hours":0}; got ${text}`);
  }
  return value as Record<string, unknown>;
}

async function main(): Promise<void> {
  const [revA, revB = '.'] = process.argv.slice(2);
  if (!revA) throw new Error('usage: npm run bench:ab -- <revA> [<revB>]   (a git revision, or . for this checkout)');
  const rounds = Math.max(1, Math.floor(envNumber('BENCH_AB_ROUNDS', 8)));
  const calls = envNumber('BENCH_AB_CALLS', 4000);
  const warmup = envNumber('BENCH_AB_WARMUP', 1000);
  const concurrency = envNumber('BENCH_CONCURRENCY', 100);
  const kind = process.env.BENCH_AB_DB === 'mariadb' ? 'mariadb' : 'sqlite';
  const plan = { ...shortCall(), talkMs: envNumber('BENCH_AB_TALK_MS', 0) };
  const rate = envNumber('BENCH_AB_RATE', 0);
  const capped = process.env.BENCH_AB_CAPPED === '1';
  const tenantB = tenantColumns(process.env.BENCH_AB_TENANT_B);
  const { spec, offered } = measuredLoad(calls, rate, concurrency);
  process.stdout.write(`machine: ${machine()}\nA ${revA}, B ${revB}, ${kind}${capped ? ', capped prepaid tenant' : ''}${tenantB ? `, B's tenant ${JSON.stringify(tenantB)}` : ''}: ${warmup} warm-up calls each, then ${rounds} rounds of ${calls} calls each ${offered}, talks of ${plan.talkMs} ms\n`);
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-bench-ab-'));
  const builds: Array<ReturnType<typeof checkout>> = [];
  // Run in order; each daemon and database is put in front as it starts, so daemons stop before
  // their databases are dropped and the worktrees go last.
  const cleanups: Array<() => Promise<void> | void> = [() => builds.forEach((b) => b.remove()), () => fs.rmSync(temp, { recursive: true, force: true })];
  let gen: Generator | null = null;
  try {
    builds.push(checkout(revA, temp));
    builds.push(checkout(revB, temp));
    gen = new Generator();
    const daemons = [];
    for (const [i, build] of builds.entries()) {
      // Each build's own bench/lib.js starts its own dist/src/main.js.
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a build chosen at run time
      const lib = require(path.join(build.root, 'dist', 'bench', 'lib.js')) as Lib;
      const db = kind === 'mariadb' ? await createDatabase(`hotline_bench_ab${i}`) : null;
      if (db) cleanups.unshift(() => db.drop());
      const edited = i === 1 && tenantB !== null;
      const daemon = await lib.startDaemon(i === 0 ? 'A' : 'B', { databaseUrl: db?.url ?? 'sqlite:./bench.db', env: capped || edited ? FAST_RELOAD : {} });
      cleanups.unshift(async () => {
        await daemon.stop();
        fs.rmSync(daemon.dir, { recursive: true, force: true });
      });
      const connection = db?.url ?? { filename: path.join(daemon.dir, 'bench.db') };
      if (capped) await capDemoTenant(connection);
      if (edited) await updateDemoTenant(connection, tenantB);
      daemons.push(daemon);
    }
    for (const d of daemons) await gen.run(d.port, plan, { mode: 'closed', calls: warmup, concurrency });
    const results: AbRound[][] = [[], []];
    for (let r = 0; r < rounds; r++) {
      for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
        const d = daemons[i];
        const gc0 = await gcSeconds(d.metricsPort);
        const cpu0 = cpuSeconds(d.pid);
        const res = await gen.run(d.port, plan, spec);
        const cpu1 = cpuSeconds(d.pid);
        const gc1 = await gcSeconds(d.metricsPort);
        const calls = Math.max(1, res.calls);
        const round: AbRound = {
          callsPerSecond: res.callsPerSecond,
          cpuMsPerCall: ((cpu1 - cpu0) * 1000) / calls,
          setupP50Ms: res.setupMs.p50,
          setupP99Ms: res.setupMs.p99,
          gcUsPerCall: ((gc1 - gc0) * 1e6) / calls,
          failed: res.failed,
        };
        results[i].push(round);
        process.stdout.write(
          `round ${r + 1} ${i === 0 ? 'A' : 'B'}: ${round.callsPerSecond.toFixed(0)} calls/s, CPU ${round.cpuMsPerCall.toFixed(3)} ms a call, setup p50 ${round.setupP50Ms.toFixed(1)} ms, p99 ${round.setupP99Ms.toFixed(1)} ms, collector ${round.gcUsPerCall.toFixed(1)} µs a call, failed ${round.failed}\n`,
        );
      }
    }
    process.stdout.write(`\n${formatSummary(summarize(results[0], results[1]), { a: revA, b: revB })}\n`);
  } finally {
    await gen?.stop();
    for (const c of cleanups) await c();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench:ab failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
