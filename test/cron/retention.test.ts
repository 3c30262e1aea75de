// Retention on SQLite and MariaDB: recordings, voicemails, CDRs and cron_runs past their ages go,
// in small batches; files only inside RECORDINGS_DIR; calls keep writing CDRs during a big purge.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { writeCdrs } from '../../src/cdr/writer';
import { toDbTimestamp } from '../../src/db/connect';
import { createLogger } from '../../src/log';
import { runRetention } from '../../src/cron/retention';
import { addCdrs, addTenant, eachDb } from '../billing/helpers';
import { cdr } from '../cdr/records';

const log = createLogger('silent');
const NOW = new Date('2026-11-21T03:00:00Z');
const daysAgo = (d: number): Date => new Date(NOW.getTime() - d * 86_400_000);

function recordingsDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-rec-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function file(dir: string, rel: string): string {
  const p = path.join(dir, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, 'RIFF');
  return p;
}

eachDb(t, 'recordings, voicemails and CDRs past their ages go; the rest stays', async (t, { knex }) => {
  const dir = recordingsDir(t);
  const outside = path.join(recordingsDir(t), 'elsewhere.wav');
  fs.writeFileSync(outside, 'RIFF');
  const tenant = await addTenant(knex);
  // 7 old recordings (one already gone from disk, one outside the directory), 2 recent.
  const old = Array.from({ length: 7 }, (_, i) => ({ uuid: `old-${i}`, at: daysAgo(100 + i), path: file(dir, `${tenant}/2026-08-1${i}/old-${i}.wav`) }));
  fs.rmSync(old[3].path);
  const recent = Array.from({ length: 2 }, (_, i) => ({ uuid: `new-${i}`, at: daysAgo(10 + i), path: file(dir, `${tenant}/2026-11-1${i}/new-${i}.wav`) }));
  await addCdrs(knex, [
    ...[...old, ...recent].map((r) => ({ tenant_id: tenant, started_at: r.at, call_uuid: r.uuid, recording_path: r.path })),
    { tenant_id: tenant, started_at: daysAgo(200), call_uuid: 'outside', recording_path: outside },
    { tenant_id: tenant, started_at: daysAgo(400), call_uuid: 'ancient' },
    { tenant_id: tenant, started_at: daysAgo(366), call_uuid: 'year-old', recording_path: path.join(dir, 'gone.wav') },
  ]);
  const vm = (i: number, age: number): Record<string, unknown> => ({ tenant_id: tenant, call_uuid: `vm-${i}`, file_path: file(dir, `${tenant}/vm/vm-${i}.wav`), created_at: toDbTimestamp(daysAgo(age)) });
  await knex('voicemails').insert([vm(1, 93), vm(2, 200), vm(3, 5)]);
  await knex('cron_runs').insert([
    { job: 'caps', node: 'n', tick: toDbTimestamp(daysAgo(40)), started_at: toDbTimestamp(daysAgo(40)), status: 'ok' },
    { job: 'caps', node: 'n', tick: toDbTimestamp(daysAgo(1)), started_at: toDbTimestamp(daysAgo(1)), status: 'ok' },
  ]);

  const r = await runRetention(knex, NOW, { recordingsDays: 92, voicemailDays: 92, cdrDays: 365, recordingsDir: dir, batchSize: 3, pauseMs: 1, log });
  t.match(r, { recordings: 8, voicemails: 2, cdrs: 2, cronRuns: 1, filesRefused: 1 }, 'the year-old CDR\'s recording counted too');
  t.ok(r.batches >= 3, `${r.batches} batches of at most 3`);
  for (const o of old) t.notOk(fs.existsSync(o.path), `${o.uuid} deleted`);
  for (const n of recent) t.ok(fs.existsSync(n.path), `${n.uuid} kept`);
  t.notOk(fs.existsSync(path.join(dir, `${tenant}/2026-08-10`)), 'empty date directory removed');
  t.ok(fs.existsSync(outside), 'a file outside RECORDINGS_DIR is never deleted');
  const rows: Array<{ call_uuid: string; recording_path: string | null }> = await knex('cdrs').orderBy('call_uuid').select('call_uuid', 'recording_path');
  const byUuid = Object.fromEntries(rows.map((x) => [x.call_uuid, x.recording_path]));
  t.equal(byUuid['old-0'], null, 'the CDR stays, without its recording');
  t.equal(byUuid['new-0'], recent[0].path);
  t.equal(byUuid.outside, outside, 'refused: the path is kept for a person to look at');
  t.notOk('ancient' in byUuid, 'CDRs past RETENTION_CDR_DAYS deleted');
  t.notOk('year-old' in byUuid);
  t.same((await knex<{ call_uuid: string }>('voicemails').select('call_uuid')).map((v) => v.call_uuid), ['vm-3']);
  t.equal((await knex('cron_runs')).length, 1);

  const again = await runRetention(knex, NOW, { recordingsDays: 92, voicemailDays: 92, cdrDays: 365, recordingsDir: dir, batchSize: 3, pauseMs: 1, log });
  t.match(again, { recordings: 0, voicemails: 0, cdrs: 0, cronRuns: 0 }, 'a second run finds nothing');
  // A week later, the recent ones are still recent; 90 days later they go — from the mark on.
  const later = await runRetention(knex, new Date(NOW.getTime() + 90 * 86_400_000), { recordingsDays: 92, voicemailDays: 92, cdrDays: 0, recordingsDir: dir, log });
  t.equal(later.recordings, 2);
  t.equal(later.cdrs, 0, 'RETENTION_CDR_DAYS=0 keeps CDRs');
});

