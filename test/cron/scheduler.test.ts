// The cron scheduler on real SQLite and MariaDB: two daemons (two schedulers, two connection
// pools) on one database run each tick exactly once; a run is recorded; a job that throws is
// recorded and runs again next tick; runs of one job never overlap; a dead holder's lease expires.
//
// The tests drive the ticks themselves (runTick) and do not start() the schedulers: node-cron
// fires on the wall clock, and a minute boundary during a test would add a tick of its own that
// claims the job ("claimed") or moves its lease past the test's ticks. Only the test of node-cron
// itself starts it, and it waits for ticks instead of counting them in a fixed time.
import type { Knex } from 'knex';
import t, { type Test } from 'tap';
import { createKnex, fromDbTimestamp, toDbTimestamp } from '../../src/db/connect';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { CronScheduler, floorTick, releaseLeasesOf, type CronJob, type JobContext } from '../../src/cron/scheduler';
import { dbTargets, sleep, type TargetName } from '../helpers/db';
import { until } from '../helpers/wait';

const log = createLogger('silent');

interface Ctx {
  knex: Knex;
  /** A second connection pool to the same database, as another daemon has. */
  other: Knex;
  target: TargetName;
}

function eachDb(t: Test, name: string, fn: (t: Test, ctx: Ctx) => Promise<void>): void {
  void t.test(name, async (t) => {
    for (const target of dbTargets()) {
      await t.test(target.name, async (t) => {
        const db = await target.create();
        const other = createKnex(db.url, { poolMax: 4 });
        t.teardown(async () => {
          await other.destroy();
          await db.destroy();
        });
        await fn(t, { knex: db.knex, other, target: target.name });
      });
    }
  });
}

function scheduler(knex: Knex, node: string, jobs: CronJob[], metrics = new Metrics(), clock?: () => Date): CronScheduler {
  return new CronScheduler({ knex, node, log, metrics, jobs, clock });
}

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
const minute = (i: number): Date => new Date(T0 + i * 60_000);
/** A time in ms as the database's timestamp text. */
const dbTime = (ms: number): string => toDbTimestamp(new Date(ms));

async function runs(knex: Knex, job?: string): Promise<Array<{ job: string; node: string; tick: Date; status: string; rows_touched: number; error: string | null; ended_at: Date | null }>> {
  const rows: Array<Record<string, unknown>> = await knex<Record<string, unknown>>('cron_runs').where((q) => void (job ? q.where('job', job) : q)).orderBy('id').select('*');
  return rows.map((r) => ({
    job: String(r.job),
    node: String(r.node),
    tick: fromDbTimestamp(r.tick as string)!,
    status: String(r.status),
    rows_touched: Number(r.rows_touched),
    error: (r.error as string | null) ?? null,
    ended_at: fromDbTimestamp(r.ended_at as string | null),
  }));
}

eachDb(t, 'two daemons firing the same ticks at the same moment: each tick runs exactly once', async (t, { knex, other }) => {
  const calls: Array<{ node: string; tick: number }> = [];
  const job = (node: string): CronJob => ({
    name: 'caps',
    schedule: '* * * * *',
    scope: 'cluster',
    run: async (ctx) => {
      calls.push({ node, tick: ctx.tick.getTime() });
      await sleep(5);
      return 3;
    },
  });
  const a = scheduler(knex, 'node-a', [job('node-a')]);
  const b = scheduler(other, 'node-b', [job('node-b')]);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const TICKS = 30;
  for (let i = 0; i < TICKS; i++) {
    // Both daemons fire within a few ms of each other, with a few seconds of clock skew in the
    // fire time (both floor to the same minute).
    const [ra, rb] = await Promise.all([a.runTick('caps', new Date(minute(i).getTime() + 40)), b.runTick('caps', new Date(minute(i).getTime() + 2500))]);
    t.equal(Number(ra.ran) + Number(rb.ran), 1, `tick ${i}: exactly one daemon ran it`);
  }
  t.equal(calls.length, TICKS, `${TICKS} runs for ${TICKS} ticks`);
  t.equal(new Set(calls.map((c) => c.tick)).size, TICKS, 'each tick once');
  const recorded = await runs(knex, 'caps');
  t.equal(recorded.length, TICKS, 'cron_runs: one row per tick');
  t.ok(recorded.every((r) => r.status === 'ok' && r.rows_touched === 3 && r.ended_at !== null), 'each recorded ok, with its rows and end');
  t.comment(`runs by node: a=${calls.filter((c) => c.node === 'node-a').length}, b=${calls.filter((c) => c.node === 'node-b').length}`);
  // A tick already run is never run again, also by the daemon that ran it.
  t.same(await a.runTick('caps', minute(3)), { ran: false, reason: 'claimed' });
  t.same(await b.runTick('caps', minute(0)), { ran: false, reason: 'claimed' });
});

