// ReaderOpener: a reader asked for again and again (the configuration store at each load, the caps
// job every minute) logs a refusal once while it lasts, and says when the reader is back.
import t from 'tap';
import { createLogger } from '../../src/log';
import { ReaderOpener, type SqliteReader } from '../../src/db/sqlite-reader';

class FakeReader implements SqliteReader {
  closed = false;
  all<T>(): T[] {
    return [];
  }
  exec(): void {}
  get inTransaction(): boolean {
    return false;
  }
  close(): void {
    this.closed = true;
  }
}

function refusal(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

t.test('a refusal is logged once per reason while it lasts, and the reader coming back is said once', async (t) => {
  const lines: Array<{ level: number; msg: string; err?: { message: string; code?: string; stack?: string }; refused?: string[] }> = [];
  const log = createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  const script: Array<Error | 'reader' | 'none'> = [
    refusal('SQLITE_CANTOPEN', 'unable to open database file'),
    refusal('SQLITE_CANTOPEN', 'unable to open database file'),
    refusal('SQLITE_CANTOPEN', 'unable to open database file'),
    refusal('SQLITE_NOTADB', 'file is not a database'),
    refusal('SQLITE_CANTOPEN', 'unable to open database file'),
    refusal('SQLITE_NOTADB', 'file is not a database'),
    'reader',
    'reader',
    refusal('SQLITE_CANTOPEN', 'unable to open database file'),
  ];
  const opener = new ReaderOpener(
    () => {
      const next = script.shift();
      if (next instanceof Error) throw next;
      return next === 'reader' ? new FakeReader() : null;
    },
    log,
    { refused: 'the test cannot open its reader; it reads through the shared one', what: 'the test' },
  );
  const got: string[] = [];
  for (let i = 0; i < 9; i++) got.push(opener.tryOpen() === null ? 'null' : 'reader');
  t.same(got, ['null', 'null', 'null', 'null', 'null', 'null', 'reader', 'reader', 'null'], 'null while refused: the caller reads through knex');
  t.same(
    lines.map((l) => [l.level, l.msg, l.err ? `${l.err.code}: ${l.err.message}` : l.refused]),
    [
      [40, 'the test cannot open its reader; it reads through the shared one', 'SQLITE_CANTOPEN: unable to open database file'],
      [40, 'the test cannot open its reader; it reads through the shared one', 'SQLITE_NOTADB: file is not a database'],
      [30, 'the test opened its own connection to the SQLite file again', ['SQLITE_CANTOPEN: unable to open database file', 'SQLITE_NOTADB: file is not a database']],
      [40, 'the test cannot open its reader; it reads through the shared one', 'SQLITE_CANTOPEN: unable to open database file'],
    ],
    'three refusals of one reason: one line; a new reason: a line; the two taking turns: no more; back: a line; the same reason after a success: a line again',
  );
  t.match(lines[0].err?.stack, /unable to open database file/, 'the error itself is logged, its stack with it');
});

t.test('no reader for this database (MariaDB, an in-memory SQLite) is no refusal', async (t) => {
  const lines: string[] = [];
  const opener = new ReaderOpener(() => null, createLogger('debug', { write: (line: string) => void lines.push(line) }), { refused: 'refused', what: 'the test' });
  t.equal(opener.tryOpen(), null);
  t.equal(opener.tryOpen(), null);
  t.same(lines, [], 'nothing logged');
});

t.test('a thrown value that is not an Error is a refusal too', async (t) => {
  const lines: Array<{ err?: { message?: string } }> = [];
  const opener = new ReaderOpener(
    () => {
      throw 'disk gone'; // eslint-disable-line @typescript-eslint/only-throw-error
    },
    createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line) as { err?: { message?: string } }) }),
    { refused: 'refused', what: 'the test' },
  );
  t.equal(opener.tryOpen(), null);
  t.equal(lines.length, 1, 'logged');
});

t.test('a run\'s own logger, when given, carries the lines', async (t) => {
  const own: string[] = [];
  const run: string[] = [];
  const opener = new ReaderOpener(
    () => {
      throw refusal('SQLITE_CANTOPEN', 'unable to open database file');
    },
    createLogger('debug', { write: (line: string) => void own.push(line) }),
    { refused: 'refused', what: 'the test' },
  );
  t.equal(opener.tryOpen(createLogger('debug', { write: (line: string) => void run.push(line) })), null);
  t.same([own.length, run.length], [0, 1]);
});
