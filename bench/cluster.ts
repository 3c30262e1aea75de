/**
 * `npm run bench:cluster`: calls/s of the full daemon with 1 worker (CLUSTER_WORKERS=1, a single
 * process) and with BENCH_WORKERS (2) workers behind one port, once with each CLUSTER_SCHEDULING
 * (round_robin: the primary hands connections out; os: the workers accept), in one run, rounds
 * taking turns.
 *
 * The three daemons run at once on their own ports and databases (BENCH_CLUSTER_DB: mariadb, the
 * production case, or sqlite), each warmed up with BENCH_WARMUP calls; then BENCH_ROUNDS rounds,
 * each a closed loop of BENCH_CALLS / BENCH_ROUNDS calls at BENCH_CONCURRENCY in flight into one
 * daemon, then the other. Controller CPU is the utime+stime of the daemon's whole process tree
 * (primary and workers). The generator runs on the same cores: on a 2-vCPU machine the second
 * worker competes with the generator and the database for the same two cores, so the ratio is a
 * lower bound of what a second core gives.
 */
import fs from 'node:fs';
import { cpuSeconds, createDatabase, envNumber, Generator, httpGet, machine, shortCall, startDaemon, type Controller } from './lib';
import { percentiles, type LoadResult } from '../src/warmup/load';

const CALLS = envNumber('BENCH_CALLS', 3000);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 100);
const WARMUP = envNumber('BENCH_WARMUP', 500);
const ROUNDS = Math.max(1, Math.floor(envNumber('BENCH_ROUNDS', 3)));
const WORKERS = Math.max(2, Math.floor(envNumber('BENCH_WORKERS', 2)));
const DB = process.env.BENCH_CLUSTER_DB === 'sqlite' ? 'sqlite' : 'mariadb';

/** utime+stime of a process and of its children (a cluster primary's workers). */
function treeCpuSeconds(pid: number): number {
  let total = cpuSeconds(pid);
  try {
    for (const child of fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) total += treeCpuSeconds(Number(child));
  } catch {
    // The process is gone.
  }
  return total;
}

/** Waits until /healthz says every worker serves calls. */
async function serving(c: Controller, workers: number): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const body = await httpGet(c.metricsPort ?? 0, '/healthz').catch(() => '');
    try {
      const h = JSON.parse(body) as { ok?: boolean; cluster?: { alive?: number } };
      if (h.ok && (h.cluster?.alive ?? 1) >= workers) return;
    } catch {
      // Not answering JSON yet.
    }
    if (Date.now() > deadline) throw new Error(`${c.name}: not serving within 180 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

type Scheduling = 'round_robin' | 'os';

async function start(workers: number, scheduling: Scheduling): Promise<Controller & { cleanup(): Promise<void> }> {
  const name = workers === 1 ? '1 worker (single process)' : `${workers} workers, CLUSTER_SCHEDULING=${scheduling}`;
  const db = DB === 'mariadb' ? await createDatabase(`hotline_bench_w${workers}_${scheduling}`) : null;
  const d = await startDaemon(name, { databaseUrl: db?.url ?? 'sqlite:./bench.db', env: { CLUSTER_WORKERS: String(workers), CLUSTER_SCHEDULING: scheduling } });
  await serving(d, workers);
  return {
    ...d,
    async cleanup() {
      await db?.drop();
      fs.rmSync(d.dir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  process.stdout.write(`machine: ${machine()}\n`);
  process.stdout.write(`daemon on ${DB}; closed loop ${CALLS} calls, ${CONCURRENCY} in flight, in ${ROUNDS} rounds taking turns; warm-up ${WARMUP}\n\n`);
  const gen = new Generator();
  const daemons: Array<Controller & { cleanup(): Promise<void> }> = [];
  const results = new Map<string, { parts: LoadResult[]; cpu: number }>();
  try {
    const setups: Array<[number, Scheduling]> = [[1, 'round_robin'], [WORKERS, 'round_robin'], [WORKERS, 'os']];
    for (const [workers, scheduling] of setups) {
      const c = await start(workers, scheduling);
      daemons.push(c);
      if (WARMUP > 0) await gen.run(c.port, shortCall(), { mode: 'closed', calls: WARMUP, concurrency: CONCURRENCY });
      results.set(c.name, { parts: [], cpu: 0 });
    }
    for (let round = 0; round < ROUNDS; round++) {
      const share = Math.floor(CALLS / ROUNDS) + (round < CALLS % ROUNDS ? 1 : 0);
      for (const c of daemons) {
        const cpu0 = treeCpuSeconds(c.pid);
        const r = await gen.run(c.port, shortCall(), { mode: 'closed', calls: share, concurrency: CONCURRENCY });
        const entry = results.get(c.name);
        if (!entry) throw new Error(`no results for ${c.name}`);
        entry.cpu += treeCpuSeconds(c.pid) - cpu0;
        entry.parts.push(r);
      }
    }
  } finally {
    for (const c of daemons) {
      await c.stop();
      await c.cleanup();
    }
    await gen.stop();
  }
  const lines = ['| daemon | calls/s | setup p50 | setup p99 | failed | daemon CPU/call (all processes) |', '|---|---|---|---|---|---|'];
  const rates: number[] = [];
  for (const [name, { parts, cpu }] of results) {
    const calls = parts.reduce((n, p) => n + p.calls, 0);
    const seconds = parts.reduce((n, p) => n + p.seconds, 0);
    const setup = percentiles(parts.flatMap((p) => p.setups));
    const failed = parts.reduce((n, p) => n + p.failed, 0);
    rates.push(calls / seconds);
    lines.push(`| ${name} | ${(calls / seconds).toFixed(0)} | ${setup.p50.toFixed(1)} ms | ${setup.p99.toFixed(1)} ms | ${failed}/${calls} | ${((cpu * 1000) / Math.max(1, calls)).toFixed(2)} ms |`);
  }
  const ratio = (i: number): string => `${((rates[i] ?? NaN) / (rates[0] ?? NaN)).toFixed(2)}×`;
  process.stdout.write(`${lines.join('\n')}\n\n${WORKERS} workers / 1 worker, calls/s: round_robin ${ratio(1)}, os ${ratio(2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
