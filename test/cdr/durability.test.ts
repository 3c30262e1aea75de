// A CDR batch the database acknowledged must be on disk: the writer deletes its spool segment
// right after. SQLite syncs every commit (test/db/sqlite-durable.test.ts); on MariaDB the writer
// warns at start when innodb_flush_log_at_trx_commit lets acknowledged commits be lost.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { CdrSpool } from '../../src/cdr/spool';
import { flushLogAtCommitProblem, readFlushLogAtCommit } from '../../src/cdr/durability';
import { CdrWriter } from '../../src/cdr/writer';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { dbTargets, withDatabases } from '../helpers/db';

t.test('which settings of innodb_flush_log_at_trx_commit can lose acknowledged CDRs', async (t) => {
  t.equal(flushLogAtCommitProblem(1), null, '1 (the default): synced at every commit');
  t.equal(flushLogAtCommitProblem(null), null, 'SQLite, or not readable: nothing to say');
  t.match(flushLogAtCommitProblem(2), /is 2, not 1: a crash of the database host or a power cut can lose/);
  t.match(flushLogAtCommitProblem(0), /is 0, not 1: a crash of the database server can lose/);
});

t.test('the setting as the database has it', async (t) => {
  withDatabases(t, async (t, knex, target) => {
    const value = await readFlushLogAtCommit(knex);
    if (target === 'sqlite') {
      t.equal(value, null);
      return;
    }
    const [rows] = (await knex.raw('SELECT @@GLOBAL.innodb_flush_log_at_trx_commit AS f')) as [Array<{ f: number | string }>];
    t.equal(value, Number(rows[0].f));
  });
});

t.test('MariaDB at innodb_flush_log_at_trx_commit = 2: the writer says so when it starts', async (t) => {
  const target = dbTargets().find((d) => d.name === 'mariadb')!;
  const db = await target.create();
  t.teardown(() => db.destroy());
  const [rows] = (await db.knex.raw('SELECT @@GLOBAL.innodb_flush_log_at_trx_commit AS f')) as [Array<{ f: number | string }>];
  const before = Number(rows[0].f);
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-durability-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const writer = new CdrWriter(db.knex, new CdrSpool(dir), { flushIntervalMs: 60_000, retryIntervalMs: 0 }, log, new Metrics());
  // A global of the shared test server, for a moment: other tests only run less durably meanwhile.
  await db.knex.raw('SET GLOBAL innodb_flush_log_at_trx_commit = 2');
  try {
    await writer.start();
    await writer.stop();
  } finally {
    await db.knex.raw(`SET GLOBAL innodb_flush_log_at_trx_commit = ${before}`);
  }
  const warning = lines.find((l) => l.innodb_flush_log_at_trx_commit === 2);
  t.ok(warning, 'one warning names the setting');
  t.equal(warning?.level, 40);
  t.match(String(warning?.msg), /power cut can lose the last second of committed CDRs/);
});
