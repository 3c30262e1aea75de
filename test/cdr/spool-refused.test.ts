// A CDR spool that refuses writes (a full disk, a file system gone read-only) must lose no CDR.
// Assumed of the spool's file system: an append fails (ENOSPC here, stood in by the spool's
// append rejecting as fs would) and later works again once there is room. Before, the CDR went to
// the error log only: the call was never written nor charged, /healthz said "ok", and the call
// journal had already forgotten the call, so not even a kill and a restart recovered it. Now a
// held CDR goes to the database straight; the database "away" for CDRs is stood in by the
// writer's batch runner rejecting as a lost connection does (test/cdr/writer.test.ts writes
// held CDRs to real MariaDB and SQLite).
import t, { type Test } from 'tap';
import type { CdrBatchRunner } from '../../src/cdr/batch-runner';
import { CdrDataError, type WriteResult } from '../../src/cdr/batch';
import type { CdrRecord } from '../../src/cdr/record';
import { placeCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl, type TestDaemon } from '../helpers/daemon';
import { until } from '../helpers/wait';
import { healthz } from '../daemon/spawn';
import { CdrSpool } from '../../src/cdr/spool';
import { CdrWriter } from '../../src/cdr/writer';
import { createKnex } from '../../src/db/connect';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { cdr, spoolDir } from './records';

/** Makes the daemon's spool refuse appends while `full.on` (its real append otherwise). */
function diskFull(d: TestDaemon): { on: boolean; refusals: number; probesRefused: number } {
  const state = { on: false, refusals: 0, probesRefused: 0 };
  const spool = (d.daemon.cdrs as unknown as { spool: CdrSpool }).spool;
  const [append, probe] = [spool.append.bind(spool), spool.probe.bind(spool)];
  const enospc = (): Promise<void> => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 }));
  spool.append = (record: object): Promise<void> => {
    if (!state.on) return append(record);
    state.refusals++;
    return enospc();
  };
  spool.probe = (): Promise<void> => {
    if (!state.on) return probe();
    state.probesRefused++;
    return enospc();
  };
  return state;
}

/** Makes the daemon's CDR batches fail as with the database gone while `away.on`. */
function databaseAway(d: TestDaemon): { on: boolean } {
  const state = { on: true };
  const runner = (d.daemon.cdrs as unknown as { runner: CdrBatchRunner }).runner;
  const real = runner.write.bind(runner);
  runner.write = (records, tenants, clock) => (state.on ? Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' })) : real(records, tenants, clock));
  return state;
}

async function metric(d: TestDaemon, name: string): Promise<number> {
  const text = await d.daemon.metrics.registry.getSingleMetricAsString(name);
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const CALL = { caller: '13912345678', destination: '4001012345', legs: { '13800000001': { result: 'answer' as const, talkMs: 20 } } };

/** A daemon on a fresh SQLite file whose spool refuses every write and whose database takes no CDR, and one call that ended with its CDR held in memory. */
async function callHeldOnFullDisk(): Promise<{ url: string; d: TestDaemon; c: Awaited<ReturnType<typeof placeCall>> }> {
  const url = tempSqliteUrl();
  const d = await startTestDaemon(url);
  diskFull(d).on = true;
  databaseAway(d);
  const c = await placeCall(d.port, CALL);
  await until('the CDR held in memory', async () => (await metric(d, 'hotline_cdrs_held_in_memory')) === 1);
  return { url, d, c };
}

t.test('a full disk with the database up: the CDR goes to the database straight within seconds, said so while the disk refuses', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  const full = diskFull(d);
  full.on = true;
  const c = await placeCall(d.port, CALL);
  const cdr = await d.cdr(c.uuid, 10_000);
  t.match(cdr, { outcome: 'answered', answered_by: '13800000001' }, 'written, though the spool never took it');
  t.ok(full.refusals >= 1, 'the spool refused it');
  // Counted once the batch's reply reaches the main thread, which may be after the row is visible.
  await until('counted as written past the spool', async () => (await metric(d, 'hotline_cdrs_written_past_spool_total')) === 1);
  await until('nothing held', async () => (await metric(d, 'hotline_cdrs_held_in_memory')) === 0);
  t.equal(await metric(d, 'hotline_cdr_spool_refusing'), 1, 'the spool still refuses: said so');
  t.match(await healthz(d.daemon.metricsPort), { code: 203, body: { ok: true, status: 'cdr_spool_failing', detail: { cdrsHeldInMemory: 0 } } }, '/healthz: 203 cdr_spool_failing while the disk is full');

  // Nothing held: the writer asks the spool itself every second, refused while the disk is full.
  await until('the spool asked twice', () => full.probesRefused >= 2, 5_000);
  // The disk has room again. No call comes (a quiet node): the next ask ends the refusal.
  full.on = false;
  await until('the refusal over with no call', async () => (await metric(d, 'hotline_cdr_spool_refusing')) === 0, 5_000);
  t.match(await healthz(d.daemon.metricsPort), { code: 200, body: { status: 'ok' } });
  const next = await placeCall(d.port, CALL);
  await d.cdr(next.uuid);
  t.equal(await metric(d, 'hotline_cdrs_written_past_spool_total'), 1, 'the next call went through the spool');
});

t.test('a full disk with the database away: the CDR is held in memory, said so, and written once either takes it', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  const full = diskFull(d);
  full.on = true;
  const away = databaseAway(d);
  const c = await placeCall(d.port, CALL);
  await until('the CDR held in memory', async () => (await metric(d, 'hotline_cdrs_held_in_memory')) === 1);
  t.ok((await metric(d, 'hotline_cdr_spool_write_failures_total')) >= 1, 'the failure counted');
  const h = await healthz(d.daemon.metricsPort);
  t.match(h, { code: 203, body: { ok: true, status: 'cdr_spool_failing', detail: { cdrsHeldInMemory: 1 } } }, '/healthz: 203 cdr_spool_failing');
  // Offered again every second, refused while the disk is full.
  await until('a retry', () => full.refusals >= 2);

  full.on = false;
  away.on = false;
  const cdr = await d.cdr(c.uuid);
  t.match(cdr, { outcome: 'answered', answered_by: '13800000001' }, 'written once the spool took it');
  await until('nothing held', async () => (await metric(d, 'hotline_cdrs_held_in_memory')) === 0);
  t.equal(await metric(d, 'hotline_cdrs_written_past_spool_total'), 0, 'through the spool, not past it');
  t.match(await healthz(d.daemon.metricsPort), { code: 200, body: { status: 'ok' } });
});