eachDb(t, 'a job\'s refresh hook: at start where the gate lets it run, and for a tick another daemon ran; not for its own run', async (t, { knex, other }) => {
  const refreshed: string[] = [];
  const job = (node: string): CronJob => ({
    name: 'notifications',
    schedule: '0 0 1 1 *', // not during the test: runTick drives the ticks
    scope: 'cluster',
    run: async () => 0,
    refresh: async () => void refreshed.push(node),
  });
  const a = scheduler(knex, 'node-a', [job('node-a')]);
  // A cluster worker that is not the leader (yet): its gate refuses every cluster job.
  let leader = false;
  const b = new CronScheduler({ knex: other, node: 'node-b', log, metrics: new Metrics(), jobs: [job('node-b')], gate: () => leader });
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  await a.start();
  await b.start();
  await until('node-a refreshed at its start', () => refreshed.includes('node-a'));
  t.same(refreshed, ['node-a'], 'refreshed at start (started at once, in the background); not where the gate refuses the job');
  t.match(await a.runTick('notifications', minute(0)), { ran: true, ok: true });
  t.same(refreshed, ['node-a'], 'its own run sets the gauges itself: no refresh');
  t.same(await b.runTick('notifications', minute(0)), { ran: false, reason: 'claimed' });
  t.same(refreshed, ['node-a', 'node-b'], 'a tick another daemon ran: refreshed');
  await b.refresh();
  t.same(refreshed, ['node-a', 'node-b'], 'refresh() skips what the gate refuses');
  leader = true;
  await b.refresh();
  t.same(refreshed, ['node-a', 'node-b', 'node-b'], 'made leader (Daemon.becameLeader): refreshed at once');
});

eachDb(t, 'node-cron firing every second on two daemons: no tick twice', async (t, { knex, other }) => {
  const seen: number[] = [];
  const job: CronJob = {
    name: 'tick',
    schedule: '* * * * * *',
    scope: 'cluster',
    run: async (ctx) => {
      seen.push(ctx.tick.getTime());
      await sleep(20);
    },
  };
  const a = scheduler(knex, 'node-a', [job]);
  const b = scheduler(other, 'node-b', [job]);
  await Promise.all([a.start(), b.start()]);
  // Wait for three ticks however slow the machine is, rather than count what a fixed time gives.
  const deadline = Date.now() + 60_000;
  while ((await runs(knex, 'tick')).filter((r) => r.status === 'ok').length < 3 && Date.now() < deadline) await sleep(50);
  await Promise.all([a.stop(), b.stop()]);
  const recorded = await runs(knex, 'tick');
  t.ok(recorded.length >= 3, `${recorded.length} ticks ran`);
  t.equal(new Set(recorded.map((r) => r.tick.getTime())).size, recorded.length, 'no tick recorded twice');
  t.equal(seen.length, recorded.length, 'the job ran once per recorded tick');
  t.ok(recorded.every((r) => r.tick.getMilliseconds() === 0), 'ticks are whole seconds');
});

