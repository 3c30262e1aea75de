/**
 * durableTransaction (src/db/durable-transaction.ts) on SQLite: the work commits, the -wal file is
 * synced before it resolves, a failed sync fails it (the caller keeps its copy), a failed
 * transaction rolls back, and the connection is back to synchronous = FULL after each, so no other
 * statement runs without its commit sync. Where the sync runs (not on the main thread) is
 * sqlite-durable.test.ts's, with strace.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { createKnex } from '../../src/db/connect';
import { durableTransaction } from '../../src/db/durable-transaction';

function fileDb(t: Test): { knex: ReturnType<typeof createKnex>; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-durable-'));
  const file = path.join(dir, 'calls.db');
  const knex = createKnex(`sqlite:${file}`);
  t.teardown(async () => {
    await knex.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { knex, file };
}

async function synchronous(knex: ReturnType<typeof createKnex>): Promise<unknown> {
  // Read after a statement has run (the value right after the WAL switch reads 2 whatever the setting).
  await knex.raw('SELECT 1');
  const rows: Array<{ synchronous: number }> = await knex.raw('PRAGMA synchronous');
  return rows[0].synchronous;
}

t.test('the work commits, the -wal file is synced before it resolves, FULL is back after', async (t) => {
  const { knex, file } = fileDb(t);
  await knex.schema.createTable('x', (tb) => tb.integer('n'));
  const synced: string[] = [];
  let committedBeforeSync = false;
  const result = await durableTransaction(knex, async (trx) => {
    await trx('x').insert({ n: 1 });
    return 'done';
  }, async (wal) => {
    synced.push(wal);
    // The transaction is committed (another reader sees it) when the sync starts.
    committedBeforeSync = (await knex('x').count({ c: '*' }))[0].c === 1;
  });
  t.equal(result, 'done');
  t.same(synced, [`${fs.realpathSync(path.dirname(file))}/calls.db-wal`], 'the database\'s -wal file, once');
  t.ok(committedBeforeSync, 'synced after the commit');
  t.equal(await synchronous(knex), 2, 'synchronous = FULL again for every other statement');
  // The real sync (fdatasync on the thread pool) runs without error.
  t.equal(await durableTransaction(knex, async (trx) => trx('x').insert({ n: 2 }).then(() => 2)), 2);
  t.same((await knex('x').orderBy('n').select('n')).map((r: { n: number }) => r.n), [1, 2]);
});

t.test('a sync that fails fails the transaction\'s promise: the caller keeps its copy', async (t) => {
  const { knex } = fileDb(t);
  await knex.schema.createTable('x', (tb) => tb.integer('n'));
  const failure = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
  await t.rejects(durableTransaction(knex, async (trx) => trx('x').insert({ n: 1 }), () => Promise.reject(failure)), { code: 'EIO' });
  t.equal(await synchronous(knex), 2, 'FULL again');
  t.equal(await durableTransaction(knex, async (trx) => trx('x').insert({ n: 1 }).then(() => 'again')), 'again', 'the next one goes through');
});

t.test('work that throws rolls back, nothing is synced, FULL is back, the pool is free', async (t) => {
  const { knex } = fileDb(t);
  await knex.schema.createTable('x', (tb) => tb.integer('n'));
  let synced = 0;
  await t.rejects(
    durableTransaction(knex, async (trx) => {
      await trx('x').insert({ n: 1 });
      throw new Error('refused');
    }, async () => void synced++),
    /refused/,
  );
  t.equal(synced, 0, 'no sync for a rolled-back transaction');
  t.same(await knex('x').select('n'), [], 'rolled back');
  t.equal(await synchronous(knex), 2);
});

t.test('an in-memory database has no -wal file: a plain transaction', async (t) => {
  const knex = createKnex('sqlite::memory:');
  t.teardown(() => knex.destroy());
  await knex.schema.createTable('x', (tb) => tb.integer('n'));
  let synced = 0;
  t.equal(await durableTransaction(knex, async (trx) => trx('x').insert({ n: 1 }).then(() => 'ok'), async () => void synced++), 'ok');
  t.equal(synced, 0);
  t.same(await knex('x').select('n'), [{ n: 1 }]);
});
