/**
 * A daemon killed outright in the middle of calls (`kill -9`: a crash or the out-of-memory killer
 * looks the same) on SQLite and on MariaDB: the next daemon on the same spool folder writes a CDR
 * for each cut call from the call journal before it takes calls — outcome failed with the reason,
 * ended when the killed daemon was last known running, the talking call's answer kept, nothing
 * charged — counts them, and leaves no journal behind.
 *
 * Assumed of FreeSWITCH (freeswitch/dialplan/hotline_after_socket.xml, test/calls/process.test.ts):
 * when the daemon's socket goes with hotline_handled=true, the dialplan hangs the call up, so a
 * call cut this way has ended by the time the next daemon starts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { readJournal } from '../../src/cdr/journal';
import { STOPPED_REASON } from '../../src/calls/journaled-call';
import { fromDbTimestamp } from '../../src/db/connect';
import { dbTargets } from '../helpers/db';
import { startDaemonProcess } from '../daemon/spawn';
import { until } from '../helpers/wait';

// Two daemon processes a database, started under ts-node one after the other (process.test.ts).
t.setTimeout(600_000);

/** The call journals in the spool folder, read together. */
function journals(spool: string): ReturnType<typeof readJournal> {
  const text = fs.readdirSync(spool).filter((n) => /^calls-in-progress-.*\.jsonl$/.test(n)).map((n) => fs.readFileSync(path.join(spool, n), 'utf8')).join('');
  return readJournal(text);
}

for (const target of dbTargets()) {
  t.test(`${target.name}: kill -9 with one call ringing and one talking, then a restart: both get their CDRs`, async (t) => {
    const db = await target.create();
    t.teardown(() => db.destroy());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-stopped-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const spool = path.join(dir, 'spool');
    const env = { DATABASE_URL: db.url, CDR_SPOOL_DIR: spool, SEED_DEMO: 'always', NODE_NAME: 'node-killed' };
    const first = startDaemonProcess(env);
    t.teardown(() => first.child.kill('SIGKILL'));
    const eslPort = await first.eslPort;
    const { startCall } = await import('../peer/fake-freeswitch');
    // timeScale 1: the first phone rings for a real minute; the second answers and talks a minute.
    const ringing = startCall(eslPort, { caller: '13912345678', destination: '4001012345', timeScale: 1, legs: { '13800000001': { result: 'answer', ringMs: 60_000 } } });
    const talking = startCall(eslPort, { caller: '13912345679', destination: '4001012345', timeScale: 1, legs: { '13800000001': { result: 'answer', ringMs: 50, talkMs: 60_000 } } });
    await until('one call ringing and one talking', () => ringing.live.bridges.length > 0 && talking.live.answered, 120_000);
    // Killed once the journal holds the talking call's answer and an alive line a second after it.
    await until('the answer journaled, and a second of talk', () => {
      const j = journals(spool);
      const answered = j.open.map((o) => o.record as { uuid: string; answeredMs: number | null }).find((r) => r.uuid === talking.live.uuid)?.answeredMs ?? null;
      return j.open.length === 2 && answered !== null && (j.aliveMs ?? 0) >= answered + 1_000;
    }, 60_000);
    const lastAlive = journals(spool).aliveMs!;
    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    await first.exited;
    await Promise.all([ringing.done, talking.done]);

    const second = startDaemonProcess({ ...env, NODE_NAME: 'node-restarted' });
    t.teardown(() => second.child.kill('SIGKILL'));
    const metricsPort = await second.listening;
    const uuids = [ringing.live.uuid, talking.live.uuid];
    await until('both CDRs in the database', async () => Number((await db.knex('cdrs').whereIn('call_uuid', uuids).count({ n: '*' }))[0].n) === 2, 60_000);
    interface Row { call_uuid: string; answered_at: string | Date | null; ended_at: string | Date; billsec: number | string; cost: string | number | null; admitted: number | boolean }
    const rows: Row[] = await db.knex('cdrs').whereIn('call_uuid', uuids).select('call_uuid', 'outcome', 'failure_reason', 'hangup_cause', 'answered_at', 'ended_at', 'billsec', 'cost', 'node', 'tenant_id', 'admitted');
    const byUuid = new Map(rows.map((r) => [r.call_uuid, r]));
    for (const [what, uuid] of [['ringing', ringing.live.uuid], ['talking', talking.live.uuid]] as const) {
      const row = byUuid.get(uuid)!;
      t.match(row, { outcome: 'failed', failure_reason: STOPPED_REASON, hangup_cause: null, node: 'node-killed', tenant_id: 1 }, `${what}: failed, the reason, the node that served it`);
      t.equal(Number(row.admitted), 1, `${what}: admitted, as the journal last saw it`);
      t.equal(Number(row.cost ?? 0), 0, `${what}: nothing charged`);
      const ended = fromDbTimestamp(row.ended_at)!.getTime();
      t.ok(ended >= lastAlive && ended <= killedAt, `${what}: ended at an alive line written between the last one read and the kill (${ended - lastAlive} ms after it, ${killedAt - ended} ms before the kill)`);
    }
    t.equal(byUuid.get(ringing.live.uuid)!.answered_at, null, 'the ringing call was never answered');
    t.equal(Number(byUuid.get(ringing.live.uuid)!.billsec), 0);
    t.not(byUuid.get(talking.live.uuid)!.answered_at, null, 'the talking call kept its answer');
    t.ok(Number(byUuid.get(talking.live.uuid)!.billsec) >= 1, 'and its talk, up to the last alive line');

    t.match(second.stdout(), /"calls":2,"journals":1,"already_spooled":0,"msg":"calls cut when the previous daemon stopped: their CDRs written from its call journal"/);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    t.match(metrics, /^hotline_stopped_call_cdrs_total 2$/m);
    t.same(fs.readdirSync(spool).filter((n) => n.startsWith('calls-in-progress-')), [], 'no journal left: the restarted daemon has no call yet');
    second.child.kill('SIGTERM');
    t.equal(await second.exited, 0);
  });
}
