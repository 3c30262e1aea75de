/**
 * A quarantined spool line is on disk before its segment is deleted: the quarantine file is then
 * its only copy, and a line that only reached the page cache could be taken back by a power cut
 * (ext4 writes appended data back seconds later, while the unlink is in the next journal commit).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

t.test('a quarantined line is synced before its segment is deleted (strace, which .ci/run installs)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-quarantine-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const trace = path.join(dir, 'strace.txt');
  const register = require.resolve('ts-node/register/transpile-only');
  const child = path.join(__dirname, 'quarantine-child.ts');
  // tap's processinfo puts its loader into NODE_OPTIONS of every child: a plain environment.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const run = spawnSync('sh', ['-c', `unset NODE_OPTIONS; exec strace -f -qq -y -o "${trace}" -e trace=openat,fsync,fdatasync,unlink,unlinkat "${process.execPath}" -r "${register}" "${child}" "${dir}"`], {
    encoding: 'utf8',
    timeout: 60_000,
    env,
    cwd: path.join(__dirname, '..', '..'),
  });
  const written = path.join(dir, 'marker-after');
  const diagnostics = { error: String(run.error ?? ''), status: run.status, stderr: (run.stderr ?? '').slice(0, 500) };
  if (!t.ok(fs.existsSync(written) && fs.existsSync(trace), 'the child ran under strace to its marker', diagnostics)) return;
  t.equal(fs.readFileSync(written, 'utf8'), '0', 'the segment was deleted');
  const quarantine = fs.readFileSync(path.join(dir, 'spool', 'quarantine.jsonl'), 'utf8');
  t.match(quarantine, /torn-1/, 'the torn line is in quarantine.jsonl');
  const lines = fs.readFileSync(trace, 'utf8').split('\n');
  const deleted = lines.findIndex((l) => /\bunlink(at)?\(.*segment-1-000000\.jsonl/.test(l));
  t.ok(deleted >= 0, 'the segment\'s unlink traced');
  const before = lines.slice(0, deleted);
  // Either way the data is on disk when the call returns: a synchronized open, or a sync of the file.
  const syncedOpen = before.some((l) => /\bopenat\(.*quarantine\.jsonl.*O_(D)?SYNC/.test(l));
  const synced = before.some((l) => /\b(fsync|fdatasync)\(\d+<[^>]*quarantine\.jsonl>/.test(l));
  t.ok(syncedOpen || synced, 'quarantine.jsonl opened O_DSYNC or synced before the unlink', { trace: before.filter((l) => l.includes('quarantine.jsonl')) });
});
