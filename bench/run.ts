/**
 * `npm run bench`: the protocol's ceiling, bare modesl and the full daemon, measured in one run
 * with one FreeSWITCH-speaking load generator (src/warmup, run by bench/freeswitch/main.ts), each controller in its own
 * process, and printed as one table with ratios taken from this run only (the machine is shared
 * and noisy: compare ratios, not absolute numbers).
 *
 * Every controller is started and warmed up first; then each run is done in BENCH_ROUNDS (3)
 * rounds that take turns between the controllers, so that a burst of load from elsewhere on the
 * machine falls on all of them rather than on one: a closed loop of calls that talk 0 ms
 * (BENCH_CALLS calls in all, BENCH_CONCURRENCY in flight: every controller as busy as its CPU
 * allows), the same closed loop with calls that talk BENCH_TALK_MS (the shape of the issue's own
 * measurement, whose ceiling figures our generator reproduces with 100 ms talks), an open loop
 * (BENCH_OPEN_CALLS calls offered at BENCH_RATE calls/s) and, for the ceiling and the full flow,
 * an idle run (BENCH_IDLE_CALLS calls one at a time). Setup latency is the generator's connect →
 * the first `bridge` it starts (one written while a prompt plays waits behind it, as FreeSWITCH
 * runs an event-locked prompt): the silence a caller hears. For each closed loop it also says what
 * held it back: the generator's main thread, the controller's, or the machine's CPUs.
 *
 * Environment: BENCH_CALLS (3000), BENCH_CONCURRENCY (100), BENCH_TALK_MS (100), BENCH_RATE
 * (200), BENCH_OPEN_CALLS (2000), BENCH_IDLE_CALLS (300), BENCH_WARMUP (3000), BENCH_ROUNDS (3), BENCH_ONLY (comma-separated row keys:
 * ceiling,serial,modesl,sqlite,mariadb, and the rows run only when named: sqlite-capped,
 * mariadb-capped, the demo tenant with a prepaid balance and day/month caps it never reaches, so
 * every call goes through the admission statement), BENCH_MYSQL_URL (mysql://root@127.0.0.1:3306),
 * BENCH_JSON (write every number to this file).
 */
import fs from 'node:fs';
import { capDemoTenant, cpuSeconds, createDatabase, envNumber, FAST_RELOAD, Generator, machine, machineTicks, mainThreadSeconds, shortCall, startDaemon, startScript, type Controller } from './lib';
import { mergePhases, percentiles, phaseSplit, type LoadResult, type LoadSpec } from '../src/warmup/load';

const CALLS = envNumber('BENCH_CALLS', 3000);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 100);
const TALK_MS = envNumber('BENCH_TALK_MS', 100);
const RATE = envNumber('BENCH_RATE', 200);
const OPEN_CALLS = envNumber('BENCH_OPEN_CALLS', 2000);
const IDLE_CALLS = envNumber('BENCH_IDLE_CALLS', 300);
/**
 * Calls each controller takes before it is measured. The daemon is a long-running process, and
 * V8 optimises a call's code only after it has run many times: after 500 calls its CPU a call at
 * 0 ms talks was 0.43-0.46 ms and the first measured round 0.57-0.76× the ceiling's calls/s, after
 * 3,000 0.27-0.35 ms and 0.74-0.99× in its rounds (README, release 21). Every controller gets
 * the same warm-up; BENCH_WARMUP=500 measures a daemon in the first seconds after its start.
 */
const WARMUP = envNumber('BENCH_WARMUP', 3000);
const ROUNDS = Math.max(1, Math.floor(envNumber('BENCH_ROUNDS', 3)));
/**
 * A main thread this busy (of one core), or the machine's CPUs, over a run held it back: with a
 * few threads handing work to each other some time is always left idle, so neither reaches 100 %
 * (the ceiling's generator at 86-94 % of a core, the daemon's 0 ms loops with the machine at
 * 87-91 % and no main thread above 77 %: bench/PROFILE.md, release 40).
 */
const BUSY = 0.85;

interface Measured {
  key: string;
  controller: string;
  /** closed: calls that talk 0 ms; talk: calls that talk TALK_MS; both at CONCURRENCY in flight. */
  run: 'closed' | 'talk' | 'open' | 'idle';
  result: LoadResult;
  controllerCpuMsPerCall: number;
  /**
   * Who was busy over the run (what held it back): CPU seconds of the controller's and the
   * generator's main threads, the wall seconds they were read over, and the machine's busy and
   * total clock ticks over the same time.
   */
  busy: { controllerMainS: number; generatorMainS: number; wallS: number; machineBusyTicks: number; machineTotalTicks: number };
}

