/**
 * The configuration read on the store's own SQLite connection (src/snapshot/store.ts
 * readConfigTables with a reader, db/sqlite-reader.ts): a table of more rows than a page is read
 * in pages with turns of the event loop between them; it gives the rows one `SELECT *` through
 * knex gives, in the same order; it reads one moment of the database (a DBA's insert committed
 * between two pages is not in this read, and is in the next); and knex's one connection stays free
 * meanwhile, for the calls' own statements. On MariaDB the read through knex is paged the same way,
 * in a REPEATABLE READ transaction; SQLite through knex (no reader) reads a table in one statement.
 */
import t from 'tap';
import { createKnex } from '../../src/db/connect';
import { openSqliteReader, type SqliteReader } from '../../src/db/sqlite-reader';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { ConfigStore, readConfigTables, CONFIG_PAGE_ROWS } from '../../src/snapshot/store';
import { dbTargets, withDatabases } from '../helpers/db';
import { turnsDuring } from '../helpers/wait';

const TENANTS = CONFIG_PAGE_ROWS * 10 + 17;

function tenantRows(from: number, count: number): Array<Record<string, unknown>> {
  return Array.from({ length: count }, (_, i) => ({ id: from + i, name: `tenant ${from + i}` }));
}

async function insertTenants(knex: ReturnType<typeof createKnex>, rows: Array<Record<string, unknown>>): Promise<void> {
  for (let i = 0; i < rows.length; i += 200) await knex('tenants').insert(rows.slice(i, i + 200));
}

function readerOf(t: { teardown(fn: () => void): void }, url: string): SqliteReader {
  const reader = openSqliteReader(url);
  if (!reader) throw new Error(`no reader for ${url}`);
  t.teardown(() => reader.close());
  return reader;
}

/** A reader whose statements a test can watch or break (a class: no getters in object literals, eslint.config.mjs). */
class WatchedReader implements SqliteReader {
  constructor(
    private readonly reader: SqliteReader,
    private readonly hooks: { all?: (sql: string) => void; exec?: (sql: string) => void; close?: (inTransaction: boolean) => void } = {},
  ) {}

  all<T>(sql: string, bindings: readonly unknown[]): T[] {
    this.hooks.all?.(sql);
    return this.reader.all<T>(sql, bindings);
  }

  exec(sql: string): void {
    this.hooks.exec?.(sql);
    this.reader.exec(sql);
  }

  get inTransaction(): boolean {
    return this.reader.inTransaction;
  }

  close(): void {
    this.hooks.close?.(this.reader.inTransaction);
    this.reader.close();
  }
}

withDatabases(t, async (t, knex, target) => {
  // An id below the first page's (SQLite's ids may be negative; MariaDB's are unsigned) and one
  // far above: the pages go by id, whatever the gaps.
  if (target === 'sqlite') await insertTenants(knex, tenantRows(-3, 1));
  await insertTenants(knex, tenantRows(1, TENANTS));
  await insertTenants(knex, tenantRows(10_000_000, 1));
  const single = await knex('tenants').select('*');
  const viaKnex = await turnsDuring(() => readConfigTables(knex));
  const throughKnex = viaKnex.result;
  t.same(throughKnex.tenants, single, `${target}: through knex, the rows and order of one SELECT *`);
  if (target === 'mariadb') {
    t.ok(viaKnex.turns >= 5, `MariaDB: the event loop turned ${viaKnex.turns} times while ${single.length} tenants were read ${CONFIG_PAGE_ROWS} at a time`);
    return;
  }
  const client = knex.client as { config: { connection: { filename: string } } };
  const reader = readerOf(t, `sqlite:${client.config.connection.filename}`);
  const { result, turns } = await turnsDuring(() => readConfigTables(knex, reader));
  t.same(result, throughKnex, `on the reader, every table as through knex (${single.length} tenants)`);
  t.ok(turns >= 5, `the event loop turned ${turns} times while ${single.length} tenants were read ${CONFIG_PAGE_ROWS} at a time`);
});

