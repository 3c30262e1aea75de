// CDR batches written by a thread of their own (src/cdr/batch-runner.ts, batch-thread.ts) on a
// real SQLite file: the same rows, charges, late marks and missed-call notifications as on the
// main thread, none of the batch's statements on the main connection, errors that come back as
// the writer needs them (a data error halves the batch, anything else keeps the spool), and a
// thread that could not start, or that hung, is started again at the next batch, and a call's
// write waits for the batch out instead of sleeping the event loop in SQLite's busy handler. The
// writer's own tests (quarantine, flush races, a dropped table) run with the thread as well, in
// writer.test.ts's "writer thread" variant.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Knex } from 'knex';
import t, { type Test } from 'tap';
import { CdrDataError, isDataError, requiredColumnNotWritten, type TenantsOf } from '../../src/cdr/batch';
import { CdrThreadError, cdrBatchRunner, fromThreadError, inProcessRunner, ThreadRunner, toThreadError, type CdrBatchRunner } from '../../src/cdr/batch-runner';
import type { CdrRecord } from '../../src/cdr/record';
import { admitCall } from '../../src/calls/call-state';
import { CdrSpool } from '../../src/cdr/spool';
import { CdrWriter } from '../../src/cdr/writer';
import { createKnex } from '../../src/db/connect';
import { writesClear } from '../../src/db/write-gate';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { buildSnapshot } from '../../src/snapshot/build';
import { addTenant } from '../billing/helpers';
import { dbTargets, type TestDb } from '../helpers/db';
import { missed } from '../notify/helpers';
import { capturingLogger } from '../helpers/log';
import { runTsChild } from '../helpers/ts-child';
import { until } from '../helpers/wait';
import { cdr, counter, quarantined, segments, spoolDir } from './records';

const log = createLogger('silent');
/** When the batches are written: after every record's day and month, so each reaches a late mark. */
const NOW = new Date('2026-12-05T06:00:00.000Z');

async function sqlite(t: Test): Promise<TestDb> {
  const db = await dbTargets().find((d) => d.name === 'sqlite')!.create();
  t.teardown(() => db.destroy());
  return db;
}

/** A writer over `db` whose batches go through `runner`; stopped (and its runner closed) at teardown. */
function writerFor(t: Test, db: TestDb, runner: CdrBatchRunner, tenants?: TenantsOf): { writer: CdrWriter; spool: CdrSpool; metrics: Metrics; dir: string } {
  const dir = spoolDir(t);
  const spool = new CdrSpool(dir);
  const metrics = new Metrics();
  const writer = new CdrWriter(db.knex, spool, { flushIntervalMs: 60_000, retryIntervalMs: 0, tenants, clock: () => NOW, runner }, log, metrics);
  t.teardown(() => writer.stop());
  return { writer, spool, metrics, dir };
}

/** What a batch leaves in the database, without ids and times of writing. */
async function state(knex: Knex): Promise<Record<string, unknown[]>> {
  type Rows = Array<Record<string, unknown>>;
  const strip = (rows: Rows, drop: string[]): unknown[] => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !drop.includes(k))));
  return {
    cdrs: strip((await knex('cdrs').select('*').orderBy('call_uuid')) as Rows, ['id', 'write_batch', 'created_at', 'updated_at']),
    usage: await knex('tenant_usage').select('tenant_id', 'period_kind', 'period_start', 'calls', 'spend').orderBy(['tenant_id', 'period_kind', 'period_start']),
    balances: await knex('tenants').select('id', 'balance').orderBy('id'),
    notifications: strip((await knex('notifications').select('*').orderBy('call_uuid')) as Rows, ['id', 'created_at', 'updated_at', 'next_attempt_at']),
    late: strip((await knex('report_late_cdrs').select('*').orderBy(['tenant_id', 'period_kind', 'period_start'])) as Rows, ['id', 'created_at', 'updated_at', 'marked_at']),
  };
}

