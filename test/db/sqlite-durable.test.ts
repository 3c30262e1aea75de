/**
 * A CDR batch committed to SQLite is on disk when the batch write returns: the spool deletes its
 * segment right after, so a commit that only reached the page cache could be taken back by a
 * power cut with the CDR gone from both places. The sync runs off the event loop
 * (src/db/durable-transaction.ts): every call waits while the main thread syncs.
 *
 * Assumptions about SQLite (3.4x as better-sqlite3 12 builds it), checked here: in WAL mode a
 * commit syncs the -wal file (fsync or fdatasync) only when `synchronous` is FULL; with NORMAL,
 * WAL mode's default in that build, it syncs at the next checkpoint. `PRAGMA synchronous` answers 2
 * right after the switch to WAL whatever the setting, and the setting in force once a statement
 * has run (2 FULL, 1 NORMAL).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createKnex } from '../../src/db/connect';
import { migrateLatest } from '../../src/db/migrate';
import { traceBetweenMarkers } from '../helpers/strace';

t.test('the connection runs with synchronous = FULL', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-sync-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const knex = createKnex(`sqlite:${path.join(dir, 'calls.db')}`);
  t.teardown(() => knex.destroy());
  await migrateLatest(knex);
  t.same(await knex.raw('PRAGMA synchronous'), [{ synchronous: 2 }], '2 = FULL, read after statements have run');
});

t.test('a CDR batch syncs the WAL before it returns, on the thread pool (strace, which .ci/run installs)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-sync-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // The child writes one CDR between its markers.
  const between = traceBetweenMarkers(t, path.join(__dirname, 'sqlite-commit-child.ts'), dir, ['openat', 'fsync', 'fdatasync'], '1');
  if (!between) return;
  const syncs = between.filter((l) => /\b(fsync|fdatasync)\(\d+<[^>]*calls\.db-wal>/.test(l));
  t.ok(syncs.length >= 1, `the WAL was synced between the markers (${syncs.length} syncs)`);
  // strace -f starts each line with the thread's id; the main thread's is the process id.
  const main = fs.readFileSync(path.join(dir, 'pid'), 'utf8').trim();
  t.same(syncs.filter((l) => l.trim().split(/\s+/)[0] === main), [], 'none of them on the main thread (the event loop): on libuv\'s thread pool');
  // A checkpoint (it syncs the database file) would sync the WAL whatever the setting: there was none.
  t.same(between.filter((l) => /\b(fsync|fdatasync)\(\d+<[^>]*calls\.db>/.test(l)), [], 'no checkpoint between the markers');
});

t.test('a CDR batch of the writer\'s size opens no temporary file: a full or read-only /var/tmp cannot fail it (strace)', async (t) => {
  // SQLite keeps a statement's journal and RETURNING's rows in temporary files (etilqs_* in
  // SQLITE_TMPDIR, /var/tmp, /usr/tmp or /tmp) once they outgrow a small cache, unless
  // temp_store = MEMORY (src/db/connect.ts). Measured without it: 3 temporary-file writes a CDR at
  // 200 calls/s (bench/PROFILE.md, release 38).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-temp-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // The child writes 2,000 CDRs in one batch between its markers.
  const between = traceBetweenMarkers(t, path.join(__dirname, 'sqlite-big-batch-child.ts'), dir, ['openat', 'open', 'creat'], '2000');
  if (!between) return;
  const opened = between.filter((l) => /\bopenat\(|\bopen\(|\bcreat\(/.test(l));
  // Files made (O_CREAT) anywhere but the database's folder: SQLite's temporary files.
  t.same(opened.filter((l) => /etilqs_/.test(l) || (l.includes('O_CREAT') && !l.includes(`"${dir}/`))), [], 'no file made outside the database\'s folder while the batch ran');
});
