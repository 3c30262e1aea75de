// Changing CLUSTER_WORKERS loses no CDR: segments and call journals move between the spool folders under their locks.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { SpoolLock } from '../../src/cdr/spool-lock';
import { moveSegments, workerSpoolDir, workerSpoolDirs } from '../../src/cluster/spool-layout';

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-layout-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function segment(dir: string, name: string, uuid: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), `${JSON.stringify({ call_uuid: uuid })}\n`);
}

function uuidsIn(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.startsWith('segment-')).flatMap((n) => fs.readFileSync(path.join(dir, n), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { call_uuid: string }).call_uuid)).sort();
}

t.test('worker folders are found by slot; other folders are not', async (t) => {
  const root = tempDir();
  for (const n of ['worker-2', 'worker-10', 'worker-1', 'worker-0', 'worker-x', 'reports']) fs.mkdirSync(path.join(root, n));
  fs.writeFileSync(path.join(root, 'worker-3'), 'a file');
  t.same(workerSpoolDirs(root).map((w) => w.slot), [1, 2, 10]);
  t.equal(workerSpoolDir(root, 2), path.join(root, 'worker-2'));
  t.same(workerSpoolDirs(path.join(root, 'absent')), []);
});

t.test('segments move without overwriting one of the same name; other files stay', async (t) => {
  const root = tempDir();
  const to = path.join(root, 'worker-1');
  segment(to, 'segment-1000-000001.jsonl', 'a');
  segment(path.join(root, 'worker-2'), 'segment-1000-000001.jsonl', 'b');
  segment(path.join(root, 'worker-2'), 'segment-999-000000.jsonl', 'c');
  fs.writeFileSync(path.join(root, 'worker-2', 'quarantine.jsonl'), '{}\n');
  const r = moveSegments([path.join(root, 'worker-2')], to);
  t.same(r, { moved: [{ from: path.join(root, 'worker-2'), segments: 2 }], busy: [] });
  t.same(uuidsIn(to), ['a', 'b', 'c'], 'all three CDRs, none overwritten');
  t.same(uuidsIn(path.join(root, 'worker-2')), []);
  t.ok(fs.existsSync(path.join(root, 'worker-2', 'quarantine.jsonl')), 'the quarantine file stays for a person to read');
});

t.test('call journals move with the segments, none overwritten; a temporary or unreadable journal stays', async (t) => {
  const root = tempDir();
  const to = path.join(root, 'worker-1');
  const from = path.join(root, 'worker-3');
  segment(to, 'calls-in-progress-1000-000000042.jsonl', 'mine');
  segment(from, 'calls-in-progress-1000-000000042.jsonl', 'theirs');
  segment(from, 'calls-in-progress-2000-000000007.jsonl', 'other');
  segment(from, 'calls-in-progress-3000-000000001.jsonl.tmp', 'half');
  segment(from, 'calls-in-progress-4000-000000001.jsonl.unreadable', 'damaged');
  const r = moveSegments([from], to);
  t.same(r, { moved: [{ from, segments: 0, journals: 2 }], busy: [] });
  const journals = fs.readdirSync(to).filter((n) => /^calls-in-progress-\d+-\d+\.jsonl$/.test(n));
  t.equal(journals.length, 3);
  t.same(journals.map((n) => (JSON.parse(fs.readFileSync(path.join(to, n), 'utf8')) as { call_uuid: string }).call_uuid).sort(), ['mine', 'other', 'theirs']);
  t.same(fs.readdirSync(from).filter((n) => n.startsWith('calls-')).sort(), ['calls-in-progress-3000-000000001.jsonl.tmp', 'calls-in-progress-4000-000000001.jsonl.unreadable']);
});

t.test('a folder another process holds is left alone', async (t) => {
  const root = tempDir();
  const busy = path.join(root, 'worker-2');
  segment(busy, 'segment-1-000000.jsonl', 'x');
  const lock = SpoolLock.acquire(busy);
  t.teardown(() => lock.release());
  const r = moveSegments([busy], path.join(root, 'worker-1'));
  t.same(r.busy, [busy]);
  t.same(uuidsIn(busy), ['x'], 'still there');
});