t.test('the thread leaves what the main thread leaves, and the main connection runs none of its statements', async (t) => {
  const [threaded, reference] = [await sqlite(t), await sqlite(t)];
  const ids: number[] = [];
  for (const db of [threaded, reference]) {
    ids.push(await addTenant(db.knex, { balance: '100.0000' }));
    await addTenant(db.knex, { balance: null, timezone: 'America/New_York' });
  }
  const [sh, ny] = [ids[0], ids[0] + 1];
  // The snapshot's tenants: New York's zone, and Shanghai's missed-call address.
  const inForce = new Map([
    [sh, { id: sh, timezone: 'Asia/Shanghai', missedCallNotify: 'ops@example.com' }],
    [ny, { id: ny, timezone: 'America/New_York', missedCallNotify: null }],
  ]);
  const records: CdrRecord[] = [];
  for (let i = 0; i < 120; i++) {
    const tenant = [sh, ny, null][i % 3] ?? null;
    records.push(i % 5 === 0 ? missed(i, { tenant_id: tenant }) : cdr(i, { tenant_id: tenant, cost: `${(i % 7) + 1}.2500` }));
  }
  records.push(records[10]); // spooled twice: written and charged once

  const statements: string[] = [];
  threaded.knex.on('query', (q: { sql: string }) => statements.push(q.sql));
  const viaThread = writerFor(t, threaded, new ThreadRunner(threaded.url), () => inForce);
  const onMain = writerFor(t, reference, inProcessRunner(reference.knex), () => inForce);
  for (const w of [viaThread, onMain]) {
    await w.spool.open();
    for (const r of records) await w.writer.record(r);
    await w.writer.flush();
    t.same(segments(w.dir), [], 'every segment written and removed');
  }
  t.same(statements.filter((s) => /cdrs|tenant_usage|notifications|report_late_cdrs/i.test(s)), [], 'no statement of the batch on the main connection');

  const [got, want] = [await state(threaded.knex), await state(reference.knex)];
  t.equal(got.cdrs.length, 120, '120 rows (one spooled twice)');
  t.ok(want.usage.length >= 4, `${want.usage.length} tenant_usage rows`);
  t.ok(want.notifications.length > 0, `${want.notifications.length} missed-call notifications (the address crossed the thread)`);
  t.ok(want.late.length > 0, `${want.late.length} late report marks (the clock crossed the thread)`);
  for (const table of Object.keys(want)) t.same(got[table], want[table], `the same ${table}`);
  t.equal(await counter(viaThread.metrics.cdrsWritten), 120, 'hotline_cdrs_written_total counts the new rows the thread reported');
});

t.test('errors come back with their codes: a refused record is quarantined alone, a thread that stopped keeps the spool', async (t) => {
  const db = await sqlite(t);
  const { writer, spool, metrics, dir } = writerFor(t, db, new ThreadRunner(db.url));
  await spool.open();
  const good = Array.from({ length: 6 }, (_, i) => cdr(i));
  const bad = cdr(50, { outcome: null as unknown as 'answered' });
  for (const r of [...good.slice(0, 3), bad, ...good.slice(3)]) await writer.record(r);
  await writer.flush();
  t.equal(Number(((await db.knex('cdrs').count({ n: '*' }))[0] as { n: unknown }).n), 6, 'the good records written');
  const q = quarantined(dir);
  t.equal(q.length, 1, 'the refused one quarantined alone');
  t.match(q[0]?.reason ?? '', /SQLITE_CONSTRAINT_NOTNULL/, 'with the code the thread saw');
  t.equal(await counter(metrics.cdrsQuarantined), 1);

  // The same error, crossed by hand: the writer's decisions read the same on both sides.
  const refused = await db.knex('cdrs').insert({ ...cdr(60), outcome: null }).catch((e: unknown) => e);
  const crossed = fromThreadError(toThreadError(refused));
  t.equal((crossed as { code?: string }).code, 'SQLITE_CONSTRAINT_NOTNULL');
  t.equal(isDataError(crossed), isDataError(refused), 'a data error on both sides');
  t.equal(requiredColumnNotWritten(crossed, [cdr(61)]), requiredColumnNotWritten(refused, [cdr(61)]), 'the column check reads the same');
  const data = fromThreadError(toThreadError(new CdrDataError('CDR_BAD_COST', 'cost is not an amount of money')));
  t.ok(data instanceof CdrDataError && data.code === 'CDR_BAD_COST', 'a CdrDataError comes back as one, with its code');
});

