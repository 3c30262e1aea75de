// A CDR spool that refuses writes (a full disk, a file system gone read-only) must lose no CDR.
// Assumed of the spool's file system: an append fails (ENOSPC here, stood in by the spool's
// append rejecting as fs would) and later works again once there is room. Before, the CDR went to
// the error log only: the call was never written nor charged, /healthz said "ok", and the call
// journal had already forgotten the call, so not even a kill and a restart recovered it.
import t, { type Test } from 'tap';
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
function diskFull(d: TestDaemon): { on: boolean; refusals: number } {
  const state = { on: false, refusals: 0 };
  const spool = (d.daemon.cdrs as unknown as { spool: CdrSpool }).spool;
  const real = spool.append.bind(spool);
  spool.append = (record: object): Promise<void> => {
    if (!state.on) return real(record);
    state.refusals++;
    return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 }));
  };
  return state;
}

async function metric(d: TestDaemon, name: string): Promise<number> {
  const text = await d.daemon.metrics.registry.getSingleMetricAsString(name);
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const CALL = { caller: '13912345678', destination: '4001012345', legs: { '13800000001': { result: 'answer' as const, talkMs: 20 } } };

/** A daemon on a fresh SQLite file whose spool refuses every write, and one call that ended with its CDR held in memory. */
async function callHeldOnFullDisk(): Promise<{ url: string; d: TestDaemon; c: Awaited<ReturnType<typeof placeCall>> }> {
  const url = tempSqliteUrl();
  const d = await startTestDaemon(url);
  diskFull(d).on = true;
  const c = await placeCall(d.port, CALL);
  await until('the CDR held in memory', async () => (await metric(d, 'hotline_cdrs_held_in_memory')) === 1);
  return { url, d, c };
}

t.test('a full disk: the CDR is held in memory, said so, and written once the disk has room', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  const full = diskFull(d);
  full.on = true;
  const c = await placeCall(d.port, CALL);
  await until('the CDR held in memory', async () => (await metric(d, 'hotline_cdrs_held_in_memory')) === 1);
  t.ok((await metric(d, 'hotline_cdr_spool_write_failures_total')) >= 1, 'the failure counted');
  const h = await healthz(d.daemon.metricsPort);
  t.match(h, { code: 203, body: { ok: true, status: 'cdr_spool_failing', detail: { cdrsHeldInMemory: 1 } } }, '/healthz: 203 cdr_spool_failing');
  // Offered again every second, refused while the disk is full.
  await until('a retry', () => full.refusals >= 2);

  full.on = false;
  const cdr = await d.cdr(c.uuid);
  t.match(cdr, { outcome: 'answered', answered_by: '13800000001' }, 'written once the spool took it');
  await until('nothing held', async () => (await metric(d, 'hotline_cdrs_held_in_memory')) === 0);
  t.match(await healthz(d.daemon.metricsPort), { code: 200, body: { status: 'ok' } });
});

t.test('a stop while the disk is still full ends on time, and the next start makes the CDR from the call journal', async (t) => {
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

/** A CDR writer on an open spool in a fresh folder (test/cdr/records.ts spoolDir), no flush of its own. */
async function writerOnSpool(t: Test, opts: { heldMax?: number } = {}): Promise<{ spool: CdrSpool; writer: CdrWriter }> {
  const spool = new CdrSpool(spoolDir(t));
  const knex = createKnex('sqlite::memory:');
  t.teardown(() => knex.destroy());
  const writer = new CdrWriter(knex, spool, { flushIntervalMs: 60_000, retryIntervalMs: 60_000, ...opts }, createLogger('silent'), new Metrics());
  await spool.open();
  return { spool, writer };
}

t.test('held CDRs are bounded: past the most, a refused CDR fails at once (the call server logs it in full) instead of growing the heap', async (t) => {
  const { spool, writer } = await writerOnSpool(t, { heldMax: 2 });
  t.teardown(() => spool.close());
  let full = true;
  const real = spool.append.bind(spool);
  spool.append = (record: object) => (full ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })) : real(record));
  const spooled: number[] = [];
  const then = (i: number) => ({ spooled: () => void spooled.push(i), failed: () => t.fail(`CDR ${i} failed`) });
  t.equal(await writer.record(cdr(1), then(1)), 'held', 'held, and the caller goes on');
  t.equal(await writer.record(cdr(2), then(2)), 'held');
  await t.rejects(writer.record(cdr(3), then(3)), /2 CDRs are held in memory already: ENOSPC/, 'the third fails at once');
  await t.rejects(writer.record(cdr(4)), /ENOSPC/, 'a caller that cannot wait (start-up recovery, the dialer) is refused, as before');
  t.equal(writer.heldInMemory, 2);
  full = false;
  await until('both spooled', () => spooled.length === 2);
  t.same(spooled, [1, 2], 'in order, once there is room');
  t.equal(writer.heldInMemory, 0);
  t.equal(await spool.countRecords(), 2);
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
  t.equal(await writer.record(cdr(1), { spooled: () => t.fail('never spooled'), failed: (err) => void failed.push(err.message) }), 'held');
  await until('a retry under way', () => attempts >= 2);
  const started = Date.now();
  await writer.stop().catch(() => undefined);
  t.ok(Date.now() - started < 10_000, `stopped in ${Date.now() - started} ms`);
  t.match(failed, [/was still refused by the CDR spool when the daemon stopped: EIO/], 'the held CDR failed, once');
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
