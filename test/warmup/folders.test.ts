/**
 * The warm-up folders a killed process leaves (src/warmup/folders.ts): which are removed, and
 * which are never touched (a running process's, another user's, this process's own, anything
 * not named as a warm-up names its folder).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { removeAbandonedWarmUpFolders, removeWarmUpFoldersOf, warmUpFolderPid, warmUpFolderPrefix } from '../../src/warmup/folders';

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-folders-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A warm-up folder of `pid` in `dir`, with a file in it as a spool segment; its name. */
function folderOf(dir: string, pid: number): string {
  const made = fs.mkdtempSync(warmUpFolderPrefix(dir, pid));
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
  const removed = removeAbandonedWarmUpFolders(dir, { isRunning: (pid) => running.has(pid) });
  t.same(removed.sort(), [gone1, gone2].map((n) => path.join(dir, n)).sort());
  t.same(fs.readdirSync(dir).sort(), [live, own, 'hotline-warm-up-AbC123', 'hotline-cluster-300-abcdef'].sort(), 'a running process\'s, this process\'s, an earlier release\'s and other names stay');
  t.same(removeAbandonedWarmUpFolders(dir, { isRunning: (pid) => running.has(pid) }), [], 'nothing more the second time');
});

t.test('abandoned: another user\'s folder is left alone', async (t) => {
  const dir = tmpDir(t);
  folderOf(dir, 200);
  const uid = process.getuid?.() ?? 0;
  t.same(removeAbandonedWarmUpFolders(dir, { isRunning: () => false, uid: uid + 1 }), []);
  t.equal(fs.readdirSync(dir).length, 1);
  t.equal(removeAbandonedWarmUpFolders(dir, { isRunning: () => false, uid }).length, 1, 'this user\'s is removed');
});

t.test('abandoned: the real check of a process, on one that has ended and on this one', async (t) => {
  const dir = tmpDir(t);
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { env: {} });
  const deadPid = Number(child.stdout.toString());
  t.ok(deadPid > 0);
  const dead = folderOf(dir, deadPid);
  const parent = folderOf(dir, process.ppid);
  t.same(removeAbandonedWarmUpFolders(dir), [path.join(dir, dead)], 'the ended child\'s; not the running parent\'s');
  t.same(fs.readdirSync(dir), [parent]);
});

t.test('of one process: only its folders', async (t) => {
  const dir = tmpDir(t);
  const a = folderOf(dir, 300);
  const a2 = folderOf(dir, 300);
  const b = folderOf(dir, 3000);
  t.same(removeWarmUpFoldersOf(300, dir).sort(), [a, a2].map((n) => path.join(dir, n)).sort());
  t.same(fs.readdirSync(dir), [b], 'a pid that begins the same is another process');
});

t.test('a folder that cannot be read or does not exist: nothing, no throw', async (t) => {
  const dir = tmpDir(t);
  t.same(removeAbandonedWarmUpFolders(path.join(dir, 'missing')), []);
  t.same(removeWarmUpFoldersOf(1, path.join(dir, 'missing')), []);
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, '');
  t.same(removeAbandonedWarmUpFolders(file), []);
});