t.test('a thread that could not start keeps the batch in the spool and is started again at the next batch', async (t) => {
  const db = await sqlite(t);
  // The database's folder is a file for now: the thread fails as it loads (making that folder).
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-thread-'));
  t.teardown(() => fs.rmSync(parent, { recursive: true, force: true }));
  const folder = path.join(parent, 'db');
  fs.writeFileSync(folder, 'not a folder');
  const url = `sqlite:${path.join(folder, 'cdrs.db')}`;
  const runner = new ThreadRunner(url);
  t.teardown(() => runner.close());
  const err = await runner.write([cdr(1)], undefined, () => NOW).catch((e: unknown) => e);
  t.ok(err instanceof CdrThreadError, 'the batch fails with CdrThreadError', { err });
  t.equal((err as CdrThreadError).code, 'CDR_THREAD_STOPPED');
  t.notOk(isDataError(err), 'not a data error: the writer keeps the records and retries');

  const { writer, spool, dir } = writerFor(t, db, runner);
  await spool.open();
  await writer.record(cdr(2));
  await writer.flush();
  t.equal(await new CdrSpool(dir).countRecords(), 1, 'kept in the spool');
  t.same(quarantined(dir), [], 'nothing quarantined');

  // The folder is put right (the database copied there): the next batch starts a new thread.
  fs.rmSync(folder);
  fs.mkdirSync(folder);
  await db.knex.raw('PRAGMA wal_checkpoint(TRUNCATE)');
  fs.copyFileSync(db.url.slice('sqlite:'.length), path.join(folder, 'cdrs.db'));
  const moved = createKnex(url);
  t.teardown(() => moved.destroy());
  const result = await runner.write([cdr(3)], undefined, () => NOW);
  t.equal(result.fresh, 1, 'written by the new thread');
  t.equal(Number(((await moved('cdrs').count({ n: '*' }))[0] as { n: unknown }).n), 1, 'the row is in the database');
});

t.test('the thread starts with the writer, before its first batch: the first CDRs after a start do not wait for it', async (t) => {
  const db = await sqlite(t);
  const runner = new ThreadRunner(db.url);
  t.teardown(() => runner.close());
  t.equal(runner.whenUp(), null, 'no thread before');
  const { writer, dir } = writerFor(t, db, runner);
  await writer.start();
  const up = runner.whenUp();
  t.ok(up, 'started by the writer\'s start, no batch out');
  t.equal(await up, true, 'up: its code loaded, its connection open');
  t.equal(runner.batchesOut(), null, 'and none sent');
  await writer.record(cdr(1));
  await writer.flush();
  t.equal(runner.whenUp(), up, 'the first batch went to that thread');
  t.equal(await new CdrSpool(dir).countRecords(), 0, 'written');
  t.equal(Number(((await db.knex('cdrs').count({ n: '*' }))[0] as { n: unknown }).n), 1);
  // On the main thread there is nothing to start.
  const prepared: string[] = [];
  const main = { ...inProcessRunner(db.knex), prepare: () => void prepared.push('prepare') };
  await writerFor(t, db, main).writer.start();
  t.same(prepared, ['prepare'], 'every runner is asked once, at the writer\'s start');
});

t.test('a thread started ahead and never sent a batch does not keep the process alive', async (t) => {
  const db = await sqlite(t);
  // runTsChild resolves when the child has exited (it fails after 60 s otherwise).
  t.same(await runTsChild<{ up: boolean }>(path.join(__dirname, 'prepared-thread-child.ts'), [db.url]), { up: true });
});

t.test('closed while it still loads its code (a stop during the daemon\'s start): ended at once, not waited for', async (t) => {
  const db = await sqlite(t);
  const runner = new ThreadRunner(db.url);
  runner.prepare();
  const up = runner.whenUp();
  await runner.close();
  t.equal(await up, false, 'it ended before it was up');
  t.equal(runner.whenUp(), null);
});

t.test('a thread started ahead that cannot open its database: said in the log, and the next batch starts another', async (t) => {
  const db = await sqlite(t);
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-thread-'));
  t.teardown(() => fs.rmSync(parent, { recursive: true, force: true }));
  // The database's folder is a file: opening the connection fails.
  fs.writeFileSync(path.join(parent, 'db'), 'not a folder');
  const { log, lines } = capturingLogger();
  const broken = new ThreadRunner(`sqlite:${path.join(parent, 'db', 'cdrs.db')}`, {}, log);
  t.teardown(() => broken.close());
  broken.prepare();
  t.equal(await broken.whenUp(), false, 'it never came up');
  await until('the failure logged', () => lines.length > 0);
  t.match(lines, [{ level: 40, msg: 'the CDR writer thread stopped with no batch out; the next batch starts another', why: /EEXIST|ENOTDIR/ }], 'with the reason, not [object Object]');

  // The database file is a folder: the thread loads, and its connection cannot be opened.
  fs.mkdirSync(path.join(parent, 'cdrs.db'));
  const unopenable = new ThreadRunner(`sqlite:${path.join(parent, 'cdrs.db')}`, {}, log);
  t.teardown(() => unopenable.close());
  unopenable.prepare();
  t.equal(await unopenable.whenUp(), false, 'not up: its connection could not be opened');
  await until('the failure logged', () => lines.length > 1);
  t.match(lines[1], { msg: 'the CDR writer thread stopped with no batch out; the next batch starts another', why: /^cannot open the database: SQLITE_CANTOPEN: unable to open database file/ }, 'the database\'s own reason');
  const refused = await unopenable.write([cdr(1)], undefined, () => NOW).catch((e: unknown) => e);
  t.ok(refused instanceof CdrThreadError, 'a batch then fails like an outage (kept in the spool)', { refused });
  t.match((refused as Error).message, /cannot open the database: SQLITE_CANTOPEN/, 'with the reason');

  const runner = new ThreadRunner(db.url, { startTimeoutMs: 1 }, log);
  t.teardown(() => runner.close());
  runner.prepare();
  t.ok(runner.whenUp(), 'started');
  await until('the thread given up', () => runner.whenUp() === null);
  t.match(lines[lines.length - 1], { msg: 'the CDR writer thread stopped with no batch out; the next batch starts another', why: 'did not start within 1 ms' }, 'a start past its bound, said too');
  const err = await runner.write([cdr(1)], undefined, () => NOW).catch((e: unknown) => e);
  t.ok(err instanceof CdrThreadError, 'the batch went to a new thread (which, with the same 1 ms bound, fails too)', { err });
  t.match((err as Error).message, 'did not start within 1 ms');
});

