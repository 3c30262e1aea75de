/**
 * A quarantined spool line is on disk before its segment is deleted: the quarantine file is then
 * its only copy, and a line that only reached the page cache could be taken back by a power cut
 * (ext4 writes appended data back seconds later, while the unlink is in the next journal commit).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { traceChild } from '../helpers/strace';

t.test('a quarantined line is synced before its segment is deleted (strace, which .ci/run installs)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-quarantine-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { lines, diagnostics } = traceChild(path.join(__dirname, 'quarantine-child.ts'), dir, ['openat', 'fsync', 'fdatasync', 'unlink', 'unlinkat']);
  const written = path.join(dir, 'marker-after');
  if (!t.ok(fs.existsSync(written) && lines.length > 0, 'the child ran under strace to its marker', diagnostics)) return;
  t.equal(fs.readFileSync(written, 'utf8'), '0', 'the segment was deleted');
  const quarantine = fs.readFileSync(path.join(dir, 'spool', 'quarantine.jsonl'), 'utf8');
  t.match(quarantine, /torn-1/, 'the torn line is in quarantine.jsonl');
  const deleted = lines.findIndex((l) => /\bunlink(at)?\(.*segment-1-000000\.jsonl/.test(l));
  t.ok(deleted >= 0, 'the segment\'s unlink traced');
  const before = lines.slice(0, deleted);
  // Either way the data is on disk when the call returns: a synchronized open, or a sync of the file.
  const syncedOpen = before.some((l) => /\bopenat\(.*quarantine\.jsonl.*O_(D)?SYNC/.test(l));
  const synced = before.some((l) => /\b(fsync|fdatasync)\(\d+<[^>]*quarantine\.jsonl>/.test(l));
  t.ok(syncedOpen || synced, 'quarantine.jsonl opened O_DSYNC or synced before the unlink', { trace: before.filter((l) => l.includes('quarantine.jsonl')) });
});
