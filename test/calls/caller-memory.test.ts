/**
 * Batched caller memory (src/calls/caller-memory.ts) answers exactly what the single query
 * (`lastAnsweredBy`, which `npm run route -- explain` runs) answers, for every lookup of a batch,
 * on real SQLite and MariaDB; lookups made together leave in one batch (one statement on MariaDB,
 * unions short enough to stay compiled on SQLite); a failing statement fails its own lookups only.
 */
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Knex } from 'knex';
import mysql from 'mysql2/promise';
import { dbTargets, withDatabases } from '../helpers/db';
import { CallerMemory } from '../../src/calls/caller-memory';
import { lastAnsweredBy } from '../../src/calls/call-state';
import { toDbTimestamp } from '../../src/db/connect';
import { openSqliteReader } from '../../src/db/sqlite-reader';
import { STATEMENT_CACHE_MAX_SQL } from '../../src/db/sqlite-statements';
import { until } from '../helpers/wait';

const NOW = new Date('2026-12-02T06:00:00Z');
const hoursAgo = (h: number): Date => new Date(NOW.getTime() - h * 3_600_000);

/** CDRs for the lookups below: answered or not, inside and outside their windows. */
async function seedCdrs(knex: Knex): Promise<void> {
  // A deterministic spread: 3 tenants × 6 callers, answered or not, inside and outside windows,
  // several answers per caller so that the newest must win; two at the very same instant for one
  // caller (either answer is right; both queries must agree with each other is not asked of SQL
  // without a tie-breaker, so the test keeps instants distinct).
  const rows: Array<Record<string, unknown>> = [];
  let n = 0;
  for (let tenant = 1; tenant <= 3; tenant++) {
    for (let c = 0; c < 6; c++) {
      const caller = `1391234${String(c).padStart(4, '0')}`;
      for (let k = 0; k < 4; k++) {
        n++;
        const answered = (tenant + c + k) % 3 !== 0;
        const at = hoursAgo(((tenant * 7 + c * 5 + k * 11) % 40) + n / 1000);
        rows.push({
          call_uuid: `cm-${n}`, started_at: toDbTimestamp(at), outcome: answered ? 'answered' : 'no_answer', tenant_id: tenant, caller,
          answered_at: answered ? toDbTimestamp(at) : null, answered_by: answered ? `1380000${String(n).padStart(4, '0')}` : null,
        });
      }
    }
  }
  // A caller answered, but by nobody recorded (answered_by NULL): not remembered.
  rows.push({ call_uuid: 'cm-null', started_at: toDbTimestamp(hoursAgo(1)), outcome: 'answered', tenant_id: 1, caller: '13900000000', answered_at: toDbTimestamp(hoursAgo(1)), answered_by: null });
  await knex('cdrs').insert(rows);
}

/** Every tenant (one without CDRs) × every caller (one unknown) × four windows, and two odd callers. */
function lookupsOf(): Array<[number, string, Date]> {
  const lookups: Array<[number, string, Date]> = [];
  for (let tenant = 1; tenant <= 4; tenant++) {
    for (let c = 0; c < 7; c++) {
      for (const window of [1, 12, 24, 48]) lookups.push([tenant, `1391234${String(c).padStart(4, '0')}`, hoursAgo(window)]);
    }
  }
  lookups.push([1, '13900000000', hoursAgo(24)]);
  lookups.push([1, "'; DROP TABLE cdrs; --", hoursAgo(24)]);
  return lookups;
}