t.test('a stop while the disk is still full and the database away ends on time, and the next start makes the CDR from the call journal', async (t) => {
  const { url, d, c } = await callHeldOnFullDisk();
  const started = Date.now();
  await d.daemon.stop();
  t.ok(Date.now() - started < 15_000, `the stop did not wait for the disk (${Date.now() - started} ms)`);

  // The disk has room again; the next daemon on the same spool folder and database.
  const next = await startTestDaemon(url, { cdr: { spoolDir: d.spoolDir } });
  t.teardown(() => next.stop());
  const cdr = await next.cdr(c.uuid);
  t.equal(cdr.call_uuid, c.uuid, 'the call has its CDR, from the journal the stopped daemon left');
  t.equal(await next.knex('cdrs').where({ call_uuid: c.uuid }).count({ n: '*' }).first().then((r) => Number((r as { n: number }).n)), 1, 'one');
});

/** A database that takes no CDR: every batch fails as with the connection refused. */
const awayRunner: CdrBatchRunner = {
  write: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' })),
  close: () => Promise.resolve(),
  prepare: () => undefined,
};

/** A CDR writer on an open spool in a fresh folder (test/cdr/records.ts spoolDir), no flush of its own; its database away unless `runner` says otherwise. */
async function writerOnSpool(t: Test, opts: { heldMax?: number; runner?: CdrBatchRunner } = {}): Promise<{ spool: CdrSpool; writer: CdrWriter }> {
  const spool = new CdrSpool(spoolDir(t));
  const knex = createKnex('sqlite::memory:');
  t.teardown(() => knex.destroy());
  const writer = new CdrWriter(knex, spool, { flushIntervalMs: 60_000, retryIntervalMs: 60_000, runner: awayRunner, ...opts }, createLogger('silent'), new Metrics());
  await spool.open();
  return { spool, writer };
}

/** Makes `spool` refuse appends while `state.full`. */
function refusing(spool: CdrSpool): { full: boolean } {
  const state = { full: true };
  const [append, probe] = [spool.append.bind(spool), spool.probe.bind(spool)];
  const enospc = (): Promise<void> => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
  spool.append = (record: object, handedAt?: number) => (state.full ? enospc() : append(record, handedAt));
  spool.probe = () => (state.full ? enospc() : probe());
  return state;
}

