/**
 * `npm run bench:memory`: heap per concurrent call. The generator ramps calls into the daemon at
 * BENCH_MEMORY_RATE calls/s (400) until BENCH_MEMORY_CALLS (10,000) are up at once, each talking
 * long enough that they all overlap for BENCH_MEMORY_HOLD_S (15 s), then they all end. The
 * daemon's own /metrics (nodejs_heap_size_used_bytes, process_resident_memory_bytes,
 * hotline_active_calls) is sampled every second: before (after a warm-up), at the plateau and
 * after the calls ended. The heap figure is the lowest sample of each phase: right after a
 * collection, the heap in use is what is alive.
 *
 * BENCH_MEMORY_DB=mariadb runs it on a throw-away MariaDB database instead of SQLite.
 */
import fs from 'node:fs';
import { createDatabase, envNumber, Generator, httpGet, machine, metricValue, shortCall, startDaemon } from './lib';

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

async function lowest(port: number, seconds: number): Promise<Sample> {
  const all: Sample[] = [];
  for (let i = 0; i < seconds; i++) {
    all.push(await sample(port));
    await new Promise((r) => setTimeout(r, 1000));
  }
  return { heap: Math.min(...all.map((s) => s.heap)), rss: Math.min(...all.map((s) => s.rss)), active: Math.max(...all.map((s) => s.active)) };
}

const mb = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MB`;

async function main(): Promise<void> {
  process.stdout.write(`machine: ${machine()}\n`);
  const useMaria = process.env.BENCH_MEMORY_DB === 'mariadb';
  const db = useMaria ? await createDatabase('hotline_bench_mem') : null;
  const daemon = await startDaemon(useMaria ? 'mariadb' : 'sqlite', { databaseUrl: db?.url ?? 'sqlite:./bench.db' });
  const gen = new Generator();
  try {
    process.stdout.write(`open files: generator ${openFilesLimit(gen.pid)}, daemon ${openFilesLimit(daemon.pid)}; each holds one socket per call\n`);
    await gen.run(daemon.port, shortCall(), { mode: 'closed', calls: 500, concurrency: 50 });
    await new Promise((r) => setTimeout(r, 2000));
    const before = await lowest(daemon.metricsPort!, 5);
    const rampS = N / RATE;
    const talkMs = Math.round((rampS + HOLD_S) * 1000);
    process.stdout.write(`ramping ${N} calls at ${RATE}/s (${rampS.toFixed(0)} s), each talking ${(talkMs / 1000).toFixed(0)} s\n`);
    const plateau: Sample[] = [];
    let peak = 0;
    const plan = { ...shortCall(), talkMs, timeoutMs: talkMs + 120_000 };
    const running = gen.run(daemon.port, plan, { mode: 'open', calls: N, rate: RATE }, (p) => {
      peak = Math.max(peak, p.inFlight);
    });
    const sampler = (async () => {
      const t0 = Date.now();
      // The plateau: every call started and answered, none ended yet.
      while (Date.now() - t0 < talkMs) {
        const s = await sample(daemon.metricsPort!);
        if (s.active >= N) plateau.push(s);
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    const result = await running;
    await sampler;
    await new Promise((r) => setTimeout(r, 5000));
    const after = await lowest(daemon.metricsPort!, 10);
    const held = plateau.length > 0 ? Math.max(...plateau.map((s) => s.active)) : 0;
    const top = plateau.length > 0 ? { heap: Math.min(...plateau.map((s) => s.heap)), rss: Math.max(...plateau.map((s) => s.rss)) } : { heap: NaN, rss: NaN };
    process.stdout.write(
      [
        `calls: ${result.calls} placed, ${result.ok} completed, ${result.failed} failed ${result.failed ? JSON.stringify(result.errors) : ''}`,
        `concurrent: ${held} calls held by the daemon (hotline_active_calls), ${peak} sockets open in the generator at the peak; plateau samples: ${plateau.length}`,
        `heap used: before ${mb(before.heap)}, at the plateau ${mb(top.heap)} (lowest sample), after ${mb(after.heap)}`,
        `heap per concurrent call: ${((top.heap - before.heap) / Math.max(1, held) / 1024).toFixed(1)} KB; after the calls ended: ${((after.heap - before.heap) / 2 ** 20).toFixed(1)} MB above before`,
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
