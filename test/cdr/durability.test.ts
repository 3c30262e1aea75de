// A CDR batch the database acknowledged must be on disk: the writer deletes its spool segment
// right after. SQLite syncs every commit (test/db/sqlite-durable.test.ts); on MariaDB the writer
// warns when innodb_flush_log_at_trx_commit lets acknowledged commits be lost. The server's global
// is read, never changed: the warning's path is driven by an injected reading.
import type { Knex } from 'knex';
import t from 'tap';
import { CdrSpool } from '../../src/cdr/spool';
import { flushLogAtCommitProblem, readFlushLogAtCommit } from '../../src/cdr/durability';
import { CdrWriter } from '../../src/cdr/writer';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { withDatabases } from '../helpers/db';
import { until } from '../helpers/wait';
import { cdr, cdrRows, spoolDir } from './records';

t.test('which settings of innodb_flush_log_at_trx_commit can lose acknowledged CDRs', async (t) => {
  t.equal(flushLogAtCommitProblem(1), null, '1 (the default): synced at every commit');
  t.equal(flushLogAtCommitProblem(3), null, "3 (MariaDB): synced at every commit through the group commit");
  t.equal(flushLogAtCommitProblem(null), null, 'SQLite, or not readable: nothing to say');
  t.match(flushLogAtCommitProblem(2), /is 2, not 1: a crash of the database host or a power cut can lose/);
  t.match(flushLogAtCommitProblem(0), /is 0, not 1: a crash of the database server can lose/);
});

t.test('the setting as the database has it', async (t) => {
  withDatabases(t, async (t, knex, target) => {
    const value = await readFlushLogAtCommit(knex, 5000);
    if (target === 'sqlite') {
      t.equal(value, null);
      return;
    }
    const [rows] = (await knex.raw('SELECT @@GLOBAL.innodb_flush_log_at_trx_commit AS f')) as [Array<{ f: number | string }>];
    t.equal(value, Number(rows[0].f));
  });
});

t.test('a reading that comes as text or NULL (other servers, other drivers)', async (t) => {
  const answering = (f: unknown): Knex => {
    const result = Promise.resolve([[{ f }], []]);
    return { client: { dialect: 'mysql' }, raw: () => Object.assign(result, { timeout: () => result }) } as unknown as Knex;
  };
  t.equal(await readFlushLogAtCommit(answering('2'), 1000), 2);
  t.equal(await readFlushLogAtCommit(answering(null), 1000), null, 'not 0: NULL says nothing');
  t.equal(await readFlushLogAtCommit(answering('ON'), 1000), null);
});

t.test('the writer says so in a warn line, without holding up its start, and asks again when the database did not answer', async (t) => {
  withDatabases(t, async (t, knex) => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const readings: Array<() => Promise<number | null>> = [
      () => Promise.reject(new Error('database away')),
      () => Promise.resolve(2),
    ];
    let asked = 0;
    const dir = spoolDir(t);
    const writer = new CdrWriter(knex, new CdrSpool(dir), { flushIntervalMs: 60_000, retryIntervalMs: 0, readFlushLogAtCommit: () => readings[asked++]() }, log, new Metrics());
    t.teardown(() => writer.stop());
    await writer.start();
    t.equal(asked, 1, 'asked at start');
    await new Promise((r) => setImmediate(r));
    t.equal(lines.filter((l) => l.innodb_flush_log_at_trx_commit !== undefined).length, 0, 'no answer, no warning (and the start went on)');
    await writer.flush();
    t.equal(asked, 1, 'a flush with nothing to write does not ask again (it says nothing about the database)');
    await writer.record(cdr(1));
    await writer.flush();
    t.equal((await cdrRows(knex)).length, 1);
    await until('the warning after the database answered', () => lines.some((l) => l.innodb_flush_log_at_trx_commit === 2));
    const warning = lines.find((l) => l.innodb_flush_log_at_trx_commit === 2);
    t.equal(warning?.level, 40);
    t.match(String(warning?.msg), /power cut can lose the last second of committed CDRs/);
    await writer.record(cdr(2));
    await writer.flush();
    t.equal(asked, 2, 'asked once more, after the first batch the database took, then no more');
  });
});
