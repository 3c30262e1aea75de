// A daemon with CLUSTER_WORKERS=2 as in production: the real entry point, real TCP, the FreeSWITCH
// stand-in, SQLite. Calls reach both workers and each gets one CDR; /metrics shows one daemon;
// `kill -9` of a worker in the middle of calls: the worker comes back, replays the CDRs its dead
// predecessor had spooled, writes those of the calls cut with it from its call journal, and
// /metrics counts the restart; SIGTERM drains every worker (calls cut
// after DRAIN_TIMEOUT_S, CDRs flushed, exit 0). Every wait is for a condition, never a fixed time.
import t from 'tap';
import { createKnex } from '../../src/db/connect';
import { placeCall, type CallRecord } from '../peer/fake-freeswitch';
import { listeningDescriptors } from '../helpers/listening';
import { STOPPED_REASON } from '../../src/calls/journaled-call';
import { getText, holdsListeningSocket, journaledUuids, sample, spooledUuids, startCluster, waitFor, workerPid } from './cluster-process';

// Two ts-node workers compile the daemon on a shared, loaded machine: start-up alone can take a minute.
t.setTimeout(480_000);

const DEMO = '4001012345';
let callerSeq = 10_000_000;
const caller = (): string => `139${String(callerSeq++).padStart(8, '0')}`;

/** A short answered call, or a long one that talks until cut. */
function call(port: number, talkMs: number): Promise<CallRecord> {
  return placeCall(port, { caller: caller(), destination: DEMO, legs: { '13800000001': { result: 'answer', talkMs } } });
}

async function inBatches(n: number, parallel: number, one: () => Promise<CallRecord>): Promise<CallRecord[]> {
  const out: CallRecord[] = [];
  for (let i = 0; i < n; i += parallel) out.push(...(await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, one))));
  return out;
}

