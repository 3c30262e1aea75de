/**
 * `npm run bench`: full-flow calls per second of the daemon against the bare-modesl floor, with
 * the same FreeSWITCH-speaking load generator (test/peer) on the same machine.
 *
 * Each controller runs as its own process; this process generates the load: CONCURRENCY calls
 * in flight, each a real outbound-socket session (connect, CHANNEL_DATA, events of ~6 KB), the
 * first phone answering at once and talking 0 ms. Figures are printed as calls/s, setup latency
 * percentiles and the ratio of the two; machines are shared and noisy, so compare ratios.
 *
 * Environment: BENCH_CALLS (default 3000), BENCH_CONCURRENCY (default 50).
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { placeCall, type CallRecord } from '../test/peer/fake-freeswitch';

const CALLS = Number(process.env.BENCH_CALLS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);

interface Result {
  name: string;
  callsPerSecond: number;
  setupP50: number;
  setupP99: number;
  failed: number;
  controllerCpuS: number;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`controller exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} never opened`);
}

function cpuSeconds(pid: number): number {
  // /proc/<pid>/stat fields 14 and 15: utime and stime in clock ticks (100 per second here).
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function drive(name: string, port: number, pid: number): Promise<Result> {
  // Warm up: JIT, connection pools, SQLite pages.
  await Promise.all(Array.from({ length: 200 }, () => one(port)));
  const cpuBefore = cpuSeconds(pid);
  const setups: number[] = [];
  let failed = 0;
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < CALLS) {
      next++;
      const t0 = Date.now();
      const record = await one(port);
      if (record.bridges.length !== 1 || record.bridges[0].result !== 'answer') failed++;
      else setups.push(record.firstBridgeAtMs! - t0);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  setups.sort((a, b) => a - b);
  return {
    name,
    callsPerSecond: CALLS / seconds,
    setupP50: setups[Math.floor(setups.length * 0.5)] ?? NaN,
    setupP99: setups[Math.floor(setups.length * 0.99)] ?? NaN,
    failed,
    controllerCpuS: cpuSeconds(pid) - cpuBefore,
  };
}

function one(port: number): Promise<CallRecord & { firstBridgeAtMs?: number }> {
  return placeCall(port, {
    caller: '13912345678',
    destination: '4001012345',
    defaultLeg: { result: 'answer', ringMs: 0, talkMs: 0 },
    playbackMs: 0,
    timeScale: 0.001,
  });
}

async function run(name: string, script: string, args: string[], env: NodeJS.ProcessEnv, port: number): Promise<Result> {
  const child = fork(script, args, { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    await waitForPort(port, child);
    return await drive(name, port, child.pid!);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-bench-'));
  const cpu = os.cpus();
  process.stdout.write(`machine: ${cpu.length} x ${cpu[0]?.model ?? '?'}, node ${process.version}; ${CALLS} calls, ${CONCURRENCY} in flight\n`);
  const basePort = await freePort();
  const baseline = await run('bare modesl (floor)', path.join(__dirname, 'baseline-modesl.js'), [String(basePort)], process.env, basePort);
  const daemonPort = await freePort();
  const daemon = await run('hotline daemon (full flow)', path.join(__dirname, '..', 'src', 'main.js'), [], {
    ...process.env,
    DATABASE_URL: `sqlite:${path.join(dir, 'bench.db')}`,
    CDR_SPOOL_DIR: path.join(dir, 'spool'),
    ESL_LISTEN_PORT: String(daemonPort),
    METRICS_PORT: String(await freePort()),
    LOG_LEVEL: 'warn',
  }, daemonPort);
  for (const r of [baseline, daemon]) {
    process.stdout.write(
      `${r.name.padEnd(28)} ${r.callsPerSecond.toFixed(0).padStart(5)} calls/s  setup p50 ${r.setupP50.toFixed(1)} ms  p99 ${r.setupP99.toFixed(1)} ms  ` +
        `controller CPU ${(r.controllerCpuS * 1000 / CALLS).toFixed(2)} ms/call  failed ${r.failed}\n`,
    );
  }
  process.stdout.write(`full flow / floor: ${(daemon.callsPerSecond / baseline.callsPerSecond).toFixed(2)} of the calls/s, ` +
    `${(daemon.controllerCpuS / baseline.controllerCpuS).toFixed(2)}x the controller CPU per call\n`);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
