/**
 * `npm run bench:memory`: heap per concurrent call. The generator ramps calls into the daemon at
 * BENCH_MEMORY_RATE calls/s (400) until BENCH_MEMORY_CALLS (10,000) are up at once, each talking
 * long enough that they all overlap for BENCH_MEMORY_HOLD_S (15 s), then they all end. The
 * daemon's own /metrics (nodejs_heap_size_used_bytes, process_resident_memory_bytes,
 * hotline_active_calls) is read before (after a warm-up), at the plateau and after the calls
 * ended, each time right after a full collection (bench/gc-on-signal.ts, preloaded: SIGUSR2 →
 * gc()), so the heap figures are what is alive.
 *
 * BENCH_MEMORY_DB=mariadb runs it on a throw-away MariaDB database instead of SQLite.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createDatabase, DIST, envNumber, Generator, httpGet, machine, metricValue, shortCall, startDaemon } from './lib';

const N = envNumber('BENCH_MEMORY_CALLS', 10_000);
const RATE = envNumber('BENCH_MEMORY_RATE', 400);
const HOLD_S = envNumber('BENCH_MEMORY_HOLD_S', 15);

function openFilesLimit(pid: number | 'self'): string {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = line?.replace('Max open files', '').trim().split(/\s+/) ?? ['?', '?'];
  return `${soft} (hard ${hard})`;
}

interface Sample {
  heap: number;
  rss: number;
  active: number;
}

async function sample(port: number): Promise<Sample> {
  const text = await httpGet(port, '/metrics');
  return { heap: metricValue(text, 'nodejs_heap_size_used_bytes'), rss: metricValue(text, 'process_resident_memory_bytes'), active: metricValue(text, 'hotline_active_calls') };
}

/** Heap after a full collection: SIGUSR2 to the daemon (gc-on-signal), then /metrics. */
async function live(pid: number, port: number): Promise<Sample> {
  process.kill(pid, 'SIGUSR2');
  await new Promise((r) => setTimeout(r, 1000));
  return sample(port);
}

const mb = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MB`;

async function main(): Promise<void> {
  process.stdout.write(`machine: ${machine()}\n`);
  const useMaria = process.env.BENCH_MEMORY_DB === 'mariadb';
  const db = useMaria ? await createDatabase('hotline_bench_mem') : null;
  const daemon = await startDaemon(useMaria ? 'mariadb' : 'sqlite', {
    databaseUrl: db?.url ?? 'sqlite:./bench.db',
    nodeArgs: ['--expose-gc', '-r', path.join(DIST, 'bench', 'gc-on-signal.js')],
  });
  const gen = new Generator();
  try {
    process.stdout.write(`open files: generator ${openFilesLimit(gen.pid)}, daemon ${openFilesLimit(daemon.pid)}; each holds one socket per call\n`);
    await gen.run(daemon.port, shortCall(), { mode: 'closed', calls: 500, concurrency: 50 });
    const before = await live(daemon.pid, daemon.metricsPort!);
    const rampS = N / RATE;
    const talkMs = Math.round((rampS + HOLD_S) * 1000);
    process.stdout.write(`ramping ${N} calls at ${RATE}/s (${rampS.toFixed(0)} s), each talking ${(talkMs / 1000).toFixed(0)} s\n`);
    let plateau: Sample | null = null;
    let peak = 0;
    const plan = { ...shortCall(), talkMs, timeoutMs: talkMs + 120_000 };
    const running = gen.run(daemon.port, plan, { mode: 'open', calls: N, rate: RATE }, (p) => {
      peak = Math.max(peak, p.inFlight);
    });
    const sampler = (async () => {
      const t0 = Date.now();
      // The plateau: every call started and answered, none ended yet.
      while (Date.now() - t0 < talkMs && !plateau) {
        const s = await sample(daemon.metricsPort!);
        if (s.active >= N) plateau = await live(daemon.pid, daemon.metricsPort!);
        else await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const result = await running;
    await sampler;
    // The calls' CDRs reach the database on the next flush; then nothing of them should be left.
    await new Promise((r) => setTimeout(r, 3000));
    const after = await live(daemon.pid, daemon.metricsPort!);
    const top: Sample = plateau ?? { heap: NaN, rss: NaN, active: 0 };
    const held = top.active;
    process.stdout.write(
      [
        `calls: ${result.calls} placed, ${result.ok} completed, ${result.failed} failed ${result.failed ? JSON.stringify(result.errors) : ''}`,
        `concurrent: ${held} calls held by the daemon (hotline_active_calls), ${peak} sockets open in the generator at the peak`,
        `heap used after a full GC: before ${mb(before.heap)}, at the plateau ${mb(top.heap)}, after the calls ended ${mb(after.heap)}`,
        `heap per concurrent call: ${((top.heap - before.heap) / Math.max(1, held) / 1024).toFixed(1)} KB; after the calls ended: ${after.heap > before.heap ? `${mb(after.heap - before.heap)} more` : `${mb(before.heap - after.heap)} less`} than before`,
        `resident set: before ${mb(before.rss)}, plateau ${mb(top.rss)}, after ${mb(after.rss)}`,
        `setup latency during the ramp: p50 ${result.setupMs.p50.toFixed(1)} ms, p99 ${result.setupMs.p99.toFixed(1)} ms`,
      ].join('\n') + '\n',
    );
  } finally {
    await gen.stop();
    await daemon.stop();
    await db?.drop();
    fs.rmSync(daemon.dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:memory failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