/** The nice value of each thread of this process, by thread id, read from /proc (Linux). */
function threadNices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // After the name in parentheses (which may hold spaces and parentheses): field 3 on; nice is field 19.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(fields[16]));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

t.test('CDR_WRITER_THREAD_NICE: the writer thread alone takes the nice value; the main thread and the others keep theirs', { skip: process.platform !== 'linux' && 'a nice value is per thread on Linux only' }, async (t) => {
  const db = await sqlite(t);
  // libuv's pool threads are made by the thread that first queues work, and inherit its nice value:
  // in the daemon the main thread has (the spool, the configuration cache) before the writer starts.
  await fs.promises.stat(os.tmpdir());
  const before = threadNices();
  const own = before.get(process.pid) ?? NaN;
  if (!(own <= 12)) {
    t.comment(`this process already runs at nice ${own}: no room to lower a thread`);
    return;
  }
  const wanted = own + 7;
  const { log, lines } = capturingLogger();
  const runner = new ThreadRunner(db.url, {}, log, wanted);
  t.teardown(() => runner.close());
  runner.prepare();
  t.equal(await runner.whenUp(), true, 'up');
  const after = threadNices();
  const lowered = [...after].filter(([tid, nice]) => !before.has(tid) && nice === wanted);
  t.equal(lowered.length, 1, `one new thread at nice ${wanted}: the writer's`);
  t.equal(after.get(process.pid), own, 'the main thread kept its nice value');
  t.same([...before].filter(([tid, nice]) => after.has(tid) && after.get(tid) !== nice), [], 'no thread that was there changed');
  t.equal((await runner.write([cdr(1)], undefined, () => NOW)).fresh, 1, 'it writes its batches');
  t.same(lines, [], 'nothing to warn about');

  const { log: quiet } = capturingLogger();
  const unchanged = new ThreadRunner(db.url, {}, quiet, 0);
  t.teardown(() => unchanged.close());
  const known = threadNices();
  unchanged.prepare();
  t.equal(await unchanged.whenUp(), true, 'up');
  const added = [...threadNices()].filter(([tid]) => !known.has(tid));
  t.ok(added.length >= 1, 'a new thread');
  t.ok(added.every(([, nice]) => nice === own), '0: it runs at the process\'s own value');
});