t.test('SQLite reader: a row committed by another connection between two pages is not in the read, and is in the next', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  await insertTenants(db.knex, tenantRows(1, TENANTS));
  const reader = readerOf(t, db.url);
  // A DBA's session: a connection of its own to the same file.
  const dba = createKnex(db.url);
  t.teardown(() => dba.destroy());
  await dba('tenants').count({ n: '*' });

  let inserted = false;
  let turns = 0;
  const reading = readConfigTables(db.knex, reader);
  // Two turns in: the read has begun and has pages to go (its pages are its turns).
  const insertSoon = (): void => {
    if (++turns < 2) {
      setImmediate(insertSoon);
      return;
    }
    void dba('tenants').insert(tenantRows(1_000_000, 1)).then(() => {
      inserted = true;
    });
  };
  setImmediate(insertSoon);
  const read = await reading;
  t.ok(inserted, 'the insert was committed before the read ended');
  t.equal(read.tenants.length, TENANTS, 'the read is of the moment it began: the new tenant is not in it');
  const next = await readConfigTables(db.knex, reader);
  t.equal(next.tenants.length, TENANTS + 1, 'the next read has it');
});

t.test('MariaDB: the pages are read in one REPEATABLE READ transaction, even where sessions default to READ COMMITTED', async (t) => {
  // What it assumes about InnoDB: a REPEATABLE READ transaction's consistent reads all see the
  // snapshot of its first read, whatever is committed meanwhile. A commit between two pages cannot
  // be placed without a race (the pages are network round trips), so the test checks that the
  // read asks for that isolation and reads every page inside the one transaction.
  const db = await dbTargets()[1].create();
  t.teardown(() => db.destroy());
  await insertTenants(db.knex, tenantRows(1, TENANTS));
  // One connection, its session's default isolation READ COMMITTED (a carrier's my.cnf may say so).
  const knex = createKnex(db.url, { poolMax: 1 });
  t.teardown(() => knex.destroy());
  await knex.raw('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
  const texts: string[] = [];
  knex.on('query', (q: { sql: string }) => void texts.push(q.sql));
  const read = await readConfigTables(knex);
  t.equal(read.tenants.length, TENANTS);
  t.match(texts[0], /^SET TRANSACTION ISOLATION LEVEL repeatable read;?$/i, 'the isolation asked for first');
  t.match(texts[1], /^BEGIN;?$/i, 'then the transaction');
  t.match(texts[texts.length - 1], /^COMMIT;?$/i, 'ended once all pages were read');
  const tenantPages = texts.filter((sql) => /^select \* from `tenants`/i.test(sql));
  t.equal(tenantPages.length, Math.ceil(TENANTS / CONFIG_PAGE_ROWS), `${tenantPages.length} pages of tenants, all between the BEGIN and the COMMIT`);
  t.equal(texts.filter((sql) => /^(BEGIN|COMMIT)/i.test(sql)).length, 2, 'one transaction');
  const [[level]] = (await knex.raw('SELECT @@session.tx_isolation AS level')) as [[{ level: string }]];
  t.equal(level.level, 'READ-COMMITTED', 'the session\'s own default is left as it was');
});

t.test('SQLite reader: knex\'s one connection stays free while the configuration is read', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  await insertTenants(db.knex, tenantRows(1, TENANTS));
  const reader = readerOf(t, db.url);
  let readDone = false;
  const reading = readConfigTables(db.knex, reader).then(() => {
    readDone = true;
  });
  // A call's own statement (an admission's UPDATE, here a write through knex) asked as the read begins.
  await db.knex('tenants').where({ id: 1 }).update({ name: 'renamed' });
  t.notOk(readDone, 'the write through knex was done while the read still had pages to go');
  await reading;
  t.throws(() => reader.all('UPDATE tenants SET name = ? WHERE id = 1 RETURNING id', ['x']), /readonly|query_only|attempt to write/i, 'the reader writes nothing');
});

