// The call journal (src/cdr/journal.ts) on a real folder: what it writes and when, what a reader
// makes of it (torn and damaged lines included), the file kept small by writing it afresh, a
// failed write followed by a fresh file, and a clean close leaving nothing behind.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { CallJournal, journalFiles, readJournal, type JournalEntry, type JournalOptions, type RecordSource } from '../../src/cdr/journal';
import { createLogger } from '../../src/log';
import { until } from '../helpers/wait';

function folder(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-journal-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function logged(): { options: Pick<JournalOptions, 'log'>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { options: { log }, lines };
}

/** Calls by name on a journal, as sessions hold their entries (a note with another source changes what is read). */
function byName(journal: CallJournal): { note(call: string, source: RecordSource): void; end(call: string): void } {
  const entries = new Map<string, JournalEntry>();
  return {
    note(call, source) {
      const entry = entries.get(call) ?? journal.track(call, source);
      entries.set(call, entry);
      entry.source = source;
      journal.note(entry);
    },
    end(call) {
      const entry = entries.get(call);
      if (entry) journal.end(entry);
    },
  };
}

function read(journal: CallJournal): ReturnType<typeof readJournal> {
  return readJournal(fs.existsSync(journal.file) ? fs.readFileSync(journal.file, 'utf8') : '');
}

/** Waits until what is gathered has been written (flushMs 5). */
async function flushed(journal: CallJournal): Promise<void> {
  await until('journal written', () => !(journal as unknown as { timer: unknown; draining: unknown }).timer && !(journal as unknown as { draining: unknown }).draining);
}

t.test('a noted call is written with its record as it is at the flush; its end takes it out', async (t) => {
  const dir = folder(t);
  let clock = 1_000;
  const journal = CallJournal.open(dir, { ...logged().options, flushMs: 5, now: () => clock });
  const calls = byName(journal);
  t.teardown(() => journal.close());
  const facts = { answered: null as number | null };
  calls.note('call-1', () => ({ answered: facts.answered }));
  facts.answered = 500; // changed after note, before the flush: the flush reads it then
  await flushed(journal);
  t.same(read(journal), { open: [{ call: 'call-1', record: { answered: 500 } }], aliveMs: 1_000, invalidLines: [] });
  calls.note('call-2', () => ({ n: 2 }));
  calls.note('call-1', () => ({ answered: 600 }));
  clock = 2_000;
  await flushed(journal);
  t.same(read(journal).open, [{ call: 'call-2', record: { n: 2 } }, { call: 'call-1', record: { answered: 600 } }], 'the last record of a call wins');
  calls.end('call-1');
  await flushed(journal);
  t.same(read(journal).open, [{ call: 'call-2', record: { n: 2 } }]);
  t.equal(journal.openCalls, 1);
});

t.test('a call that begins and ends between two flushes is never written', async (t) => {
  const dir = folder(t);
  const journal = CallJournal.open(dir, { ...logged().options, flushMs: 20 });
  const calls = byName(journal);
  calls.note('short', () => ({ n: 1 }));
  calls.end('short');
  await new Promise((r) => setTimeout(r, 60));
  t.notOk(fs.existsSync(journal.file), 'no file: nothing to write');
  await journal.close();
  t.same(fs.readdirSync(dir), []);
});

t.test('alive lines every interval while calls are open, none when none is', async (t) => {
  const dir = folder(t);
  let clock = 10_000;
  const journal = CallJournal.open(dir, { ...logged().options, flushMs: 1, aliveIntervalMs: 20, now: () => clock });
  const calls = byName(journal);
  t.teardown(() => journal.close());
  calls.note('a', () => ({}));
  await flushed(journal);
  clock = 15_000;
  await until('an alive line at 15000', () => read(journal).aliveMs === 15_000);
  calls.end('a');
  await flushed(journal);
  const size = fs.statSync(journal.file).size;
  clock = 20_000;
  await new Promise((r) => setTimeout(r, 100));
  t.equal(fs.statSync(journal.file).size, size, 'no call open: nothing more written');
  t.equal(read(journal).aliveMs, 15_000);
});

t.test('the file is written afresh with the open calls once it has grown past its bound', async (t) => {
  const dir = folder(t);
  const journal = CallJournal.open(dir, { ...logged().options, flushMs: 1, minCompactBytes: 2_000 });
  const calls = byName(journal);
  t.teardown(() => journal.close());
  calls.note('stays', () => ({ pad: 'x'.repeat(100) }));
  let largest = 0;
  for (let i = 0; i < 200; i++) {
    calls.note(`c${i}`, () => ({ pad: 'y'.repeat(100), i }));
    await flushed(journal);
    calls.end(`c${i}`);
    await flushed(journal);
    largest = Math.max(largest, fs.statSync(journal.file).size);
  }
  // 200 calls wrote about 200 × 150 bytes of lines; the file never held more than its bound and a flush.
  t.ok(largest < 2_000 + 400, `the file stayed small (largest ${largest} bytes)`);
  t.same(read(journal).open.map((o) => o.call), ['stays'], 'the open call survived every rewrite');
  t.same(fs.readdirSync(dir), [path.basename(journal.file)], 'no temporary file left');
});

/**
 * A full disk under the journal: appends go to /dev/full (every write fails with ENOSPC) and a
 * fresh file cannot be made either (its path is under /dev/full, not a folder). Returns how to
 * give the disk back.
 */
async function breakDisk(journal: CallJournal): Promise<() => void> {
  const inside = journal as unknown as { handle: fsp.FileHandle; file: string };
  const real = inside.handle;
  const file = inside.file;
  inside.handle = await fsp.open('/dev/full', 'w');
  await real.close();
  inside.file = '/dev/full/calls-in-progress-1-000000001.jsonl';
  return () => {
    inside.file = file;
  };
}

t.test('a failed write: counted, logged once, retried once an alive interval (not at every flush), then the whole state written afresh', async (t) => {
  const dir = folder(t);
  const { options, lines } = logged();
  let failures = 0;
  const journal = CallJournal.open(dir, { ...options, flushMs: 1, aliveIntervalMs: 100, onWriteFailure: () => failures++ });
  const calls = byName(journal);
  t.teardown(() => journal.close());
  calls.note('a', () => ({ n: 1 }));
  await flushed(journal);
  const mend = await breakDisk(journal);
  // Calls keep changing for 500 ms, a flush every few ms, while the disk stays full.
  const busyUntil = Date.now() + 500;
  let i = 0;
  for (; Date.now() < busyUntil; i++) {
    calls.note(`x${i}`, () => ({ i }));
    if (i > 0) calls.end(`x${i - 1}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  calls.end(`x${i - 1}`);
  await until('a retry on the alive tick', () => failures >= 2);
  t.ok(failures <= 8, `${failures} failed writes in 500 ms of changes: the first, then one an alive interval (${i} flushes' worth of changes)`);
  t.equal(lines.filter((l) => /could not be written/.test(String(l.msg))).length, 1, 'logged once for the run of failures');
  mend();
  await until('written again', () => lines.some((l) => l.msg === 'call journal: written again'));
  t.same(read(journal).open.map((o) => o.call), ['a'], 'a fresh file: the call still open, none of those that came and went');
  t.equal(lines.filter((l) => /could not be written/.test(String(l.msg))).length, 1);
});

t.test('a failed write of the last call\'s end is retried with no call open: the file does not keep it', async (t) => {
  const dir = folder(t);
  const { options, lines } = logged();
  const journal = CallJournal.open(dir, { ...options, flushMs: 1, aliveIntervalMs: 50 });
  const calls = byName(journal);
  t.teardown(() => journal.close());
  calls.note('last', () => ({ n: 1 }));
  await flushed(journal);
  const file = journal.file;
  const mend = await breakDisk(journal);
  calls.end('last');
  await until('the end failed', () => lines.some((l) => /could not be written/.test(String(l.msg))));
  t.same(readJournal(fs.readFileSync(file, 'utf8')).open.map((o) => o.call), ['last'], 'on disk the call is still open');
  mend();
  await until('written again', () => lines.some((l) => l.msg === 'call journal: written again'));
  t.same(read(journal).open, [], 'no call left open');
});

t.test('a record that cannot be serialised does not stop the others', async (t) => {
  const dir = folder(t);
  const { options, lines } = logged();
  const journal = CallJournal.open(dir, { ...options, flushMs: 1 });
  const calls = byName(journal);
  t.teardown(() => journal.close());
  const loop: Record<string, unknown> = {};
  loop.self = loop;
  calls.note('bad', () => loop);
  calls.note('good', () => ({ ok: true }));
  await flushed(journal);
  t.same(read(journal).open, [{ call: 'good', record: { ok: true } }]);
  t.ok(lines.some((l) => l.call_uuid === 'bad' && /could not be written/.test(String(l.msg))));
});

t.test('close: with no call open the file goes; with calls open it stays, written', async (t) => {
  const dir = folder(t);
  const a = CallJournal.open(dir, { ...logged().options, flushMs: 1 });
  const callsA = byName(a);
  callsA.note('x', () => ({}));
  await flushed(a);
  callsA.end('x');
  await a.close();
  t.notOk(fs.existsSync(a.file), 'clean stop: nothing to recover');
  const b = CallJournal.open(dir, { ...logged().options, flushMs: 60_000 });
  const callsB = byName(b);
  callsB.note('y', () => ({ n: 1 }));
  await b.close();
  t.same(read(b).open, [{ call: 'y', record: { n: 1 } }], 'what was gathered is written at close');
  callsB.note('z', () => ({}));
  t.same(read(b).open.map((o) => o.call), ['y'], 'nothing noted after close');
});

t.test('readJournal: torn and damaged lines are named, ended calls and alive lines read, never throws', async (t) => {
  const text = [
    '{"call":"a","record":{"n":1}}',
    '{"call":"b","record":{"n":2}}',
    '{"alive":100}',
    'garbage',
    '{"ended":"a"}',
    '["an","array"]',
    '{"call":"","record":{}}',
    '{"alive":"soon"}',
    '',
    '{"call":"b","record":{"n":3}}',
    '{"alive":90}',
    '{"ended":"never-written"}',
    '{"call":"c","rec',
  ].join('\n');
  t.same(readJournal(text), { open: [{ call: 'b', record: { n: 3 } }], aliveMs: 100, invalidLines: [4, 6, 7, 8, 13] });
  t.same(readJournal(''), { open: [], aliveMs: null, invalidLines: [] });
  for (const s of ['\u0000\u0001', '{"call":1,"record":{}}', 'null', '{}', '\n\n\n', '{"ended":null}']) t.doesNotThrow(() => readJournal(s));
});

t.test('journalFiles: journals oldest first, temporary files apart, nothing else', async (t) => {
  const dir = folder(t);
  for (const n of ['calls-in-progress-200-000000001.jsonl', 'calls-in-progress-100-000000009.jsonl', 'calls-in-progress-100-000000002.jsonl', 'calls-in-progress-100-000000002.jsonl.tmp', 'segment-1-000001.jsonl', 'calls-in-progress-1-1.jsonl.unreadable']) fs.writeFileSync(path.join(dir, n), '');
  const found = await journalFiles(dir);
  t.same(found.journals.map((f) => path.basename(f)), ['calls-in-progress-100-000000002.jsonl', 'calls-in-progress-100-000000009.jsonl', 'calls-in-progress-200-000000001.jsonl']);
  t.same(found.leftovers.map((f) => path.basename(f)), ['calls-in-progress-100-000000002.jsonl.tmp']);
  t.same(await journalFiles(path.join(dir, 'missing')), { journals: [], leftovers: [] });
});
