/**
 * `npm run bench:profile`: where the daemon's CPU goes under load. The daemon runs the full flow
 * under `node --cpu-prof` (BENCH_PROFILE_DB=mariadb, the default, or sqlite), takes a warm-up,
 * then a closed loop of BENCH_PROFILE_CALLS (5000) calls, BENCH_CONCURRENCY (100) in flight, or with
 * BENCH_PROFILE_RATE those calls offered at that rate (an open loop, where the setup tail is); the
 * profile is cut to that run (start-up, migrations and the warm-up left out) and ranked by self
 * and total time. The profile file is kept (BENCH_PROFILE_OUT, /tmp/hotline-daemon.cpuprofile) for
 * Chrome DevTools. Also printed: what each call costs on the wire (commands, round trips, events
 * and bytes with the daemon's `nixevent` and without it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatTop, rankFrames, type CpuProfile } from './cpu-profile';
import { cpuSeconds, createDatabase, envNumber, Generator, machine, measuredLoad, shortCall, startDaemon } from './lib';

const CALLS = envNumber('BENCH_PROFILE_CALLS', 5000);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 100);
const OUT = process.env.BENCH_PROFILE_OUT ?? '/tmp/hotline-daemon.cpuprofile';
/** Sampling interval (µs): node's default of 1,000 gives about one sample a call, too few to rank functions of a few µs. */
const INTERVAL_US = envNumber('BENCH_PROFILE_INTERVAL_US', 100);
/** How long each call talks (0: as busy as the CPU allows; 100: npm run bench's closed loop with 100 ms talks). */
const TALK_MS = envNumber('BENCH_PROFILE_TALK_MS', 0);
/** Calls/s offered (an open loop, as npm run bench's at 200); 0: the closed loop. */
const RATE = envNumber('BENCH_PROFILE_RATE', 0);

async function main(): Promise<void> {
  process.stdout.write(`machine: ${machine()}\n`);
  const kind = process.env.BENCH_PROFILE_DB === 'sqlite' ? 'sqlite' : 'mariadb';
  const load = measuredLoad(CALLS, RATE, CONCURRENCY);
  const db = kind === 'mariadb' ? await createDatabase('hotline_bench_prof') : null;
  const gen = new Generator();
  const daemon = await startDaemon(kind, { databaseUrl: db?.url ?? 'sqlite:./bench.db', nodeArgs: ['--cpu-prof', '--cpu-prof-dir=prof', `--cpu-prof-interval=${INTERVAL_US}`] });
  let window: { fromUs: number; toUs: number } | undefined;
  try {
    const plan = { ...shortCall(), talkMs: TALK_MS };
    await gen.run(daemon.port, plan, { mode: 'closed', calls: 1000, concurrency: CONCURRENCY });
    const cpu0 = cpuSeconds(daemon.pid);
    const from = process.hrtime.bigint();
    const r = await gen.run(daemon.port, plan, load.spec);
    window = { fromUs: Number(from / 1000n), toUs: Number(process.hrtime.bigint() / 1000n) };
    const cpu = cpuSeconds(daemon.pid) - cpu0;
    const n = Math.max(1, r.calls);
    const t = r.totals;
    process.stdout.write(
      [
        `full flow on ${kind}, ${CALLS} calls ${load.offered}, talks of ${TALK_MS} ms (under the profiler, so slower than npm run bench):`,
        `  ${r.callsPerSecond.toFixed(0)} calls/s, setup p50 ${r.setupMs.p50.toFixed(1)} ms p99 ${r.setupMs.p99.toFixed(1)} ms, failed ${r.failed}, daemon CPU ${((cpu * 1000) / n).toFixed(2)} ms/call`,
        `per call on the wire: ${(t.commands / n).toFixed(1)} commands in ${(t.batches / n).toFixed(1)} round trips; FreeSWITCH sends ${(t.events / n).toFixed(1)} events, ${(t.bytesOut / n / 1024).toFixed(1)} KB`,
        `  without the daemon's nixevent it would send ${(t.eventsSubscribed / n).toFixed(1)} events, ${((t.bytesOut - t.eventBytes + t.eventBytesSubscribed) / n / 1024).toFixed(1)} KB; the daemon sends ${(t.bytesIn / n).toFixed(0)} bytes`,
      ].join('\n') + '\n',
    );
  } finally {
    await gen.stop();
    await daemon.stop();
    await db?.drop();
  }
  const dir = path.join(daemon.dir, 'prof');
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  fs.copyFileSync(path.join(dir, file), OUT);
  // The measured run's window beside the profile, for other readers of it.
  fs.writeFileSync(`${OUT}.window.json`, JSON.stringify(window ?? null));
  fs.rmSync(daemon.dir, { recursive: true, force: true });
  const profile = JSON.parse(fs.readFileSync(OUT, 'utf8')) as CpuProfile;
  const { frames, totalMs } = rankFrames(profile, path.resolve(__dirname, '..', '..'), window);
  process.stdout.write(`\nprofile (${OUT}), the measured run only: ${totalMs.toFixed(0)} ms busy\n\nby self time:\n${formatTop(frames, 'selfMs', 30)}\n\nby total time:\n${formatTop(frames, 'totalMs', 45)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:profile failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
