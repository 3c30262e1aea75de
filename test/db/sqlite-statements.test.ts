/**
 * SQLite statements kept compiled (src/db/sqlite-statements.ts), on real better-sqlite3: the same
 * answers as compiling each time, a bounded cache, and the cases where a kept statement could go
 * stale (a schema change, an integer mode set by one query).
 */
import Database from 'better-sqlite3';
import t from 'tap';
import { createKnex } from '../../src/db/connect';
import { cachePreparedStatements, itemsThatStayCompiled, repeatableChunks, STATEMENT_CACHE_MAX_SQL } from '../../src/db/sqlite-statements';

function memoryDb(): Database.Database {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER)');
  db.prepare('INSERT INTO t (id, big) VALUES (1, 9007199254740993)').run();
  return db;
}

t.test('a text seen before is answered from the cache, with the same rows', async (t) => {
  const db = memoryDb();
  const stats = cachePreparedStatements(db);
  const a = db.prepare('SELECT id FROM t WHERE id = ?');
  const b = db.prepare('SELECT id FROM t WHERE id = ?');
  t.equal(a, b, 'one compiled statement');
  t.same(b.all(1), [{ id: 1 }]);
  t.same(a.all(2), []);
  t.equal(stats.hits, 1);
  t.equal(stats.misses, 1);
  db.close();
});

t.test('bounded: the least recently used text goes first; long texts are not kept', async (t) => {
  const db = memoryDb();
  const stats = cachePreparedStatements(db, { size: 2, maxSqlLength: 40 });
  const one = db.prepare('SELECT 1');
  db.prepare('SELECT 2');
  t.equal(db.prepare('SELECT 1'), one, 'used again: now the most recent');
  db.prepare('SELECT 3'); // pushes out SELECT 2, the least recently used
  t.equal(stats.size, 2);
  t.equal(db.prepare('SELECT 1'), one, 'SELECT 1 stayed');
  const misses = stats.misses;
  db.prepare('SELECT 2');
  t.equal(stats.misses, misses + 1, 'SELECT 2 was compiled again');
  const long = `SELECT id FROM t WHERE id IN (${Array.from({ length: 30 }, (_, i) => i).join(', ')})`;
  t.not(db.prepare(long), db.prepare(long), 'a text longer than the limit is compiled each time');
  t.equal(stats.size, 2, 'and not kept');
  db.close();
});

t.test('a text SQLite refuses throws as before and is not kept', async (t) => {
  const db = memoryDb();
  const stats = cachePreparedStatements(db);
  t.throws(() => db.prepare('SELEC nonsense'), /syntax error/);
  t.throws(() => db.prepare('SELEC nonsense'), /syntax error/, 'refused again, not a cached failure');
  t.equal(stats.size, 0);
  db.close();
});

t.test('after a schema change a kept statement sees the new table', async (t) => {
  const db = memoryDb();
  cachePreparedStatements(db);
  t.same(db.prepare('SELECT * FROM t').all(), [{ id: 1, big: 9007199254740992 }]);
  db.exec("ALTER TABLE t ADD COLUMN note TEXT DEFAULT 'x'");
  t.same(db.prepare('SELECT * FROM t').all(), [{ id: 1, big: 9007199254740992, note: 'x' }], 'SELECT * re-prepared by SQLite');
  db.exec('DROP TABLE t');
  t.throws(() => db.prepare('SELECT * FROM t').all(), /no such table/, 'a dropped table is an error, not stale rows');
  db.close();
});

t.test('an integer mode one query set does not leak into the next use of the same text', async (t) => {
  const db = memoryDb();
  cachePreparedStatements(db);
  const sql = 'SELECT big FROM t';
  const first = db.prepare(sql);
  first.safeIntegers(true);
  t.same(first.all(), [{ big: 9007199254740993n }], 'this query asked for BigInt');
  t.same(db.prepare(sql).all(), [{ big: 9007199254740992 }], 'the next one gets the default numbers');
  db.close();
});

t.test('knex on SQLite (createKnex) runs through the cache', async (t) => {
  const knex = createKnex('sqlite::memory:');
  t.teardown(() => knex.destroy());
  await knex.schema.createTable('calls', (table) => {
    table.integer('id').primary();
    table.string('caller');
  });
  for (let i = 1; i <= 20; i++) await knex('calls').insert({ id: i, caller: `1380000${String(i).padStart(4, '0')}` });
  for (let i = 1; i <= 20; i++) {
    const row = (await knex('calls').where({ id: i }).first()) as { caller: string };
    t.equal(row.caller, `1380000${String(i).padStart(4, '0')}`);
  }
  // knex's client is untyped: the pool's raw better-sqlite3 connection.
  const client = knex.client as { acquireConnection(): Promise<Database.Database>; releaseConnection(c: Database.Database): Promise<void> };
  const conn = await client.acquireConnection();
  try {
    t.equal(conn.prepare('select * from `calls` where `id` = ? limit ?'), conn.prepare('select * from `calls` where `id` = ? limit ?'), "knex's own text is kept");
  } finally {
    await client.releaseConnection(conn);
  }
});

t.test('repeatableChunks: powers of two within the bound, adding up, falling, few sizes whatever the count', async (t) => {
  for (const max of [1, 3, 16, 22, 64, 100, 5000]) {
    const seen = new Set<number>();
    for (let count = 0; count <= 700; count++) {
      const sizes = repeatableChunks(count, max);
      const sum = sizes.reduce((a, b) => a + b, 0);
      if (sum !== count) t.fail(`${count} items, max ${max}: the sizes ${sizes.join('+')} add up to ${sum}`);
      for (const [i, size] of sizes.entries()) {
        seen.add(size);
        if (size > max || (size & (size - 1)) !== 0) t.fail(`${count} items, max ${max}: ${size} is not a power of two within the bound`);
        if (i > 0 && size > sizes[i - 1]) t.fail(`${count} items: sizes not falling (${sizes.join(', ')})`);
      }
    }
    t.ok(seen.size <= Math.floor(Math.log2(max)) + 1, `max ${max}: ${seen.size} sizes over every count of 0-700`);
  }
  t.same(repeatableChunks(300, 64), [64, 64, 64, 64, 32, 8, 4]);
  t.same(repeatableChunks(0, 64), []);
  t.same(repeatableChunks(5, Infinity), [4, 1], 'no bound: still ends');
  t.same(repeatableChunks(3, 0), [1, 1, 1], 'a bound below one: one item a statement');
});

t.test('itemsThatStayCompiled: the longest text it allows is within the limit, one item more is not', async (t) => {
  for (const [fixed, item, separator] of [[360, 75, 2], [0, 187, 11], [4000, 30, 2], [100, 1, 0]]) {
    const n = itemsThatStayCompiled(fixed, item, separator);
    const length = (k: number): number => fixed + k * item + (k - 1) * separator;
    t.ok(length(n) <= STATEMENT_CACHE_MAX_SQL, `${fixed}+${n}×${item}: ${length(n)} characters`);
    t.ok(length(n + 1) > STATEMENT_CACHE_MAX_SQL, `one more: ${length(n + 1)} characters, over the limit`);
  }
  t.equal(itemsThatStayCompiled(STATEMENT_CACHE_MAX_SQL * 2, 75, 2), 1, 'text around longer than the limit: still one item a statement');
});
