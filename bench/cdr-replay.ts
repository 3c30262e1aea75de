/**
 * `npm run bench:cdr`: how fast a spool backlog drains into MariaDB through the daemon's own
 * CdrWriter (src/cdr/writer.ts), e.g. after a database outage: BENCH_CDR_ROWS (100,000) CDRs of
 * the demo tenant, answered and rated like the full flow's, are spooled with CdrSpool in segments
 * of BENCH_CDR_SEGMENT (5,000) records (a writer that cannot reach the database rotates its
 * segment at every retry), then the writer replays them in batches of BENCH_CDR_BATCH (the
 * writer's default, 2,000); rows/s = rows / time until the spool is empty (every row checked in
 * `cdrs` afterwards). A CPU profile of this process during the replay (node:inspector; off with
 * BENCH_CDR_PROFILE=0, it costs CPU itself) and the CPU time of this process and of mariadbd
 * over the replay say where the time goes. BENCH_CDR_DB=sqlite replays into a SQLite file.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { CdrSpool } from '../src/cdr/spool';
import { CdrWriter, DEFAULT_BATCH_ROWS } from '../src/cdr/writer';
import type { CdrRecord } from '../src/cdr/record';
import { createKnex, toDbTimestamp } from '../src/db/connect';
import { seedDemoIfEmpty } from '../src/db/demo-seed';
import { migrateLatest } from '../src/db/migrate';
import { createLogger } from '../src/log';
import { Metrics } from '../src/metrics';
import { formatTop, rankFrames } from './cpu-profile';
import { cpuSeconds, createDatabase, envNumber, machine, mariadbPid } from './lib';

const ROWS = envNumber('BENCH_CDR_ROWS', 100_000);
const SEGMENT = envNumber('BENCH_CDR_SEGMENT', 5000);
const BATCH = envNumber('BENCH_CDR_BATCH', DEFAULT_BATCH_ROWS);
const PROFILE = process.env.BENCH_CDR_PROFILE !== '0';
const SQLITE = process.env.BENCH_CDR_DB === 'sqlite';

function cdr(i: number, tenantId: number, now: Date): CdrRecord {
  const started = new Date(now.getTime() - 60_000 - (i % 3600) * 1000);
  return {
    call_uuid: randomUUID(),
    tenant_id: tenantId,
    access_number: '4001012345',
    caller: `139${String(10_000_000 + (i % 89_999_999)).padStart(8, '0')}`,
    caller_region: '广东省广州市',
    started_at: toDbTimestamp(started),
    answered_at: toDbTimestamp(new Date(started.getTime() + 4000)),
    ended_at: toDbTimestamp(new Date(started.getTime() + 64_000)),
    duration_s: 64,
    billsec: 60,
    outcome: 'answered',
    hangup_cause: 'NORMAL_CLEARING',
    answered_by: '13800000001',
    group_id: 1,
    ivr_path: null,
    cost: '0.1500',
    recording_path: null,
    node: 'bench',
    call_type: 'mobile',
    admitted: true,
  };
}

function post<T>(session: inspector.Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result as T))));
}

async function main(): Promise<void> {
  process.stdout.write(`machine: ${machine()}\n`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-bench-cdr-'));
  const db = SQLITE ? { url: `sqlite:${path.join(dir, 'bench.db')}`, drop: () => Promise.resolve() } : await createDatabase('hotline_bench_cdr');
  const knex = createKnex(db.url, { poolMax: 10 });
  try {
    await migrateLatest(knex);
    await seedDemoIfEmpty(knex);
    const tenant: { id: number } = await knex('tenants').first('id');
    const spool = new CdrSpool(path.join(dir, 'spool'));
    await spool.open();
    const now = new Date();
    for (let i = 0; i < ROWS; i += 1000) {
      // Appends of one tick share a write and an fdatasync (group commit), as calls ending together do.
      await Promise.all(Array.from({ length: Math.min(1000, ROWS - i) }, (_, k) => spool.append(cdr(i + k, tenant.id, now))));
      if ((i + 1000) % SEGMENT < 1000) await spool.rotate();
    }
    await spool.rotate();
    const spooled = (await spool.closedSegments()).length;
    const metrics = new Metrics();
    const log = createLogger('warn');
    const writer = new CdrWriter(knex, spool, { flushIntervalMs: 200, retryIntervalMs: 5000, batchRows: BATCH }, log, metrics);

    const session = new inspector.Session();
    if (PROFILE) {
      session.connect();
      await post(session, 'Profiler.enable');
      await post(session, 'Profiler.start');
    }
    const maria = SQLITE ? null : mariadbPid();
    const cpu0 = process.cpuUsage();
    const maria0 = maria ? cpuSeconds(maria) : NaN;
    const t0 = process.hrtime.bigint();
    await writer.start();
    while (writer.spoolDepth > 0) await writer.flush();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const mariaS = maria ? cpuSeconds(maria) - maria0 : NaN;
    const profile = PROFILE ? (await post<{ profile: Parameters<typeof rankFrames>[0] }>(session, 'Profiler.stop')).profile : null;
    if (PROFILE) session.disconnect();
    await writer.stop();

    const counted: Array<{ n: number | string }> = await knex('cdrs').count({ n: '*' });
    const n = counted[0]?.n;
    const nodeS = (cpu.user + cpu.system) / 1e6;
    process.stdout.write(
      [
        `${ROWS} spooled CDRs (${spooled} segments) replayed into ${SQLITE ? 'SQLite' : 'MariaDB'} in batches of ${BATCH}${PROFILE ? ', profiled' : ''}: ${seconds.toFixed(1)} s, ${(ROWS / seconds).toFixed(0)} rows/s (rows in cdrs: ${n})`,
        `CPU over the replay: this process ${nodeS.toFixed(1)} s (${((100 * nodeS) / seconds).toFixed(0)}% of one core, ${((1e6 * nodeS) / ROWS).toFixed(1)} µs a row)` +
          (SQLITE ? '' : `, mariadbd ${Number.isNaN(mariaS) ? '?' : `${mariaS.toFixed(1)} s (${((100 * mariaS) / seconds).toFixed(0)}%, ${((1e6 * mariaS) / ROWS).toFixed(1)} µs a row)`}`) +
          '; the rest is waiting (round trips, commits, other processes)',
      ].join('\n') + '\n',
    );
    if (profile) {
      const { frames, totalMs } = rankFrames(profile, path.resolve(__dirname, '..', '..'));
      process.stdout.write(`\nprofile of this process during the replay (${totalMs.toFixed(0)} ms busy):\nby self time:\n${formatTop(frames, 'selfMs', 15)}\n\nby total time:\n${formatTop(frames, 'totalMs', 25)}\n`);
    }
  } finally {
    await knex.destroy();
    await db.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:cdr failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