withDatabases(t, async (t, knex, target) => {
  await seedCdrs(knex);
  const memory = new CallerMemory(knex, { timeoutMs: 30_000 });
  const lookups = lookupsOf();

  const texts: string[] = [];
  const onQuery = (q: { sql: string }): void => void texts.push(q.sql);
  knex.on('query', onQuery);
  const batched = await Promise.all(lookups.map(([tenant, caller, since]) => memory.lookup(tenant, caller, since)));
  knex.removeListener('query', onQuery);
  if (target === 'sqlite') {
    // SQLite compiles every text its cache does not keep: the batch goes as unions of a few fixed sizes, each kept.
    t.ok(texts.length > 1, `${texts.length} statements for one batch of ${lookups.length} lookups`);
    t.ok(texts.every((sql) => sql.length <= STATEMENT_CACHE_MAX_SQL), `each at most ${STATEMENT_CACHE_MAX_SQL} characters (longest ${Math.max(...texts.map((x) => x.length))})`);
    t.ok(new Set(texts).size <= 5, `${new Set(texts).size} distinct texts`);
  } else {
    t.equal(texts.length, Math.ceil(lookups.length / 64), 'MariaDB: one statement for each 64 lookups');
  }
  const single = [];
  for (const [tenant, caller, since] of lookups) single.push(await lastAnsweredBy(knex, tenant, caller, since));
  t.same(batched, single, `${target}: ${lookups.length} lookups, each as the single query answers`);
  t.ok(single.filter((x) => x !== null).length > 20 && single.filter((x) => x === null).length > 20, 'the data has both remembered and unremembered callers');
  t.equal(memory.stats.lookups, lookups.length);
  t.ok(memory.stats.batches <= Math.ceil(lookups.length / 64) + 1, `${memory.stats.batches} batches for ${lookups.length} lookups made together`);

  // One lookup alone leaves at once and gets its answer.
  const before = memory.stats.batches;
  t.equal(await memory.lookup(...lookups[0]), single[0]);
  t.equal(memory.stats.batches, before + 1);

  // A statement that fails fails its own lookups, with the database's error; the next batch works.
  await knex.schema.renameTable('cdrs', 'cdrs_away');
  const failed = await Promise.allSettled([memory.lookup(1, '13912340001', hoursAgo(24)), memory.lookup(2, '13912340002', hoursAgo(24))]);
  t.same(failed.map((r) => r.status), ['rejected', 'rejected'], 'both lookups of the failed statement fail');
  await knex.schema.renameTable('cdrs_away', 'cdrs');
  t.equal(await memory.lookup(...lookups[1]), single[1], 'the next lookup is answered');
});

t.test('SQLite file: the lookups run on the daemon\'s own read-only connection, answer as the single query, and do not wait for knex\'s', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  await seedCdrs(db.knex);
  const reader = openSqliteReader(db.url);
  if (!reader) throw new Error('an SQLite file has a reader');
  t.teardown(() => reader.close());
  const memory = new CallerMemory(db.knex, { timeoutMs: 30_000, reader });
  const lookups = lookupsOf();
  const single = [];
  for (const [tenant, caller, since] of lookups) single.push(await lastAnsweredBy(db.knex, tenant, caller, since));

  // knex's one connection is held by a transaction (a configuration read, an admission): through
  // knex every lookup would wait for it; on the reader they are answered meanwhile.
  const texts: string[] = [];
  db.knex.on('query', (q: { sql: string }) => void texts.push(q.sql));
  let release: () => void = () => undefined;
  const held = db.knex.transaction(async (trx) => {
    await trx.raw('SELECT 1');
    await new Promise<void>((resolve) => (release = resolve));
  });
  await until('the transaction holds knex\'s connection', () => texts.length > 0, 5_000);
  const before = texts.length;
  const batched = await Promise.all(lookups.map(([tenant, caller, since]) => memory.lookup(tenant, caller, since)));
  t.same(batched, single, `${lookups.length} lookups on the reader, each as the single query through knex answers`);
  t.equal(texts.length, before, 'no lookup went through knex');
  release();
  await held;

  // A row knex commits is seen by the next lookup (WAL: the reader reads what was committed).
  t.equal(await memory.lookup(4, '13912340000', hoursAgo(1)), null);
  await db.knex('cdrs').insert({
    call_uuid: 'cm-new', started_at: toDbTimestamp(hoursAgo(0.5)), outcome: 'answered', tenant_id: 4, caller: '13912340000',
    answered_at: toDbTimestamp(hoursAgo(0.5)), answered_by: '13800009999',
  });
  t.equal(await memory.lookup(4, '13912340000', hoursAgo(1)), '13800009999', 'the committed row is remembered');

  // The reader writes nothing, whatever it is given.
  t.throws(() => reader.all('DELETE FROM cdrs RETURNING call_uuid', []), /readonly|query_only|attempt to write/i, 'a write is refused');
  t.equal(Number((await db.knex('cdrs').count({ n: '*' }))[0].n), 74, 'every row still there');

  // A statement that fails (the table renamed by a DBA) fails its own lookups; the next are answered.
  await db.knex.schema.renameTable('cdrs', 'cdrs_away');
  const failed = await Promise.allSettled([memory.lookup(1, '13912340001', hoursAgo(24)), memory.lookup(2, '13912340002', hoursAgo(24))]);
  t.same(failed.map((r) => r.status), ['rejected', 'rejected'], 'both lookups of the failed statement fail');
  await db.knex.schema.renameTable('cdrs_away', 'cdrs');
  t.equal(await memory.lookup(...lookups[1]), single[1], 'the next lookup is answered');

  // Closed (the daemon stopping): a lookup still asked fails, and the call hunts in the normal order.
  reader.close();
  await t.rejects(memory.lookup(...lookups[1]), /not open/);
});