interface Row {
  key: string;
  name: string;
  start(): Promise<Controller & { cleanup?: () => Promise<void> }>;
  open: boolean;
  idle: boolean;
  /** Run only when BENCH_ONLY names it. */
  optional?: boolean;
}

/** The daemon on a fresh SQLite file in its folder (removed after); `capped`: with CAPS. */
async function daemonOnSqlite(capped: boolean): Promise<Controller & { cleanup: () => Promise<void> }> {
  const d = await startDaemon(capped ? 'sqlite-capped' : 'sqlite', { databaseUrl: 'sqlite:./bench.db', env: capped ? FAST_RELOAD : {} });
  const cleanup = (): Promise<void> => Promise.resolve(fs.rmSync(d.dir, { recursive: true, force: true }));
  if (capped) await capDemoTenant({ filename: `${d.dir}/bench.db` }).catch(async (err: unknown) => { await d.stop(); await cleanup(); throw err; });
  return { ...d, cleanup };
}

/** The daemon on a throw-away MariaDB database (dropped after); `capped`: with CAPS. */
async function daemonOnMariadb(capped: boolean): Promise<Controller & { cleanup: () => Promise<void> }> {
  const db = await createDatabase(capped ? 'hotline_bench_capped' : 'hotline_bench');
  const d = await startDaemon(capped ? 'mariadb-capped' : 'mariadb', { databaseUrl: db.url, env: capped ? FAST_RELOAD : {} });
  const cleanup = async (): Promise<void> => {
    await db.drop();
    fs.rmSync(d.dir, { recursive: true, force: true });
  };
  if (capped) await capDemoTenant(db.url).catch(async (err: unknown) => { await d.stop(); await cleanup(); throw err; });
  return { ...d, cleanup };
}

const rows: Row[] = [
  { key: 'ceiling', name: 'no-library ceiling (pipelined)', start: () => startScript('ceiling', 'ceiling.js', ['pipelined']), open: true, idle: true },
  { key: 'serial', name: 'no-library, one command at a time', start: () => startScript('serial', 'ceiling.js', ['serial']), open: false, idle: false },
  { key: 'modesl', name: 'bare modesl 1.2.1 + TCP_NODELAY', start: () => startScript('modesl', 'baseline-modesl.js', []), open: true, idle: false },
  { key: 'sqlite', name: 'daemon, full flow, SQLite', start: () => daemonOnSqlite(false), open: true, idle: true },
  { key: 'mariadb', name: 'daemon, full flow, MariaDB', start: () => daemonOnMariadb(false), open: true, idle: true },
  { key: 'sqlite-capped', name: 'daemon, full flow, SQLite, capped prepaid tenant', start: () => daemonOnSqlite(true), open: true, idle: false, optional: true },
  { key: 'mariadb-capped', name: 'daemon, full flow, MariaDB, capped prepaid tenant', start: () => daemonOnMariadb(true), open: true, idle: false, optional: true },
];

async function measure(gen: Generator, c: Controller, key: string, run: Measured['run'], spec: LoadSpec): Promise<Measured> {
  const cpu0 = cpuSeconds(c.pid);
  const [main0, gen0, wall0, machine0] = [mainThreadSeconds(c.pid), mainThreadSeconds(gen.pid), performance.now(), machineTicks()];
  const result = await gen.run(c.port, run === 'talk' ? { ...shortCall(), talkMs: TALK_MS } : shortCall(), spec);
  const cpu = cpuSeconds(c.pid) - cpu0;
  const machine1 = machineTicks();
  const busy = {
    controllerMainS: mainThreadSeconds(c.pid) - main0,
    generatorMainS: mainThreadSeconds(gen.pid) - gen0,
    wallS: (performance.now() - wall0) / 1000,
    machineBusyTicks: machine1.busy - machine0.busy,
    machineTotalTicks: machine1.total - machine0.total,
  };
  return { key, controller: c.name, run, result, controllerCpuMsPerCall: (cpu * 1000) / Math.max(1, result.calls), busy };
}