eachDb(t, 'a job that throws is recorded and logged, runs again next tick; the other jobs go on', async (t, { knex }) => {
  let attempts = 0;
  const metrics = new Metrics();
  const flaky: CronJob = {
    name: 'flaky',
    schedule: '* * * * *',
    scope: 'cluster',
    run: async () => {
      attempts++;
      if (attempts === 1) throw Object.assign(new Error('database went away'), { code: 'ECONNRESET' });
      return 7;
    },
  };
  let steady = 0;
  const other: CronJob = { name: 'steady', schedule: '* * * * *', scope: 'cluster', run: async () => void steady++ };
  const s = scheduler(knex, 'node-a', [flaky, other], metrics);
  t.teardown(() => s.stop());
  const first = await s.runTick('flaky', minute(0));
  t.match(first, { ran: true, ok: false, error: /ECONNRESET: database went away/ });
  await s.runTick('steady', minute(0));
  const second = await s.runTick('flaky', minute(1));
  t.match(second, { ran: true, ok: true, rows: 7 });
  const recorded = await runs(knex, 'flaky');
  t.same(recorded.map((r) => [r.status, r.error, r.rows_touched]), [['error', 'ECONNRESET: database went away', 0], ['ok', null, 7]]);
  t.equal(steady, 1, 'the other job ran');
  const text = await metrics.registry.metrics();
  t.match(text, /hotline_cron_runs_total\{cron_job="flaky",result="error"\} 1/);
  t.match(text, /hotline_cron_runs_total\{cron_job="flaky",result="ok"\} 1/);
  t.match(text, /hotline_cron_run_duration_seconds_count\{cron_job="flaky"\} 2/);
  t.match(text, /hotline_cron_last_success_timestamp_seconds\{cron_job="flaky"\} \d+/);
});

eachDb(t, 'runs of one job never overlap, across daemons; a lease is renewed while a run lasts', async (t, { knex, other }) => {
  let active = 0;
  let maxActive = 0;
  let finished = 0;
  // The run lasts until the test lets it end; the schedulers' clock (which decides whether a
  // lease has expired) moves only when the test moves it: no real-time race with the lease.
  let now = T0;
  const clock = (): Date => new Date(now);
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const slow: CronJob = {
    name: 'slow',
    schedule: '* * * * *',
    scope: 'cluster',
    leaseMs: 150, // renewed every 50 ms while the run lasts
    run: async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      started();
      await released;
      active--;
      finished++;
    },
  };
  const a = scheduler(knex, 'node-a', [slow], new Metrics(), clock);
  const b = scheduler(other, 'node-b', [slow], new Metrics(), clock);
  t.teardown(async () => {
    release();
    await a.stop();
    await b.stop();
  });
  const first = a.runTick('slow', minute(0));
  await running;
  now += 300; // well past the 150 ms lease taken at T0: only a renewal keeps it
  const expiry = async (): Promise<number> => {
    const row: { expires_at: unknown } | undefined = await knex('cron_leases').where({ job: 'slow' }).first('expires_at');
    return fromDbTimestamp(row?.expires_at as string | null)?.getTime() ?? 0;
  };
  await until('the running holder renewed its lease', async () => (await expiry()) > now);
  const during = await b.runTick('slow', minute(1));
  t.same(during, { ran: false, reason: 'claimed' }, 'the next tick, on the other daemon, while the first still runs: skipped');
  t.same(await a.runTick('slow', minute(1)), { ran: false, reason: 'claimed' }, 'and on the same daemon');
  release();
  t.match(await first, { ran: true, ok: true });
  t.match(await b.runTick('slow', minute(2)), { ran: true, ok: true }, 'after it ended, the next tick runs');
  t.equal(maxActive, 1, 'never two at once');
  t.equal(finished, 2);
});

eachDb(t, 'a daemon that died holding the lease: the lease expires and another takes the next tick', async (t, { knex, other }) => {
  let ran = 0;
  const job: CronJob = { name: 'caps', schedule: '* * * * *', scope: 'cluster', leaseMs: 60_000, run: async () => void ran++ };
  const now = T0;
  // The scheduler's clock, which decides whether a lease has expired, stands at `now`.
  const b = scheduler(other, 'node-b', [job], new Metrics(), () => new Date(now));
  t.teardown(() => b.stop());
  await knex('cron_leases').insert({ job: 'caps', holder: 'node-a/123/dead', last_tick: dbTime(now - 120_000), expires_at: dbTime(now + 30_000) });
  t.same(await b.runTick('caps', new Date(now)), { ran: false, reason: 'claimed' }, 'lease not expired yet: not taken');
  await knex('cron_leases').where({ job: 'caps' }).update({ expires_at: dbTime(now - 1000) });
  t.match(await b.runTick('caps', new Date(now + 60_000)), { ran: true, ok: true }, 'expired: taken over');
  t.equal(ran, 1);
  const lease = await knex<{ job: string; holder: string | null }>('cron_leases').where({ job: 'caps' }).first();
  t.equal(lease?.holder, null, 'released after the run');
});

