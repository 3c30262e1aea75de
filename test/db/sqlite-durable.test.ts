/**
 * A CDR batch committed to SQLite is on disk when the commit returns: the spool deletes its
 * segment right after, so a commit that only reached the page cache could be taken back by a
 * power cut with the CDR gone from both places.
 *
 * Assumption about SQLite, checked with strace: in WAL mode, a commit syncs the -wal file
 * (fdatasync or fsync) only when `synchronous` is FULL; with NORMAL (better-sqlite3's build
 * default in WAL mode) it syncs at the next checkpoint. The child writes the batch between two
 * marker files and then dies by SIGKILL (no close-time checkpoint). Reading `PRAGMA synchronous`
 * back would not tell: it answers 2 (FULL) in WAL mode whether or not the setting was made.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

t.test('a CDR batch commit syncs the WAL before it returns (strace, which .ci/run installs)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-sync-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const trace = path.join(dir, 'strace.txt');
  const register = require.resolve('ts-node/register/transpile-only');
  const child = path.join(__dirname, 'sqlite-commit-child.ts');
  // tap's processinfo puts its loader into NODE_OPTIONS of every child: a plain environment.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const run = spawnSync('sh', ['-c', `unset NODE_OPTIONS; exec strace -f -qq -y -o "${trace}" -e trace=openat,fsync,fdatasync "${process.execPath}" -r "${register}" "${child}" "${dir}"`], {
    encoding: 'utf8',
    timeout: 60_000,
    env,
    cwd: path.join(__dirname, '..', '..'),
  });
  t.equal(fs.readFileSync(path.join(dir, 'marker-after'), 'utf8'), '1', `the child wrote the CDR (${run.stderr.slice(0, 300)})`);
  const lines = fs.readFileSync(trace, 'utf8').split('\n');
  const before = lines.findIndex((l) => l.includes('marker-before'));
  const after = lines.findIndex((l) => l.includes('marker-after'));
  t.ok(before >= 0 && after > before, 'both markers traced');
  const syncs = lines.slice(before, after).filter((l) => /\b(fsync|fdatasync)\(\d+<[^>]*calls\.db-wal>/.test(l));
  t.ok(syncs.length >= 1, `the WAL was synced between the markers (${syncs.length} syncs)`);
});