t.test('two workers: calls, CDRs, one daemon in /metrics, kill -9 of a worker, SIGTERM drain', async (t) => {
  // CDRs stay in the workers' spools until a worker starts (replay) or stops (final flush): what
  // reaches the database in between was replayed by a replacement worker.
  // DRAIN_TIMEOUT_S leaves the drain long enough to read /healthz and /metrics while it goes on.
  // Each worker warms up before it serves (src/warmup/warm-up.ts; one after the other: the primary
  // forks the second when the first is ready), on a port it binds itself. Without that (Node's
  // cluster shares a worker's port 0 through the primary) the real calls below went missing.
  // None of the synthetic calls may reach /metrics or a spool (the counts below). The bound is far
  // above what 300 calls take even on a loaded machine: the counts are checked exactly.
  const c = startCluster(t, { CDR_FLUSH_INTERVAL_MS: '3600000', DRAIN_TIMEOUT_S: '20', ESL_LINGER_S: '10', WARM_UP_CALLS: '300', WARM_UP_MAX_S: '120' });
  const { eslPort, metricsPort } = await c.ready;
  // A worker's lines reach stdout up to LOG_FLUSH_MS after they are logged (src/log.ts), so the
  // second worker's warm-up result can come after the primary's "all workers serving calls":
  // waited for. Any result line counts (done, cut short, calls failed, could not run), so a warm-up
  // that went wrong fails below with its line in the diff.
  const warmUpResults = (): Array<Record<string, unknown>> => c.lines().filter((l) => typeof l.msg === 'string' && /^warm-up(:| could not run)/.test(l.msg) && !/^warm-up: (running|removed)/.test(l.msg));
  const warmUps = await waitFor('both workers\' warm-up results', () => (warmUpResults().length >= 2 ? warmUpResults() : undefined), 10_000);
  t.equal(warmUps.length, 2, 'one warm-up a worker');
  t.match(warmUps, [{ msg: /^warm-up: done/, calls: 300, failed: 0 }, { msg: /^warm-up: done/, calls: 300, failed: 0 }], 'both workers warmed up, every synthetic call completed');
  const knex = createKnex(`sqlite:${c.databaseFile}`);
  t.teardown(() => knex.destroy());
  const cdrUuids = async (): Promise<string[]> => (await knex('cdrs').select('call_uuid')).map((r: { call_uuid: string }) => r.call_uuid);

  // --- Round-robin (the default): only the primary holds the listening socket and hands connections out.
  t.equal(holdsListeningSocket(c.child.pid ?? 0, eslPort), true, 'the primary listens');
  t.same([1, 2].map((slot) => holdsListeningSocket(workerPid(c, slot), eslPort)), [false, false], 'the workers do not');
  t.equal(listeningDescriptors(c.child.pid ?? 0, eslPort), 1, 'node:cluster\'s primary accepts on its one handle: no copies to make');

  // --- Calls reach both workers; each has its CDR spooled in its worker's folder.
  const first = await inBatches(40, 8, () => call(eslPort, 10));
  t.ok(first.every((r) => r.bridges.length === 1 && r.bridges[0].result === 'answer'), 'every call was served and bridged');
  const uuids = first.map((r) => r.uuid).sort();
  await waitFor('the 40 CDRs in the spools', () => ([...spooledUuids(c.spoolDir, 1), ...spooledUuids(c.spoolDir, 2)].length === 40 ? true : undefined));
  const w1 = spooledUuids(c.spoolDir, 1);
  const w2 = spooledUuids(c.spoolDir, 2);
  t.ok(w1.length > 0 && w2.length > 0, `both workers served calls (worker 1: ${w1.length}, worker 2: ${w2.length})`);
  t.same([...w1, ...w2].sort(), uuids, 'one CDR per call, in one of the two spools');
  t.same(await cdrUuids(), [], 'none written yet (CDR_FLUSH_INTERVAL_MS is an hour)');

  // --- /metrics: one daemon.
  const text = await getText(metricsPort, '/metrics');
  t.equal(sample(text, 'hotline_calls_started_total{number_kind="hotline"}'), 40, 'calls started: the workers\' counts added');
  t.equal(sample(text, 'hotline_calls_ended_total{outcome="answered",number_kind="hotline"}'), 40);
  t.equal(sample(text, 'hotline_cdr_spool_depth'), 40, 'spool depth: both spools');
  t.equal(sample(text, 'hotline_database_reachable'), 1, 'a shared state is not added up');
  t.equal(sample(text, 'hotline_cluster_workers'), 2);
  t.equal(sample(text, 'hotline_cluster_workers_alive'), 2);
  t.equal(sample(text, 'hotline_cluster_worker_restarts_total'), 0);
  t.equal(sample(text, 'hotline_cluster_workers_not_answering'), 0, 'every worker answered');
  const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.slice(0, l.lastIndexOf(' ')));
  t.equal(new Set(series).size, series.length, 'no series twice');
  t.equal(text.match(/^# TYPE hotline_calls_started_total /gm)?.length, 1, 'each family once');
  t.notMatch(text, /\b(worker|pid|slot)="/, 'no label names a worker');
  const health = JSON.parse(await getText(metricsPort, '/healthz')) as Record<string, unknown>;
  t.match(health, { ok: true, status: 'ok', cluster: { workers: 2, alive: 2 }, detail: { activeCalls: 0, cdrSpoolDepth: 40 } });

  // --- kill -9 of worker 1 with calls up on both workers.
  const killedPid = workerPid(c, 1);
  const spooledByKilled = spooledUuids(c.spoolDir, 1);
  const spooledBySurvivor = spooledUuids(c.spoolDir, 2);
  const long = Array.from({ length: 6 }, () => call(eslPort, 600_000));
  await waitFor('6 calls up', async () => {
    const h = JSON.parse(await getText(metricsPort, '/healthz')) as { detail: { activeCalls: number } };
    return h.detail.activeCalls === 6 ? true : undefined;
  });
  const startedBefore = sample(await getText(metricsPort, '/metrics'), 'hotline_calls_started_total{number_kind="hotline"}');
  t.equal(startedBefore, 46, 'the long calls are counted');
  // Killed once each worker's journal holds its long calls (a call is journaled within 50 ms of its start).
  await waitFor('the 6 calls journaled', () => (journaledUuids(c.spoolDir, 1).length + journaledUuids(c.spoolDir, 2).length === 6 ? true : undefined));
  const journaledByKilled = journaledUuids(c.spoolDir, 1);
  process.kill(killedPid, 'SIGKILL');
  const settled = long.map((p) => p.then((r) => ({ r, done: true })));
  // The killed worker's calls drop (their sockets close); the other worker's stay up, counted by /healthz.
  const ended = await waitFor('the killed worker\'s calls to drop', async () => {
    const h = JSON.parse(await getText(metricsPort, '/healthz')) as { detail?: { activeCalls?: number } };
    const states = await Promise.all(settled.map((p) => Promise.race([p, Promise.resolve({ r: null, done: false })])));
    const gone = states.filter((s) => s.done);
    return gone.length > 0 && gone.length === 6 - (h.detail?.activeCalls ?? -1) ? gone : undefined;
  });
  t.ok(ended.length >= 1 && ended.length <= 5, `the killed worker's calls dropped (${ended.length}), the other worker's go on`);
  const cut = ended.map((s) => s.r!.uuid).sort();
  t.same([...journaledByKilled].sort(), cut, 'the calls that dropped are those the killed worker had journaled');
  await waitFor('the replacement serving calls', () => (c.lines().some((l) => l.msg === 'worker serving calls' && l.worker === 1 && l.pid !== killedPid) ? true : undefined), 240_000);
  await waitFor('the dead worker\'s CDRs replayed, and those of its cut calls written', async () => {
    const inDb = new Set(await cdrUuids());
    return [...spooledByKilled, ...cut].every((u) => inDb.has(u)) ? true : undefined;
  });
  const afterReplay = new Set(await cdrUuids());
  t.same([...afterReplay].sort(), [...spooledByKilled, ...cut].sort(), 'the replacement wrote exactly what the dead worker had spooled, and its cut calls');
  const cutRows: Array<{ outcome: string; failure_reason: string | null }> = await knex('cdrs').whereIn('call_uuid', cut).select('outcome', 'failure_reason');
  t.same(cutRows, cut.map(() => ({ outcome: 'failed', failure_reason: STOPPED_REASON })), 'a cut call\'s CDR says the daemon stopped during it');
  t.ok(spooledBySurvivor.every((u) => !afterReplay.has(u)), 'the other worker\'s CDRs still wait in its spool: it was the replay');
  const restarted = await waitFor('the restart in /metrics', async () => {
    const m = await getText(metricsPort, '/metrics');
    return sample(m, 'hotline_cluster_workers_alive') === 2 ? m : undefined;
  });
  t.equal(sample(restarted, 'hotline_cluster_worker_restarts_total'), 1, 'the restart is counted');
  t.equal(sample(restarted, 'hotline_calls_started_total{number_kind="hotline"}'), 46, 'counters did not go back with the dead worker (its last scraped counts are kept)');
  t.ok(c.lines().some((l) => l.msg === 'worker died; its calls were cut; starting a replacement that replays its CDR spool' && l.signal === 'SIGKILL'), 'the death is logged');

  // --- More calls after the restart: both workers, the replacement included.
  const after = await inBatches(20, 5, () => call(eslPort, 10));
  t.ok(after.every((r) => r.bridges.length === 1), 'served after the restart');

  // --- A hung worker (SIGSTOP: it cannot answer at all) shows in /metrics, and no longer once it answers again.
  const beforeHang = await getText(metricsPort, '/metrics');
  t.equal(sample(beforeHang, 'hotline_calls_started_total{number_kind="hotline"}'), 66, 'the calls after the restart are counted');
  const hung = workerPid(c, 2);
  process.kill(hung, 'SIGSTOP');
  let resumed = false;
  t.teardown(() => void (resumed || process.kill(hung, 'SIGCONT')));
  const whileHung = await getText(metricsPort, '/metrics');
  t.equal(sample(whileHung, 'hotline_cluster_workers_not_answering'), 1, 'the stopped worker is counted as not answering (HotlineWorkerNotAnswering)');
  t.equal(sample(whileHung, 'hotline_cluster_worker_scrape_failures_total'), (sample(beforeHang, 'hotline_cluster_worker_scrape_failures_total') ?? NaN) + 1, 'and its scrape failure');
  t.equal(sample(whileHung, 'hotline_calls_started_total{number_kind="hotline"}'), 66, 'its counters show their last scraped values');
  process.kill(hung, 'SIGCONT');
  resumed = true;
  t.equal(sample(await getText(metricsPort, '/metrics'), 'hotline_cluster_workers_not_answering'), 0, 'answering again');

  // --- SIGTERM: the long calls still up are cut after DRAIN_TIMEOUT_S, every CDR flushed, exit 0.
  c.child.kill('SIGTERM');
  // While they drain the workers still answer: /healthz 200 (their calls are served), /metrics complete.
  const drainingHealth = await waitFor('/healthz to say the workers drain', async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
    const body = (await res.json()) as { status: string; detail?: { draining?: boolean }; cluster?: { alive: number } };
    return body.detail?.draining === true ? { code: res.status, body } : undefined;
  });
  // A worker left with no long call finishes its drain at once and exits: one or both are alive.
  t.match(drainingHealth, { code: 200, body: { status: 'ok' } }, '/healthz: 200 ok while draining');
  t.ok((drainingHealth.body.cluster?.alive ?? 0) >= 1, `a draining worker is alive (${String(drainingHealth.body.cluster?.alive)})`);
  const drainingMetrics = await getText(metricsPort, '/metrics');
  t.equal(sample(drainingMetrics, 'hotline_cluster_workers_not_answering'), 0, 'draining workers answer the metrics request');
  t.equal(sample(drainingMetrics, 'hotline_calls_started_total{number_kind="hotline"}'), 66, 'with every count');
  t.equal(await c.exited, 0, 'the primary exits 0');
  const survivors = (await Promise.all(long)).filter((r) => r.hangupCause === 'SYSTEM_SHUTDOWN');
  t.equal(survivors.length, 6 - ended.length, 'the calls still up were cut by the drain');
  t.ok(survivors.every((r) => r.api.some((a) => a === `uuid_kill ${r.uuid} SYSTEM_SHUTDOWN`)), 'with api uuid_kill SYSTEM_SHUTDOWN');
  const stops = c.lines().filter((l) => l.msg === 'worker stopped');
  t.same(stops.map((l) => l.code).sort(), [0, 0], 'both workers stopped cleanly');
  const all = await cdrUuids();
  t.equal(new Set(all).size, all.length, 'no call has two CDRs');
  const expected = [...uuids, ...after.map((r) => r.uuid), ...survivors.map((r) => r.uuid), ...cut].sort();
  t.same(all.sort(), expected, 'every call has its CDR, those cut with the worker killed with -9 included');
  t.same([...spooledUuids(c.spoolDir, 1), ...spooledUuids(c.spoolDir, 2)], [], 'the spools are empty');
});

t.test('CLUSTER_SCHEDULING=os: the workers accept from the shared socket; every call served, one CDR each, clean drain', async (t) => {
  // The kernel picks which worker accepts: how evenly is not asserted (it is not promised).
  const c = startCluster(t, { CLUSTER_SCHEDULING: 'os', DRAIN_TIMEOUT_S: '2' });
  const { eslPort } = await c.ready;
  t.same([1, 2].map((slot) => holdsListeningSocket(workerPid(c, slot), eslPort)), [true, true], 'each worker holds the listening socket and accepts itself');
  t.same([1, 2].map((slot) => listeningDescriptors(workerPid(c, slot), eslPort)), [16, 16], 'each with ESL_ACCEPT_HANDLES (16) handles on it');
  const calls = await inBatches(24, 6, () => call(eslPort, 10));
  t.ok(calls.every((r) => r.bridges.length === 1 && r.bridges[0].result === 'answer'), 'every call was served and bridged');
  c.child.kill('SIGTERM');
  t.equal(await c.exited, 0, 'the primary exits 0');
  t.same(c.lines().filter((l) => l.msg === 'worker stopped').map((l) => l.code), [0, 0], 'both workers stopped cleanly');
  const knex = createKnex(`sqlite:${c.databaseFile}`);
  t.teardown(() => knex.destroy());
  const rows: Array<{ call_uuid: string }> = await knex('cdrs').select('call_uuid');
  // On failure tap prints the daemon's warnings and errors beside the diff: why a CDR is missing.
  const warnings = c.lines().filter((l) => Number(l.level) >= 40);
  t.same(rows.map((r) => r.call_uuid).sort(), calls.map((r) => r.uuid).sort(), 'one CDR per call', { warnings });
});