/** One controller's rounds of one run as if they were one run: calls/s over the rounds' time. */
function merge(parts: Measured[]): Measured {
  const first = parts[0];
  const setups = parts.flatMap((p) => p.result.setups);
  const calls = parts.reduce((n, p) => n + p.result.calls, 0);
  const seconds = parts.reduce((n, p) => n + p.result.seconds, 0);
  const errors: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.result.errors)) errors[k] = (errors[k] ?? 0) + v;
  const totals = { ...first.result.totals };
  for (const p of parts.slice(1)) for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += p.result.totals[k];
  const result: LoadResult = {
    ...first.result,
    calls,
    ok: parts.reduce((n, p) => n + p.result.ok, 0),
    failed: parts.reduce((n, p) => n + p.result.failed, 0),
    errors,
    handshakes: parts.reduce((n, p) => n + p.result.handshakes, 0),
    seconds,
    callsPerSecond: calls / seconds,
    setupMs: percentiles(setups),
    setups,
    phases: mergePhases(parts.map((p) => p.result.phases)),
    generatorCpuMs: parts.reduce((n, p) => n + p.result.generatorCpuMs, 0),
    totals,
    maxInFlight: Math.max(...parts.map((p) => p.result.maxInFlight)),
  };
  const cpuMs = parts.reduce((n, p) => n + p.controllerCpuMsPerCall * p.result.calls, 0);
  const busy = { controllerMainS: 0, generatorMainS: 0, wallS: 0, machineBusyTicks: 0, machineTotalTicks: 0 };
  for (const p of parts) for (const k of Object.keys(busy) as Array<keyof typeof busy>) busy[k] += p.busy[k];
  return { ...first, result, controllerCpuMsPerCall: cpuMs / Math.max(1, calls), busy };
}

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '—';
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : '—';
}

/**
 * The calls/s ratios of the closed loop round by round: the rounds take turns, so each compares
 * the same minutes of the machine, and their spread shows how much a ratio of this run can be
 * trusted (on the shared VM the same build against itself moved 11 %: bench/PROFILE.md).
 */
function roundRatios(rounds: Map<string, Measured[]>, title: string): string {
  const out = [`Calls/s ratio in each round (${title}):`, '', '| full flow | vs | each round | lowest-highest |', '|---|---|---|---|'];
  for (const full of ['sqlite', 'mariadb']) {
    for (const base of ['modesl', 'ceiling']) {
      const f = rounds.get(full);
      const b = rounds.get(base);
      if (!f || !b) continue;
      const each = f.map((m, i) => (b[i] ? m.result.callsPerSecond / b[i].result.callsPerSecond : NaN)).filter((x) => Number.isFinite(x));
      if (each.length === 0) continue;
      out.push(`| ${full} | ${base} | ${each.map((x) => `${x.toFixed(2)}×`).join(' ')} | ${Math.min(...each).toFixed(2)}-${Math.max(...each).toFixed(2)}× |`);
    }
  }
  return out.join('\n');
}

function table(all: Measured[], names: Map<string, string>): string {
  const lines = [
    '| controller | run | calls/s | setup p50 | setup p99 | failed | controller CPU/call | generator CPU/call |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const m of all) {
    const r = m.result;
    const label = runLabel(m.run);
    lines.push(
      `| ${names.get(m.key)} | ${label} | ${m.run === 'idle' ? '—' : fmt(r.callsPerSecond, 0)} | ${fmt(r.setupMs.p50)} ms | ${fmt(r.setupMs.p99)} ms | ${r.failed}/${r.calls} | ${fmt(m.controllerCpuMsPerCall, 2)} ms | ${fmt(r.generatorCpuMs / Math.max(1, r.calls), 2)} ms |`,
    );
  }
  return lines.join('\n');
}

function runLabel(run: Measured['run']): string {
  switch (run) {
    case 'closed':
      return `closed, ${CONCURRENCY} in flight, 0 ms talks`;
    case 'talk':
      return `closed, ${CONCURRENCY} in flight, ${TALK_MS} ms talks`;
    case 'open':
      return `open, ${RATE}/s offered`;
    case 'idle':
      return 'idle, one at a time';
    default: {
      const _never: never = run;
      return _never;
    }
  }
}