t.test('a reader is opened only on an SQLite file that exists', async (t) => {
  t.equal(openSqliteReader('sqlite::memory:'), null, 'an in-memory database is its connection\'s own');
  t.equal(openSqliteReader('mysql://root@127.0.0.1:3306/test'), null, 'MariaDB answers over the network');
  t.throws(() => openSqliteReader(`sqlite:${path.join(os.tmpdir(), `hotline-no-such-${process.pid}.db`)}`), /unable to open|does not exist/i, 'a file that is not there is not created');
});

t.test('MariaDB: a statement held by a table lock is cancelled once its lookups gave up: the slot frees while the lock is still held', async (t) => {
  const db = await dbTargets()[1].create();
  t.teardown(() => db.destroy());
  // The default: one statement out at a time.
  const memory = new CallerMemory(db.knex, { timeoutMs: 300 });
  // Another session (a DBA's ALTER, a backup) holds the table: the lookup's SELECT waits.
  const locker = await mysql.createConnection(db.url);
  t.teardown(() => locker.end());
  await locker.query('LOCK TABLES cdrs WRITE');
  const started = Date.now();
  const held = memory.lookup(1, '13912345678', hoursAgo(24));
  await new Promise((r) => setTimeout(r, 50));
  const queued = memory.lookup(2, '13912345678', hoursAgo(24));
  await t.rejects(held, { code: 'CALLER_MEMORY_TIMEOUT' }, 'the held statement\'s lookup times out');
  await t.rejects(queued, { code: 'CALLER_MEMORY_TIMEOUT' }, 'the lookup queued behind it times out');
  t.ok(Date.now() - started < 5_000, 'within their bound');
  // The queued lookup was either sent when the slot freed and given up in turn, or expired unsent
  // (when the first cancel took longer than the 50 ms between them): one or the other, once each.
  await until('the held statement is cancelled', () => memory.stats.cancelled >= 1 && memory.stats.cancelled + memory.stats.expired === 2, 5_000);
  // The lock is still held: a new lookup is sent at once (the slot is free), and given up in turn.
  const cancelledBefore = memory.stats.cancelled;
  await t.rejects(memory.lookup(3, '13912345678', hoursAgo(24)), { code: 'CALLER_MEMORY_TIMEOUT' });
  await until('the new statement is cancelled too', () => memory.stats.cancelled === cancelledBefore + 1, 5_000);
  const serverWaiting = async (): Promise<number> => {
    const [rows] = await locker.query("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE 'SELECT % AS k, answered_by FROM%'");
    return Number((rows as Array<{ n: number | string }>)[0].n);
  };
  await until('no cancelled statement left waiting on the server', async () => (await serverWaiting()) === 0, 5_000);
  await locker.query('UNLOCK TABLES');
  t.equal(await memory.lookup(1, '13912345678', hoursAgo(24)), null, 'answered once the lock is gone');
  t.equal(memory.stats.batches, 1, 'the batches given up do not count as answered');
});

t.test('a full queue refuses a lookup at once; the call hunts in the normal order', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const memory = new CallerMemory(db.knex, { timeoutMs: 30_000, maxQueued: 1 });
  // Both asked in the same turn of the loop: the first waits for the flush, the second finds the queue full.
  const first = memory.lookup(1, '13912345678', hoursAgo(24));
  const second = memory.lookup(1, '13912345679', hoursAgo(24));
  await t.rejects(second, { code: 'CALLER_MEMORY_TIMEOUT', message: /1 lookups already waiting/ });
  t.equal(await first, null, 'the queued one is answered');
});