t.test('held CDRs are bounded: past the most, a refused CDR fails at once (the call server logs it in full) instead of growing the heap', async (t) => {
  const { spool, writer } = await writerOnSpool(t, { heldMax: 2 });
  t.teardown(() => spool.close());
  const disk = refusing(spool);
  const spooled: number[] = [];
  const then = (i: number) => ({ kept: () => void spooled.push(i), failed: () => t.fail(`CDR ${i} failed`) });
  t.equal(await writer.record(cdr(1), then(1)), 'held', 'held, and the caller goes on');
  t.equal(await writer.record(cdr(2), then(2)), 'held');
  await t.rejects(writer.record(cdr(3), then(3)), /2 CDRs are held in memory already: ENOSPC/, 'the third fails at once');
  await t.rejects(writer.record(cdr(4)), /ENOSPC/, 'a caller that cannot wait (start-up recovery, the dialer) is refused, as before');
  t.equal(writer.heldInMemory, 2);
  disk.full = false;
  await until('both spooled', () => spooled.length === 2);
  t.same(spooled, [1, 2], 'in order, once there is room');
  t.equal(writer.heldInMemory, 0);
  t.equal(await spool.countRecords(), 2);
});

t.test('a CDR the spool refuses is uncharged from its hand-in to its hold, with no gap between', async (t) => {
  // The spool forgets a refused batch as it rejects it, and record() holds the CDR only when its
  // await resumes: a read of the money in between must not take everything as charged.
  const { spool, writer } = await writerOnSpool(t);
  t.teardown(() => spool.close());
  const disk = refusing(spool); // rejects at once, never queued: the gap itself
  let kept = false;
  const handedAt = performance.now();
  const recorded = writer.record(cdr(1), { kept: () => void (kept = true), failed: () => t.fail('failed') }, handedAt);
  t.equal(writer.unchargedSince(), handedAt, 'refused, not held yet: still uncharged since its hand-in');
  t.equal(await recorded, 'held');
  t.equal(writer.unchargedSince(), handedAt, 'held: the same');
  disk.full = false;
  await until('spooled once the disk has room', () => kept, 10_000);
});

t.test('a held CDR the spool takes back with the database away is still uncharged since it was handed in, not since the spool took it', async (t) => {
  // What the spend guard counts ended calls against (CdrWriter.unchargedSince): taken as new, a
  // call that ended before the disk filled would count as charged 5 s after the disk had room.
  const { spool, writer } = await writerOnSpool(t);
  t.teardown(() => spool.close());
  const disk = refusing(spool);
  const kept: number[] = [];
  const handedAt = performance.now();
  t.equal(await writer.record(cdr(1), { kept: () => void kept.push(1), failed: () => t.fail('failed') }), 'held');
  const since = writer.unchargedSince();
  t.ok(since !== null && since >= handedAt && since - handedAt < 100, 'held: uncharged since it was handed in');
  await new Promise((r) => setTimeout(r, 1_500));
  disk.full = false;
  await until('spooled once the disk has room', () => kept.length === 1, 10_000);
  t.equal(writer.heldInMemory, 0);
  t.equal(writer.unchargedSince(), since, 'in the spool now, the database still away: still since it was handed in');
});

t.test('a stop while a retry is under way waits for it, then fails what the spool still refuses (it does not hang)', async (t) => {
  const { spool, writer } = await writerOnSpool(t);
  let attempts = 0;
  // A refusal that takes 900 ms (a disk that answers slowly): the stop lands inside a retry.
  spool.append = () => {
    attempts++;
    return new Promise((_resolve, reject) => setTimeout(() => reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })), 900));
  };
  const failed: string[] = [];
  t.equal(await writer.record(cdr(1), { kept: () => t.fail('never spooled'), failed: (err) => void failed.push(err.message) }), 'held');
  await until('a retry under way', () => attempts >= 2);
  const started = Date.now();
  await writer.stop().catch(() => undefined);
  t.ok(Date.now() - started < 10_000, `stopped in ${Date.now() - started} ms`);
  t.match(failed, [/was still refused by the CDR spool, and not written to the database, when the daemon stopped: EIO/], 'the held CDR failed, once');
});

t.test('a call whose CDR is held ends (not counted active); a restart with the disk still full starts, and the journal keeps the call', async (t) => {
  const { url, d, c } = await callHeldOnFullDisk();
  await until('the call is over', async () => (await metric(d, 'hotline_active_calls')) === 0);
  await d.daemon.stop();
  // The next start with the disk still full: the recovery's CDR is refused, the start goes on.
  const proto = CdrSpool.prototype as unknown as { append: (this: CdrSpool, record: object) => Promise<void> };
  const real = proto.append;
  let refusing = true;
  proto.append = function append(this: CdrSpool, record: object): Promise<void> {
    return refusing ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })) : real.call(this, record);
  };
  t.teardown(() => {
    proto.append = real;
  });
  const second = await startTestDaemon(url, { cdr: { spoolDir: d.spoolDir } });
  t.pass('the second daemon started with the disk full');
  await second.daemon.stop();
  refusing = false;
  const third = await startTestDaemon(url, { cdr: { spoolDir: d.spoolDir } });
  t.teardown(() => third.stop());
  t.equal((await third.cdr(c.uuid)).call_uuid, c.uuid, 'the journal kept the call through both, and the third start wrote its CDR');
});