eachDb(t, 'a holder known to be dead (a cluster worker that exited): its leases are handed back, the next tick is taken at once', async (t, { knex, other }) => {
  let ran = 0;
  const job: CronJob = { name: 'caps', schedule: '* * * * *', scope: 'cluster', leaseMs: 300_000, run: async () => void ran++ };
  const now = T0;
  const b = scheduler(other, 'node-b', [job], new Metrics(), () => new Date(now));
  t.teardown(() => b.stop());
  // The dead worker claimed the tick a minute ago and would hold the lease for 4 more minutes.
  await knex('cron_leases').insert([
    { job: 'caps', holder: 'node-a/worker-1/123/dead', last_tick: dbTime(now - 60_000), expires_at: dbTime(now + 240_000) },
    { job: 'reports', holder: 'node-a/worker-2/456/alive', last_tick: dbTime(now - 60_000), expires_at: dbTime(now + 240_000) },
  ]);
  t.same(await b.runTick('caps', new Date(now)), { ran: false, reason: 'claimed' }, 'held: not taken');
  t.equal(await releaseLeasesOf(other, []), 0, 'nobody dead: nothing touched');
  t.equal(await releaseLeasesOf(other, ['node-a/worker-1/123/dead', 'node-a/worker-3/789/gone']), 1, 'the dead holder\'s one lease');
  const rows = await knex<{ job: string; holder: string | null; last_tick: string | null }>('cron_leases').orderBy('job').select('job', 'holder', 'last_tick');
  t.same(rows.map((r) => [r.job, r.holder]), [['caps', null], ['reports', 'node-a/worker-2/456/alive']], 'another holder\'s lease is left alone');
  t.equal(fromDbTimestamp(rows[0].last_tick)?.getTime(), now - 60_000, 'the tick the dead holder claimed stays claimed (not run twice)');
  t.same(await b.runTick('caps', new Date(now - 60_000)), { ran: false, reason: 'claimed' }, 'its own tick is not run again');
  t.match(await b.runTick('caps', new Date(now)), { ran: true, ok: true }, 'the next tick runs at once, not after the 5 min lease');
  t.equal(ran, 1);
});

eachDb(t, 'node jobs run on every daemon, once per tick each; the cluster gauge of last success', async (t, { knex, other }) => {
  const byNode: string[] = [];
  const job = (node: string): CronJob => ({ name: 'live_calls', schedule: '30 * * * * *', scope: 'node', run: async () => void byNode.push(node) });
  const ma = new Metrics();
  const mb = new Metrics();
  const a = scheduler(knex, 'node-a', [job('node-a'), { name: 'caps', schedule: '* * * * *', scope: 'cluster', run: async () => 1 }], ma);
  const b = scheduler(other, 'node-b', [job('node-b'), { name: 'caps', schedule: '* * * * *', scope: 'cluster', run: async () => 1 }], mb);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const tick = new Date(T0 + 30_000);
  await Promise.all([a.runTick('live_calls', tick), b.runTick('live_calls', tick), a.runTick('live_calls', tick)]);
  t.same(byNode.sort(), ['node-a', 'node-b'], 'each daemon ran its own, once');
  // caps runs on a; b's gauge of last success comes from cron_runs.
  t.match(await a.runTick('caps', minute(5)), { ran: true });
  t.match(await b.runTick('caps', minute(5)), { ran: false });
  const text = await mb.registry.metrics();
  t.match(text, /hotline_cron_last_success_timestamp_seconds\{cron_job="caps"\} \d{10}/, 'node b knows when caps last succeeded anywhere');
  t.match(text, /^hotline_cron_runs_total\{cron_job="caps",result="ok"\} 0$/m, 'but did not count a run of its own (its counter stays at 0)');
});

eachDb(t, 'stop() aborts a running job through its signal and waits for it', async (t, { knex }) => {
  let sawAbort = false;
  const job: CronJob = {
    name: 'long',
    schedule: '* * * * *',
    scope: 'cluster',
    run: async (ctx: JobContext) => {
      while (!ctx.signal.aborted) await sleep(10);
      sawAbort = true;
      return 1;
    },
  };
  const s = scheduler(knex, 'node-a', [job]);
  const run = s.runTick('long', minute(0));
  await sleep(50);
  await s.stop(2000);
  t.ok(sawAbort, 'the job saw the abort');
  t.match(await run, { ran: true, ok: true, rows: 1 });
  t.same(await s.runTick('long', minute(1)), { ran: false, reason: 'stopped' });
  t.equal((await runs(knex, 'long'))[0]?.status, 'ok', 'recorded before stop() returned');
});