eachDb(t, 'recordings: batches in (started_at, id) order lose no row that shares a started_at, also one a DBA wrote without milliseconds', async (t, { knex, target }) => {
  const dir = recordingsDir(t);
  const tenant = await addTenant(knex);
  const at = daysAgo(100);
  const recs = Array.from({ length: 8 }, (_, i) => ({ uuid: `same-${i}`, path: file(dir, `${tenant}/2026-08-13/same-${i}.wav`) }));
  await addCdrs(knex, recs.map((r) => ({ tenant_id: tenant, started_at: at, call_uuid: r.uuid, recording_path: r.path })));
  if (target === 'sqlite') {
    // Four of them as a DBA would write the time by hand: text without milliseconds, which SQLite
    // sorts before the same second written with them.
    await knex('cdrs').whereIn('call_uuid', recs.slice(0, 4).map((r) => r.uuid)).update({ started_at: toDbTimestamp(at).slice(0, 19) });
  }
  const r = await runRetention(knex, NOW, { recordingsDays: 92, voicemailDays: 92, cdrDays: 0, recordingsDir: dir, batchSize: 3, pauseMs: 1, log });
  t.equal(r.recordings, 8, 'all eight, in batches of 3');
  for (const rec of recs) t.notOk(fs.existsSync(rec.path), `${rec.uuid} deleted`);
  t.same(await knex('cdrs').whereNotNull('recording_path').select('call_uuid'), [], 'no CDR keeps its path');
});

eachDb(t, 'a big purge in batches: calls keep writing CDRs meanwhile', async (t, { knex, target }) => {
  const tenant = await addTenant(knex);
  const N = 6000;
  const rows = Array.from({ length: N }, (_, i) => ({ tenant_id: tenant, started_at: new Date(daysAgo(500).getTime() + i * 1000), call_uuid: crypto.randomUUID() }));
  await addCdrs(knex, rows);
  let writing = true;
  const latencies: number[] = [];
  const writer = (async () => {
    let i = 0;
    while (writing) {
      const started = process.hrtime.bigint();
      await writeCdrs(knex, [cdr(i++, { tenant_id: tenant })]);
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  // Between two batches the purge waits until a CDR write has gone through: if a batch held its
  // lock (or SQLite's one connection) past its end, none could, and the purge would wait for ever
  // (the deadline turns that into a failure). No count of writes that depends on the machine's speed.
  let waitedFor = 0;
  const betweenBatches = async (): Promise<void> => {
    const before = latencies.length;
    const deadline = Date.now() + 60_000;
    while (latencies.length === before) {
      if (Date.now() > deadline) throw new Error('no CDR write went through between two batches of the purge');
      await new Promise((r) => setTimeout(r, 2));
    }
    waitedFor++;
  };
  const started = Date.now();
  const r = await runRetention(knex, NOW, { recordingsDays: 92, voicemailDays: 92, cdrDays: 365, recordingsDir: os.tmpdir(), batchSize: 500, betweenBatches, log });
  const ms = Date.now() - started;
  writing = false;
  await writer;
  t.equal(r.cdrs, N);
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
  const max = latencies[latencies.length - 1] ?? 0;
  t.comment(`${target}: purged ${N} CDRs in ${r.batches + 1} batches, ${ms} ms; ${latencies.length} CDR writes meanwhile, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`);
  t.equal(waitedFor, r.batches, 'a CDR was written between every two batches');
  t.ok(r.batches >= N / 500 - 1, `the purge ran in batches (${r.batches + 1})`);
});