t.test('the store opens its reader once, reads through knex while it cannot (said once), and closes it when stopped', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  await insertTenants(db.knex, tenantRows(1, 3));
  const lines: string[] = [];
  const log = createLogger('warn', { write: (line: string) => void lines.push(line) });
  let asked = 0;
  let refuse = true;
  let opened: SqliteReader | null = null;
  let closed = 0;
  const store = new ConfigStore(db.knex, { pollIntervalMs: 60_000, fullReloadIntervalS: 0 }, log, new Metrics(), undefined, {
    reader: () => {
      asked++;
      if (refuse) throw new Error('unable to open database file');
      const reader = openSqliteReader(db.url);
      if (!reader) throw new Error('no reader');
      opened = reader;
      return new WatchedReader(reader, { close: () => void closed++ });
    },
  });
  const texts: string[] = [];
  db.knex.on('query', (q: { sql: string }) => void texts.push(q.sql));
  await store.start();
  t.equal(store.current.tenants.size, 3, 'loaded through knex while the reader cannot be opened');
  t.ok(texts.some((sql) => /from `tenants`/i.test(sql)), 'the tables were read through knex');
  await store.poll();
  const refusals = lines.filter((l) => l.includes('cannot open its own connection'));
  t.equal(refusals.length, 1, 'the refusal is logged once, however often it is asked again');
  t.ok(asked >= 2, `asked again at each load (${asked})`);

  refuse = false;
  await insertTenants(db.knex, tenantRows(100, 1));
  texts.length = 0;
  t.equal(await store.poll(), true, 'the new tenant is noticed');
  t.equal(store.current.tenants.size, 4);
  t.same(texts.filter((sql) => /select \* from `/i.test(sql)), [], 'the tables read on the reader, not through knex (the fingerprint poll is knex\'s)');
  const askedWhenOpen = asked;
  await store.poll();
  t.equal(asked, askedWhenOpen, 'opened once');
  await store.stop();
  t.equal(closed, 1, 'stop() closes it');
  await store.poll();
  t.equal(asked, askedWhenOpen, 'not opened again after stop()');
  (opened as SqliteReader | null)?.close();
});

t.test('the store\'s read that fails on a page: its own error, the transaction ended, the connection dropped, the next read on a fresh one', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  await insertTenants(db.knex, tenantRows(1, CONFIG_PAGE_ROWS * 3));
  const opened: Array<{ reader: SqliteReader; closed: boolean; inTransactionAtClose: boolean | null }> = [];
  let failSecondPage = true;
  const store = new ConfigStore(db.knex, { pollIntervalMs: 60_000, fullReloadIntervalS: 0 }, createLogger('silent'), new Metrics(), undefined, {
    reader: () => {
      const reader = readerOf(t, db.url);
      const entry = { reader, closed: false, inTransactionAtClose: null as boolean | null };
      opened.push(entry);
      let pages = 0;
      return new WatchedReader(reader, {
        all: (sql) => {
          if (/from [`"]?tenants[`"]?/i.test(sql) && ++pages === 2 && failSecondPage) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
        },
        close: (inTransaction) => {
          entry.inTransactionAtClose = inTransaction;
          entry.closed = true;
        },
      });
    },
  });
  t.teardown(() => store.stop());
  await t.rejects(store.start(), /disk I\/O error/, 'the page\'s own error (there is no cache to start from)');
  t.equal(opened.length, 1);
  t.ok(opened[0].closed, 'the connection the read failed on is dropped');
  t.equal(opened[0].inTransactionAtClose, false, 'with no transaction left open on it');
  failSecondPage = false;
  t.equal(await store.poll(), true, 'the next load works');
  t.equal(opened.length, 2, 'on a fresh connection');
  t.equal(store.current.tenants.size, CONFIG_PAGE_ROWS * 3);
});

t.test('two reloads at once on the store\'s connection share one read; stop() waits for it', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  await insertTenants(db.knex, tenantRows(1, CONFIG_PAGE_ROWS * 4));
  let begins = 0;
  const store = new ConfigStore(db.knex, { pollIntervalMs: 60_000, fullReloadIntervalS: 0 }, createLogger('silent'), new Metrics(), undefined, {
    reader: () => {
      return new WatchedReader(readerOf(t, db.url), {
        exec: (sql) => {
          if (sql === 'BEGIN') begins++;
        },
      });
    },
  });
  await store.start();
  const before = begins;
  const texts: string[] = [];
  db.knex.on('query', (q: { sql: string }) => void texts.push(q.sql));
  const both = await Promise.all([store.poll(), store.poll()]);
  t.same(both, [true, true], 'both reloads succeed');
  t.equal(begins - before, 1, 'one read transaction for the two');
  t.same(texts.filter((sql) => /from `tenants`/i.test(sql)), [], 'neither read the tables through knex');
  const pending = store.poll();
  await store.stop();
  await t.resolves(pending, 'a poll under way when stop() came finishes on its connection');
});