void t.test('floorTick: minutes for 5-field schedules, seconds for 6-field ones', async (t) => {
  const at = new Date('2026-11-21T10:05:42.318Z');
  t.equal(floorTick('* * * * *', at).toISOString(), '2026-11-21T10:05:00.000Z');
  t.equal(floorTick('30 * * * * *', at).toISOString(), '2026-11-21T10:05:42.000Z');
});

void t.test('a database away at start-up and at a tick: the scheduler starts, the tick fails alone, the next one runs', async (t) => {
  const dead = createKnex('mysql://root@127.0.0.1:1/test', { poolMax: 1, acquireTimeoutMs: 300 });
  t.teardown(() => dead.destroy());
  let ran = 0;
  const jobs: CronJob[] = [{ name: 'caps', schedule: '* * * * *', scope: 'cluster', run: async () => void ran++ }];
  // start() does not touch the database (a scheduler that started is stopped at once: its own
  // ticks must not race the ones below).
  const started = scheduler(dead, 'node-a', jobs);
  await started.start();
  await started.stop();
  t.pass('start() resolved with the database away');
  const s = scheduler(dead, 'node-a', jobs);
  t.teardown(() => s.stop());
  await t.rejects(s.runTick('caps', minute(0)), 'the tick fails (node-cron\'s callback logs it)');
  t.equal(ran, 0);
  t.same(await s.runTick('caps', minute(1)).catch(() => 'failed again'), 'failed again', 'and the next one is tried');
});

eachDb(t, 'a clock that was a year ahead and was stepped back: the job runs again at the next tick', async (t, { knex }) => {
  let ran = 0;
  const job: CronJob = { name: 'caps', schedule: '* * * * *', scope: 'cluster', leaseMs: 60_000, run: async () => void ran++ };
  // The host booted with a bad real-time clock (a year ahead), NTP stepped it back a minute later.
  const YEAR = 365 * 24 * 3600_000;
  let now = T0 + YEAR;
  const s = scheduler(knex, 'node-a', [job], new Metrics(), () => new Date(now));
  t.teardown(() => s.stop());
  t.match(await s.runTick('caps', new Date(now)), { ran: true, ok: true }, 'ran at the wrong time');
  now = T0 + 60_000;
  t.match(await s.runTick('caps', new Date(now)), { ran: true, ok: true }, 'the first tick after the step back runs');
  t.match(await s.runTick('caps', new Date(now + 60_000)), { ran: true, ok: true }, 'and so do the next ones');
  t.same(await s.runTick('caps', new Date(now + 60_000)), { ran: false, reason: 'claimed' }, 'a tick still runs only once');
  t.equal(ran, 3);
  // A daemon that died holding the lease while its clock was ahead: the lease does not last a year.
  await knex('cron_leases').where({ job: 'caps' }).update({ holder: 'node-b/9/dead', last_tick: dbTime(T0 + YEAR), expires_at: dbTime(T0 + YEAR + 60_000) });
  now = T0 + 10 * 60_000;
  t.match(await s.runTick('caps', new Date(now)), { ran: true, ok: true }, 'a lease from the future is taken over');
});

eachDb(t, 'a lease row deleted by hand (to unstick a job) is created again: the job runs on', async (t, { knex, other }) => {
  let ran = 0;
  const job: CronJob = { name: 'reports', schedule: '*/15 * * * *', scope: 'cluster', run: async () => void ran++ };
  const a = scheduler(knex, 'node-a', [job]);
  const b = scheduler(other, 'node-b', [job]);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  // Both daemons have met the row (one ran the tick, the other found it claimed).
  const first = await Promise.all([a.runTick('reports', minute(0)), b.runTick('reports', minute(0))]);
  t.equal(first.filter((r) => r.ran).length, 1);
  await knex('cron_leases').where({ job: 'reports' }).delete();
  const next = await Promise.all([a.runTick('reports', minute(15)), b.runTick('reports', minute(15))]);
  t.equal(next.filter((r) => r.ran).length, 1, 'the next tick runs, once');
  t.equal(ran, 2);
});
