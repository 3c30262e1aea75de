/**
 * The warm-up folders a killed process leaves (src/warmup/folders.ts): which are removed, and
 * which are never touched (a running process's, another user's, this process's own, anything
 * not named as a warm-up names its folder).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { endedPid, leftLongAgo } from './abandoned';
import { ABANDONED_AFTER_MS, newWarmUpTag, removeAbandonedWarmUpFolders, removeWarmUpFoldersOf, WARM_UP_TAG, warmUpFolderPid, warmUpFolderPrefix } from '../../src/warmup/folders';

/** As seen from later than an hour from now: the folders made here count as unchanged for that long. */
const LATER = (): number => Date.now() + ABANDONED_AFTER_MS + 60_000;

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-folders-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A warm-up folder of `pid` (a cluster worker's with `tag`) in `dir`, with a file in it as a spool segment; its name. */
function folderOf(dir: string, pid: number, tag?: string): string {
  const made = fs.mkdtempSync(warmUpFolderPrefix(dir, pid, tag));
  fs.writeFileSync(path.join(made, 'segment-1.jsonl'), '{}\n');
  return path.basename(made);
}

t.test('the name carries the pid; other names carry none', async (t) => {
  const dir = tmpDir(t);
  t.equal(warmUpFolderPid(folderOf(dir, 4242)), 4242);
  t.equal(warmUpFolderPid(path.basename(fs.mkdtempSync(warmUpFolderPrefix(dir)))), process.pid, 'this process by default');
  for (const name of ['hotline-warm-up-AbC123', 'hotline-warm-up--1-abc', 'hotline-warm-up-0-abcdef', 'hotline-warm-up-12', 'hotline-cluster-12-abc', 'x-hotline-warm-up-12-abc', `hotline-warm-up-${'9'.repeat(20)}-abc`]) {
    t.equal(warmUpFolderPid(name), null, name);
  }
});

t.test('abandoned: the folders of processes that have ended, this user\'s only', async (t) => {
  const dir = tmpDir(t);
  const running = new Set([100, 101]);
  const gone1 = folderOf(dir, 200);
  const gone2 = folderOf(dir, 201);
  const live = folderOf(dir, 100);
  const own = folderOf(dir, process.pid);
  const older = path.join(dir, 'hotline-warm-up-AbC123');
  fs.mkdirSync(older);
  const other = path.join(dir, 'hotline-cluster-300-abcdef');
  fs.mkdirSync(other);
  const removed = removeAbandonedWarmUpFolders(dir, { isRunning: (pid) => running.has(pid), now: LATER() });
  t.same(removed.sort(), [gone1, gone2].map((n) => path.join(dir, n)).sort());
  t.same(fs.readdirSync(dir).sort(), [live, own, 'hotline-warm-up-AbC123', 'hotline-cluster-300-abcdef'].sort(), 'a running process\'s, this process\'s, an earlier release\'s and other names stay');
  t.same(removeAbandonedWarmUpFolders(dir, { isRunning: (pid) => running.has(pid), now: LATER() }), [], 'nothing more the second time');
});

t.test('abandoned: another user\'s folder is left alone', async (t) => {
  const dir = tmpDir(t);
  folderOf(dir, 200);
  const uid = process.getuid?.() ?? 0;
  t.same(removeAbandonedWarmUpFolders(dir, { isRunning: () => false, uid: uid + 1, now: LATER() }), []);
  t.equal(fs.readdirSync(dir).length, 1);
  t.equal(removeAbandonedWarmUpFolders(dir, { isRunning: () => false, uid, now: LATER() }).length, 1, 'this user\'s is removed');
});

t.test('abandoned: the real check of a process, on one that has ended and on this one', async (t) => {
  const dir = tmpDir(t);
  const deadPid = endedPid();
  const dead = folderOf(dir, deadPid);
  const parent = folderOf(dir, process.ppid);
  t.same(removeAbandonedWarmUpFolders(dir, { now: LATER() }), [path.join(dir, dead)], 'the ended child\'s; not the running parent\'s');
  t.same(fs.readdirSync(dir), [parent]);
});

t.test('abandoned: a folder changed within the hour is left alone, whatever its pid says (another pid namespace sharing the folder)', async (t) => {
  const dir = tmpDir(t);
  const name = folderOf(dir, 200);
  const full = path.join(dir, name);
  t.same(removeAbandonedWarmUpFolders(dir, { isRunning: () => false }), [], 'just made');
  leftLongAgo(full);
  t.same(removeAbandonedWarmUpFolders(dir, { isRunning: () => false }), [], 'the folder old, a file in it written just now');
  leftLongAgo(path.join(full, 'segment-1.jsonl'));
  t.same(removeAbandonedWarmUpFolders(dir, { isRunning: () => false }), [full], 'all of it older than the hour: removed');
});

t.test('a file or a link named like a folder, or a folder of another user: never removed', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'hotline-warm-up-200-0a0b0c0d-afile'), '');
  const target = fs.mkdtempSync(path.join(dir, 'target-'));
  fs.symlinkSync(target, path.join(dir, 'hotline-warm-up-200-0a0b0c0d-alink'));
  t.same(removeAbandonedWarmUpFolders(dir, { isRunning: () => false, now: LATER() }), []);
  t.same(removeWarmUpFoldersOf(200, '0a0b0c0d', dir), []);
  const other = folderOf(dir, 300, '0a0b0c0d');
  const uid = process.getuid?.() ?? 0;
  t.same(removeWarmUpFoldersOf(300, '0a0b0c0d', dir, { uid: uid + 1 }), [], 'the primary too leaves another user\'s folder');
  t.ok(fs.existsSync(path.join(dir, other)));
  t.ok(fs.existsSync(target), 'nor what a link points to');
});

t.test('of one worker: only its folders, by pid and tag (another pid namespace\'s worker of the same pid keeps its own)', async (t) => {
  const dir = tmpDir(t);
  const a = folderOf(dir, 300, '0000abcd');
  const a2 = folderOf(dir, 300, '0000abcd');
  const samePidElsewhere = folderOf(dir, 300, '1111abcd');
  const untagged = folderOf(dir, 300);
  const b = folderOf(dir, 3000, '0000abcd');
  t.same(removeWarmUpFoldersOf(300, '0000abcd', dir).sort(), [a, a2].map((n) => path.join(dir, n)).sort());
  t.same(fs.readdirSync(dir).sort(), [samePidElsewhere, untagged, b].sort(), 'another tag, no tag, a pid that begins the same: left');
  t.equal(warmUpFolderPid(samePidElsewhere), 300, 'a tagged name carries its pid for the abandoned-folder sweep');
  t.match(newWarmUpTag(), WARM_UP_TAG);
  t.not(newWarmUpTag(), newWarmUpTag(), 'random');
});

t.test('a folder that cannot be read or does not exist: nothing, no throw', async (t) => {
  const dir = tmpDir(t);
  t.same(removeAbandonedWarmUpFolders(path.join(dir, 'missing')), []);
  t.same(removeWarmUpFoldersOf(1, '0000abcd', path.join(dir, 'missing')), []);
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, '');
  t.same(removeAbandonedWarmUpFolders(file), []);
});