t.test('held CDRs the database refuses as data stay held, alone, and the others are written straight, in order', async (t) => {
  const written: string[] = [];
  let bad = '';
  const runner: CdrBatchRunner = {
    write: (records: readonly CdrRecord[]): Promise<WriteResult> => {
      if (records.some((r) => r.call_uuid === bad)) return Promise.reject(new CdrDataError('CDR_BAD_VALUE', `cdrs refuses ${bad}`));
      written.push(...records.map((r) => r.call_uuid));
      return Promise.resolve({ fresh: records.length, capped: [] });
    },
    close: () => Promise.resolve(),
    prepare: () => undefined,
  };
  const { spool, writer } = await writerOnSpool(t, { runner });
  t.teardown(() => writer.stop().catch(() => undefined));
  const disk = refusing(spool);
  const records = [cdr(1), cdr(2), cdr(3), cdr(4), cdr(5)];
  bad = records[3].call_uuid;
  const kept: number[] = [];
  for (const [i, r] of records.entries()) t.equal(await writer.record(r, { kept: () => void kept.push(i + 1), failed: () => t.fail(`CDR ${i + 1} failed`) }), 'held');
  await until('the four the database takes', () => kept.length === 4);
  t.same(kept, [1, 2, 3, 5], 'kept in order, the refused one left out');
  t.same(written, [1, 2, 3, 5].map((i) => records[i - 1].call_uuid), 'each written once (the batch halved around the refused one)');
  t.equal(writer.heldInMemory, 1, 'the refused one is still held');
  t.ok(writer.spoolRefusing, 'the spool still refuses');
  // The disk has room: the spool takes the one the database refused (its replay quarantines it).
  disk.full = false;
  await until('the fifth kept', () => kept.length === 5);
  t.equal(kept[4], 4);
  t.equal(writer.heldInMemory, 0);
  t.notOk(writer.spoolRefusing, 'the refusal is over');
  t.equal(await spool.countRecords(), 1, 'in the spool');
});

t.test('while a retry waits for a slow database, the CDRs it offers are still held: a later CDR goes behind them, and the refusal is not over', async (t) => {
  let release: (() => void) | null = null;
  const writes: string[][] = [];
  const runner: CdrBatchRunner = {
    // The database takes its first batch only when the test says so (a database slow to answer).
    write: (records: readonly CdrRecord[]): Promise<WriteResult> => {
      writes.push(records.map((r) => r.call_uuid));
      const result = { fresh: records.length, capped: [] };
      if (writes.length > 1) return Promise.resolve(result);
      return new Promise((resolve) => {
        release = () => resolve(result);
      });
    },
    close: () => Promise.resolve(),
    prepare: () => undefined,
  };
  const { spool, writer } = await writerOnSpool(t, { runner });
  const disk = refusing(spool);
  const kept: number[] = [];
  const then = (i: number) => ({ kept: () => void kept.push(i), failed: () => t.fail(`CDR ${i} failed`) });
  const [first, second] = [cdr(1), cdr(2)];
  t.equal(await writer.record(first, then(1)), 'held');
  await until('the retry waits on the database', () => writes.length === 1);
  // The disk has room now, while CDR 1 is still only in memory.
  disk.full = false;
  t.equal(await writer.record(second, then(2)), 'held', 'CDR 2 goes behind CDR 1, not ahead of it into the spool');
  t.equal(writer.heldInMemory, 2, 'both counted as held (/healthz, the gauge, heldMax)');
  t.ok(writer.spoolRefusing, 'the refusal is not over while CDR 1 is in memory');
  (release as (() => void) | null)?.();
  await until('both kept', () => kept.length === 2);
  t.same(kept, [1, 2], 'in order');
  t.same(writes, [[first.call_uuid]], 'CDR 1 written straight; CDR 2 spooled at the next retry');
  await writer.stop();
  t.equal(writer.heldInMemory, 0);
  t.notOk(writer.spoolRefusing, 'over once nothing is held and the spool took one');
});
