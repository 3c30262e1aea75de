// Cron jobs in a daemon with two workers: the cluster jobs run in one worker (the leader), once
// per tick (one cron_runs row per job and tick), node jobs (live_calls) in every worker under its
// own name; when the leader dies, the other worker takes the cluster jobs over. Real node-cron
// ticks (notifications every 20 s, live_calls at second 30): the test waits for them.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createKnex, toDbTimestamp } from '../../src/db/connect';
import { startDaemonProcess } from '../daemon/spawn';
import { startCluster, waitFor, workerPid } from './cluster-process';

t.setTimeout(480_000);

interface Run {
  job: string;
  node: string;
  tick: string;
  status: string;
}

t.test('cluster cron jobs run once per tick, in the leader; node jobs in every worker; the lead moves when the leader dies', async (t) => {
  const c = startCluster(t, { CRON_ENABLED: 'true', ESL_LISTEN_BACKLOG: '123' });
  const { eslPort } = await c.ready;

  // The shared listening socket is the primary's, opened with ESL_LISTEN_BACKLOG (ss: Send-Q of a listener).
  const ss = spawnSync('ss', ['-H', '-l', '-t', '-n', `sport = :${eslPort}`], { encoding: 'utf8', timeout: 10_000 });
  t.equal(ss.status, 0, 'ss runs (iproute2; .ci/run installs it)');
  const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  t.same(ss.stdout.trim().split('\n').map((l) => Number(l.trim().split(/\s+/)[2])), [Math.min(123, somaxconn)], 'one listening socket, with the configured backlog');

  // The primary holds CDR_SPOOL_DIR: a single-process daemon on it is refused as before (exit 3).
  const second = startDaemonProcess({ DATABASE_URL: `sqlite:${path.join(c.dir, 'other.db')}`, CDR_SPOOL_DIR: c.spoolDir, TTS_CACHE_DIR: path.join(c.dir, 'tts2') });
  t.equal(await second.exited, 3, 'a second daemon on the spool folder exits 3');
  t.match(second.stderr(), `the CDR spool folder ${c.spoolDir} is in use by another daemon`);
  const knex = createKnex(`sqlite:${c.databaseFile}`);
  t.teardown(() => knex.destroy());
  const runs = async (): Promise<Run[]> => (await knex('cron_runs').select('job', 'node', 'tick', 'status')).map((r: Run) => ({ job: r.job, node: r.node, tick: String(r.tick), status: r.status }));

  const leaderLine = await waitFor('a leader', () => c.lines().find((l) => l.msg === 'leader assigned: cluster cron jobs and the configuration cache file'));
  const leader = Number(leaderLine.worker);
  const other = leader === 1 ? 2 : 1;
  const seen = await waitFor('two notification ticks and a live_calls tick in both workers', async () => {
    const r = await runs();
    const notifications = r.filter((x) => x.job === 'notifications');
    const liveNodes = new Set(r.filter((x) => x.job === 'live_calls').map((x) => x.node));
    // Ended too: a run's row is written as it starts, and the lease of a leader killed during a
    // run is handed back only 10 s after its death (src/cluster/dead-leases.ts).
    const ended = notifications.every((x) => x.status !== 'running');
    return new Set(notifications.map((x) => x.tick)).size >= 2 && ended && liveNodes.size === 2 ? r : undefined;
  }, 150_000);
  const cluster = seen.filter((x) => x.job !== 'live_calls');
  const perTick = new Map<string, number>();
  for (const x of cluster) perTick.set(`${x.job} ${x.tick}`, (perTick.get(`${x.job} ${x.tick}`) ?? 0) + 1);
  t.same([...perTick.values()].filter((n) => n !== 1), [], 'each cluster job ran once per tick');
  t.same([...new Set(cluster.map((x) => x.node))], [`cluster-test/worker-${leader}`], 'in the leader only');
  t.same([...new Set(seen.filter((x) => x.job === 'live_calls').map((x) => x.node))].sort(), ['cluster-test/worker-1', 'cluster-test/worker-2'], 'live_calls (this daemon\'s calls) in every worker, each under its own name');
  t.ok(fs.existsSync(`${c.spoolDir}/config-cache.json`), 'the leader wrote the configuration cache');

  // The leader dies in the middle of a run: it holds a lease (a key no job here uses, so the live
  // leader cannot end that run itself before it is killed) for 10 more minutes.
  const leaderHolder = c.lines().filter((l) => l.msg === 'worker serving calls' && l.worker === leader).pop()?.cronHolder;
  t.type(leaderHolder, 'string', 'the worker told the primary its lease holder');
  await knex('cron_leases').insert({ job: 'cluster-test-held', holder: leaderHolder, last_tick: toDbTimestamp(new Date()), expires_at: toDbTimestamp(new Date(Date.now() + 600_000)) });
  // The other worker leads from the next tick on.
  const killedAt = Date.now();
  const killedPid = workerPid(c, leader);
  process.kill(killedPid, 'SIGKILL');
  await waitFor('the lead to move', () => c.lines().find((l) => l.msg === 'leader assigned: cluster cron jobs and the configuration cache file' && l.worker === other));
  const moved = await waitFor('a notifications tick in the new leader', async () => {
    const r = await runs();
    return r.some((x) => x.job === 'notifications' && x.node === `cluster-test/worker-${other}` && new Date(x.tick).getTime() > killedAt) ? r : undefined;
  }, 90_000);
  const ticks = moved.filter((x) => x.job === 'notifications').map((x) => x.tick);
  t.equal(new Set(ticks).size, ticks.length, 'still once per tick');
  // Its lease is handed back by the live worker at once, not left to expire.
  // At least the one held here (it may also have been in a run of its own when it was killed). A
  // replacement that is ready by then may be the one asked: any worker but the dead one.
  const handedBack = await waitFor('the dead leader\'s leases handed back', () => c.lines().find((l) => l.msg === 'cron leases of dead workers handed back' && Number(l.released) >= 1));
  t.match(handedBack, { holders: [leaderHolder] }, 'the dead leader\'s');
  t.ok(handedBack.worker !== undefined && workerPid(c, Number(handedBack.worker)) !== killedPid, 'by a live worker');
  t.same(await knex('cron_leases').where({ job: 'cluster-test-held' }).select('holder', 'expires_at'), [{ holder: null, expires_at: null }], 'free for the next tick');

  c.child.kill('SIGTERM');
  t.equal(await c.exited, 0);
});