t.test('a nice value the thread cannot take is said once in the log, not at every thread started after', async (t) => {
  const db = await sqlite(t);
  const { log, lines } = capturingLogger();
  // As on a system where the nice value is the whole process's: the thread keeps the process's.
  const runner = new ThreadRunner(db.url, {}, log, 10, 'darwin');
  t.teardown(() => runner.close());
  t.equal((await runner.write([cdr(1)], undefined, () => NOW)).fresh, 1, 'the batch is written all the same');
  t.match(lines, [{ level: 40, asked: 10, nice: null, problem: /whole process's on darwin/, msg: /not at the nice value asked \(CDR_WRITER_THREAD_NICE\)/ }]);
  await runner.close(); // the next batch starts another thread, which meets the same
  t.equal((await runner.write([cdr(2)], undefined, () => NOW)).fresh, 1, 'a second thread writes');
  t.equal(lines.length, 1, 'said once');
});

t.test('which runner a database gets', async (t) => {
  const db = await sqlite(t);
  const memory = createKnex('sqlite::memory:');
  t.teardown(() => memory.destroy());
  t.ok(cdrBatchRunner(db.knex, db.url, true) instanceof ThreadRunner, 'an SQLite file: the thread');
  t.notOk(cdrBatchRunner(db.knex, db.url, false) instanceof ThreadRunner, 'CDR_WRITER_THREAD=false: the main thread');
  t.notOk(cdrBatchRunner(memory, 'sqlite::memory:', true) instanceof ThreadRunner, 'an in-memory database is its connection\'s own: the main thread');
  t.notOk(cdrBatchRunner(db.knex, 'mysql://root@127.0.0.1:3306/test', true) instanceof ThreadRunner, 'MariaDB: the main thread');
});

t.test('a call\'s write waits for the batch out (not in SQLite\'s busy handler, which sleeps every call)', async (t) => {
  const db = await sqlite(t);
  const id = await addTenant(db.knex, { max_calls_day: 100, max_calls_month: 1000 });
  const rows = await db.knex<Record<string, unknown>>('tenants').select('*');
  const tenant = buildSnapshot({ tenants: rows, access_numbers: [], destination_groups: [], destinations: [], routing_rules: [], prompts: [] }, 1, NOW).tenants.get(id)!;
  // The first admission creates the period rows; the one measured below only counts.
  t.same(await admitCall(db.knex, tenant, NOW), { admitted: true, counted: true });

  const runner = cdrBatchRunner(db.knex, db.url, true);
  t.teardown(() => runner.close());
  const order: string[] = [];
  // The thread's first batch takes a while (the thread starts, opens its connection): the
  // admission asked meanwhile waits for it instead of writing past it.
  const batch = runner.write([cdr(1, { tenant_id: id })], undefined, () => NOW).then(() => void order.push('batch'));
  const admitted = admitCall(db.knex, tenant, NOW).then((a) => {
    order.push('admission');
    return a;
  });
  t.same(await admitted, { admitted: true, counted: true });
  await batch;
  t.same(order, ['batch', 'admission'], 'the admission wrote after the batch was answered');
  t.equal(writesClear(db.knex), null, 'nothing to wait for once no batch is out');
  const usage: { calls: number } = await db.knex('tenant_usage').where({ tenant_id: id, period_kind: 'day', period_start: '2026-12-05' }).first('calls');
  t.equal(Number(usage.calls), 2, 'both admissions counted');
});

t.test('a batch the thread does not answer in time fails like an outage, and the next batch gets a new thread', async (t) => {
  const db = await sqlite(t);
  // Another process holds the file's write lock: the thread's batch waits in busy_timeout (5 s).
  const other = new Database(db.url.slice('sqlite:'.length));
  t.teardown(() => other.close());
  // The bound counts from when the thread is up (its start, seconds under ts-node on a loaded
  // machine, has a bound of its own); the held lock keeps the batch waiting past it (busy_timeout).
  const bound = 1500;
  const runner = new ThreadRunner(db.url, { batchTimeoutMs: bound });
  t.teardown(() => runner.close());
  await runner.write([cdr(1)], undefined, () => NOW); // the thread is up
  other.exec('BEGIN IMMEDIATE');
  const started = Date.now();
  const err = await runner.write([cdr(2)], undefined, () => NOW).catch((e: unknown) => e);
  t.comment(`failed after ${Date.now() - started} ms`);
  other.exec('COMMIT');
  t.ok(err instanceof CdrThreadError, 'the batch fails with CdrThreadError', { err });
  t.match((err as Error).message, `did not answer a batch within ${bound} ms`, 'at its bound');
  t.notOk(isDataError(err), 'not a data error: the writer keeps the records and retries');
  const third = cdr(3);
  t.equal((await runner.write([third], undefined, () => NOW)).fresh, 1, 'the next batch is written, by a new thread');
  t.equal(Number(((await db.knex('cdrs').where({ call_uuid: third.call_uuid }).count({ n: '*' }))[0] as { n: unknown }).n), 1);
});

t.test('a thread that does not start within its bound is stopped, and its batch fails like an outage', async (t) => {
  const db = await sqlite(t);
  // No thread loads its code and opens a database in a millisecond.
  const runner = new ThreadRunner(db.url, { startTimeoutMs: 1 });
  t.teardown(() => runner.close());
  const err = await runner.write([cdr(1)], undefined, () => NOW).catch((e: unknown) => e);
  t.ok(err instanceof CdrThreadError, 'the batch fails with CdrThreadError', { err });
  t.match((err as Error).message, 'did not start within 1 ms');
  t.notOk(isDataError(err));
});
