import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createKnex, dbKind, fromDbTimestamp, toDbTimestamp } from '../../src/db/connect';
import { TEST_MYSQL_URL } from '../helpers/db';

void t.test('rejects unsupported URLs with a clear message', (t) => {
  for (const url of ['postgres://u:p@h/db', 'foo', '', 'sqlite:', 'sqlite://host/x.db', 'mysql://host']) {
    t.throws(() => createKnex(url), /Unsupported database URL|Invalid database URL/, url);
  }
  try {
    createKnex('postgres://u:secret@h/db');
    t.fail('should throw');
  } catch (err) {
    t.notMatch((err as Error).message, /secret/, 'the password is not echoed');
  }
  t.end();
});

void t.test('sqlite: creates the parent directory and sets the pragmas', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-t-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const knex = createKnex(`sqlite:${path.join(dir, 'a', 'b', 'x.db')}`);
  t.teardown(() => knex.destroy());
  t.equal(dbKind(knex), 'sqlite');
  t.same(await knex.raw('PRAGMA journal_mode'), [{ journal_mode: 'wal' }]);
  t.same(await knex.raw('PRAGMA busy_timeout'), [{ timeout: 5000 }]);
  t.same(await knex.raw('PRAGMA foreign_keys'), [{ foreign_keys: 1 }]);
  t.ok(fs.existsSync(path.join(dir, 'a', 'b', 'x.db')));
});

void t.test('sqlite: relative path and :memory:', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-t-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cwd = process.cwd();
  process.chdir(dir);
  t.teardown(() => process.chdir(cwd));
  const rel = createKnex('sqlite:./var/rel.db');
  await rel.raw('select 1');
  await rel.destroy();
  t.ok(fs.existsSync(path.join(dir, 'var', 'rel.db')), 'relative to the working directory');

  const mem = createKnex('sqlite::memory:');
  t.teardown(() => mem.destroy());
  await mem.schema.createTable('x', (tb) => tb.integer('a'));
  await mem('x').insert({ a: 1 });
  t.same(await mem('x'), [{ a: 1 }], 'one connection, so one in-memory database');
});

void t.test('mariadb: session is UTC and utf8mb4', async (t) => {
  const knex = createKnex(TEST_MYSQL_URL.replace(/^mysql:/, 'mariadb:'), { acquireTimeoutMs: 5000 });
  t.teardown(() => knex.destroy());
  t.equal(dbKind(knex), 'mysql');
  const [rows] = (await knex.raw('SELECT @@session.time_zone AS tz, @@character_set_connection AS cs')) as [
    Array<{ tz: string; cs: string }>,
  ];
  t.same(rows, [{ tz: '+00:00', cs: 'utf8mb4' }]);
});

void t.test('timestamp helpers', (t) => {
  const d = new Date('2026-11-21T01:02:03.004Z');
  t.equal(toDbTimestamp(d), '2026-11-21 01:02:03.004');
  t.equal(fromDbTimestamp('2026-11-21 01:02:03.004')?.toISOString(), d.toISOString(), 'SQLite text is UTC');
  t.equal(fromDbTimestamp(d), d, 'MySQL Dates pass through');
  t.equal(fromDbTimestamp(d.getTime())?.toISOString(), d.toISOString(), 'epoch ms (a Date bound on SQLite)');
  t.equal(fromDbTimestamp(null), null);
  t.throws(() => fromDbTimestamp('yesterday'), /Unreadable database timestamp/);
  t.end();
});