function ratios(all: Measured[]): string {
  const get = (key: string, run: Measured['run']): Measured | undefined => all.find((m) => m.key === key && m.run === run);
  const out: string[] = [
    `| full flow | vs | calls/s (${TALK_MS} ms talks) | setup p50 (${TALK_MS} ms talks) | calls/s (0 ms talks) | setup p50 (0 ms talks) | setup p99 (open loop) | CPU/call (0 ms talks) |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  const pairs: Array<[string, string]> = [];
  for (const full of ['sqlite', 'mariadb']) for (const base of ['modesl', 'ceiling']) pairs.push([full, base]);
  pairs.push(['sqlite-capped', 'sqlite'], ['mariadb-capped', 'mariadb']);
  for (const [full, base] of pairs) {
    {
      const f = get(full, 'closed');
      const b = get(base, 'closed');
      if (!f || !b) continue;
      const ft = get(full, 'talk');
      const bt = get(base, 'talk');
      out.push(
        `| ${full} | ${base} | ${ratio(ft?.result.callsPerSecond, bt?.result.callsPerSecond)} | ${ratio(ft?.result.setupMs.p50, bt?.result.setupMs.p50)} | ${ratio(f.result.callsPerSecond, b.result.callsPerSecond)} | ${ratio(f.result.setupMs.p50, b.result.setupMs.p50)} | ${ratio(get(full, 'open')?.result.setupMs.p99, get(base, 'open')?.result.setupMs.p99)} | ${ratio(f.controllerCpuMsPerCall, b.controllerCpuMsPerCall)} |`,
      );
    }
  }
  return out.join('\n');
}

/**
 * Where the calls' time went in the closed loops, medians in ms from the generator's connect: the
 * controller's `connect` (accepted), its first command after the channel data (planned), the first
 * bridge (the setup), the socket closed (the call's life), and each call's life after its bridge.
 * With every call back in the loop at its end, life is about concurrency / calls/s (Little's law),
 * so a controller's setup at saturation is that less what follows its bridge.
 */
function phases(all: Measured[], names: Map<string, string>): string {
  const out = [
    '| controller | run | `connect` arrived | first command after the channel data | first bridge (setup) | socket closed (life) | after the bridge | concurrency / calls/s |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const m of all.filter((x) => x.run === 'closed' || x.run === 'talk')) {
    const p = phaseSplit(m.result.setups, m.result.phases);
    out.push(
      `| ${names.get(m.key)} | ${m.run === 'closed' ? '0 ms talks' : `${TALK_MS} ms talks`} | ${fmt(p.handshakeP50)} | ${fmt(p.firstCommandP50)} | ${fmt(p.setupP50)} | ${fmt(p.lifeP50)} | ${fmt(p.afterBridgeP50)} | ${fmt((CONCURRENCY / m.result.callsPerSecond) * 1000)} |`,
    );
  }
  return out.join('\n');
}

/**
 * What held each closed loop back. The main thread of a Node process runs its JavaScript and
 * cannot pass 100 % of a core: a loop whose generator's is near it measured the load generator's
 * limit, not the controller's, and its calls/s ratios say less about the controller
 * (bench/PROFILE.md, release 40: so was the ceiling's on a fast VM). Short of that, a machine
 * whose CPUs are near full (every process and thread: V8's collector, libuv's pool, the kernel's
 * network work, a database) is the limit; below both, the round trips are.
 */
function bounds(all: Measured[], names: Map<string, string>): string {
  const out = ['| controller | run | controller main thread (of a core) | generator main thread | machine CPUs busy | held back by |', '|---|---|---|---|---|---|'];
  for (const m of all.filter((x) => x.run === 'closed' || x.run === 'talk')) {
    const { controllerMainS, generatorMainS, wallS, machineBusyTicks, machineTotalTicks } = m.busy;
    const [c, g, busy] = [controllerMainS / wallS, generatorMainS / wallS, machineBusyTicks / Math.max(1, machineTotalTicks)];
    const bound = g >= BUSY ? 'the generator' : c >= BUSY ? 'the controller' : busy >= BUSY ? 'the machine\'s CPUs' : 'neither (round trips)';
    out.push(`| ${names.get(m.key)} | ${m.run === 'closed' ? '0 ms talks' : `${TALK_MS} ms talks`} | ${fmt(c * 100, 0)} % | ${fmt(g * 100, 0)} % | ${fmt(busy * 100, 0)} % | ${bound} |`);
  }
  return out.join('\n');
}

function wire(all: Measured[], names: Map<string, string>): string {
  const out = ['| controller | commands/call | round trips/call | events/call | KB to controller/call | events/call without nixevent | KB without nixevent |', '|---|---|---|---|---|---|---|'];
  for (const m of all.filter((x) => x.run === 'closed')) {
    const t = m.result.totals;
    const n = Math.max(1, m.result.calls);
    out.push(
      `| ${names.get(m.key)} | ${fmt(t.commands / n)} | ${fmt(t.batches / n)} | ${fmt(t.events / n)} | ${fmt(t.bytesOut / n / 1024)} | ${fmt(t.eventsSubscribed / n)} | ${fmt((t.bytesOut - t.eventBytes + t.eventBytesSubscribed) / n / 1024)} |`,
    );
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
  process.stdout.write(`machine: ${machine()}\n`);
  process.stdout.write(
    `closed loop ${CALLS} calls, ${CONCURRENCY} in flight, calls talking ${TALK_MS} ms and 0 ms; open loop ${OPEN_CALLS} calls at ${RATE}/s; idle ${IDLE_CALLS} calls; warm-up ${WARMUP}; in ${ROUNDS} rounds taking turns\n\n`,
  );
  const gen = new Generator();
  const all: Measured[] = [];
  const names = new Map(rows.map((r) => [r.key, r.name]));
  const running: Array<{ row: Row; c: Controller & { cleanup?: () => Promise<void> } }> = [];
  const roundsOf = new Map<Measured['run'], Map<string, Measured[]>>();
  try {
    for (const row of rows) {
      if (only ? !only.has(row.key) : row.optional) continue;
      const c = await row.start();
      running.push({ row, c });
      if (WARMUP > 0) await gen.run(c.port, shortCall(), { mode: 'closed', calls: WARMUP, concurrency: CONCURRENCY });
    }
    const runs: Array<[Measured['run'], (r: Row) => boolean, (share: number) => LoadSpec, number]> = [
      ['closed', () => true, (n) => ({ mode: 'closed', calls: n, concurrency: CONCURRENCY }), CALLS],
      ['talk', () => true, (n) => ({ mode: 'closed', calls: n, concurrency: CONCURRENCY }), CALLS],
      ['open', (r) => r.open, (n) => ({ mode: 'open', calls: n, rate: RATE }), OPEN_CALLS],
      ['idle', (r) => r.idle, (n) => ({ mode: 'closed', calls: n, concurrency: 1 }), IDLE_CALLS],
    ];
    for (const [run, applies, spec, total] of runs) {
      const parts = new Map<string, Measured[]>();
      roundsOf.set(run, parts);
      for (let round = 0; round < ROUNDS; round++) {
        const share = Math.floor(total / ROUNDS) + (round < total % ROUNDS ? 1 : 0);
        for (const { row, c } of running) {
          if (!applies(row) || share === 0) continue;
          const m = await measure(gen, c, row.key, run, spec(share));
          parts.set(row.key, [...(parts.get(row.key) ?? []), m]);
        }
      }
      for (const { row } of running) {
        const p = parts.get(row.key);
        if (!p) continue;
        const m = merge(p);
        all.push(m);
        const r = m.result;
        process.stdout.write(
          `${row.name} / ${run}: ${fmt(r.callsPerSecond, 0)} calls/s, setup p50 ${fmt(r.setupMs.p50)} ms p99 ${fmt(r.setupMs.p99)} ms, failed ${r.failed}${r.failed ? ` ${JSON.stringify(r.errors)}` : ''}` +
            `${r.totals.lingerExpired ? `, ${r.totals.lingerExpired} sockets left open until the linger time ran out` : ''}\n`,
        );
      }
    }
  } finally {
    for (const { c } of running) {
      await c.stop();
      await c.cleanup?.();
    }
    await gen.stop();
  }
  // Rows in the table's order: controller by controller, closed, open, idle.
  const order: Array<Measured['run']> = ['talk', 'closed', 'open', 'idle'];
  all.sort((a, b) => rows.findIndex((r) => r.key === a.key) - rows.findIndex((r) => r.key === b.key) || order.indexOf(a.run) - order.indexOf(b.run));
  const each = [
    roundRatios(roundsOf.get('talk') ?? new Map<string, Measured[]>(), `closed loop, ${TALK_MS} ms talks`),
    roundRatios(roundsOf.get('closed') ?? new Map<string, Measured[]>(), 'closed loop, 0 ms talks'),
  ].join('\n\n');
  process.stdout.write(`\n${table(all, names)}\n\nRatios (same run):\n\n${ratios(all)}\n\n${each}\n\nWhere a call's time went (closed loops, medians in ms from the generator's connect):\n\n${phases(all, names)}\n\nWhat held the closed loops back (a main thread at 85 % of a core or more, else the machine's CPUs at 85 % or more):\n\n${bounds(all, names)}\n\nOn the wire, per call (closed loop, 0 ms talks):\n\n${wire(all, names)}\n`);
  if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify({ machine: machine(), all }, null, 2));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
