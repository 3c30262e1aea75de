/**
 * The daemon's log destination (src/log.ts gatheredLines): lines are gathered into chunks of at
 * most LOG_CHUNK_BYTES, one write each; a line that waits is written within LOG_FLUSH_MS; lines
 * logged just before the process exits (process.exit, an uncaught exception, the event loop
 * running dry) are not lost. Written to a real file and, for the exits, by a real child process.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { createLogger, gatheredLines, LOG_CHUNK_BYTES, LOG_FLUSH_MS, type GatheredLines } from '../../src/log';

const ROOT = path.join(__dirname, '..', '..');

function tempFile(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-log-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'log.jsonl');
}

/** Lines to `file`, opened as stdout is for the daemon (a descriptor); the writer closes it at teardown. */
function destination(t: Test, file: string, opts: { flushMs?: number } = {}): GatheredLines {
  const d = gatheredLines(fs.openSync(file, 'a'), opts);
  t.teardown(() => d.end()); // writes what is left and closes the descriptor
  return d;
}

/** The whole lines written so far (a read may meet a write half done: what follows the last line feed waits). */
const lines = (file: string): Array<Record<string, unknown>> => {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
};

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

t.test('a few lines wait for the flush timer, then are written together', async (t) => {
  const file = tempFile(t);
  const log = createLogger('info', destination(t, file));
  log.info({ n: 1 }, 'first');
  log.info({ n: 2 }, 'second');
  t.same(lines(file), [], 'not written as they are logged');
  // Generous against a loaded machine: the flush is due after LOG_FLUSH_MS.
  t.ok(await until(() => lines(file).length === 2, LOG_FLUSH_MS + 5000), `written within about ${LOG_FLUSH_MS} ms`);
  t.same(lines(file).map((l) => [l.msg, l.n, l.service]), [['first', 1, 'hotline'], ['second', 2, 'hotline']], 'in order, whole');
  // A later line after a quiet moment has its own timer.
  log.info({ n: 3 }, 'third');
  t.ok(await until(() => lines(file).length === 3, LOG_FLUSH_MS + 5000), 'a later line is written too');
});

t.test('full chunks are written without waiting for the timer, each at most LOG_CHUNK_BYTES and whole lines', async (t) => {
  const file = tempFile(t);
  // What each write is given (the writer writes with fs.write(fd, buffer, offset, length, …)).
  const sizes: number[] = [];
  const endings: string[] = [];
  const original = fs.write;
  (fs as { write: unknown }).write = function write(this: unknown, ...args: unknown[]) {
    const data = (args[1] as Buffer).subarray(args[2] as number, (args[2] as number) + (args[3] as number));
    sizes.push(data.length);
    endings.push(data.toString('utf8', data.length - 1));
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
  t.teardown(() => {
    (fs as { write: unknown }).write = original;
  });
  // A flush timer far beyond the test: only full chunks can be written.
  const log = createLogger('info', destination(t, file, { flushMs: 600_000 }));
  const padding = 'x'.repeat(200);
  let logged = 0;
  while (logged < 100) log.info({ n: logged++, padding, region: '北京市' }, 'line');
  t.ok(await until(() => lines(file).length >= 80, 5000), 'most lines written by size alone');
  const written = lines(file);
  t.same(written.map((l) => l.n), written.map((_, i) => i), 'in order, none torn');
  t.ok(sizes.length > 1 && sizes.every((s) => s <= LOG_CHUNK_BYTES), `writes of ${Math.min(...sizes)}-${Math.max(...sizes)} bytes, none above ${LOG_CHUNK_BYTES} (PIPE_BUF)`);
  t.ok(sizes.length < logged / 5, `${sizes.length} writes for ${logged} lines`);
  t.ok(endings.every((e) => e === '\n'), 'every write ends with a whole line');
});

t.test('lines logged right before the process ends are written: process.exit, an uncaught exception, the loop running dry', async (t) => {
  for (const how of ['exit', 'throw', 'dry'] as const) {
    const file = tempFile(t);
    const script = [
      `const { createLogger, gatheredLines } = require(${JSON.stringify(path.join(ROOT, 'src', 'log.ts'))});`,
      `const log = createLogger('info', gatheredLines(require('node:fs').openSync(${JSON.stringify(file)}, 'a')));`,
      `for (let i = 0; i < 3; i++) log.info({ n: i }, 'before the end');`,
      how === 'exit' ? `log.fatal('last'); process.exit(3);` : how === 'throw' ? `log.fatal('last'); throw new Error('boom');` : `log.fatal('last');`,
    ].join('\n');
    const register = require.resolve('ts-node/register/transpile-only');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'));
    const run = spawnSync(process.execPath, ['-r', register, '-e', script], { env: { ...env, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json') }, encoding: 'utf8', timeout: 60_000 });
    t.equal(run.status, { exit: 3, throw: 1, dry: 0 }[how], `${how}: the process ended as asked (status ${String(run.status)}, ${run.stderr.slice(0, 300)})`);
    t.same(lines(file).map((l) => l.msg), ['before the end', 'before the end', 'before the end', 'last'], `${how}: every line, the last one included`);
  }
});

t.test('a stdout that cannot be written (closed pipe, read-only, full disk) stops the logging, not the process or its exit', async (t) => {
  const file = tempFile(t);
  fs.writeFileSync(file, '');
  const script = [
    `const { createLogger, gatheredLines } = require(${JSON.stringify(path.join(ROOT, 'src', 'log.ts'))});`,
    // A descriptor every write fails on (EBADF), as a closed pipe or a full disk fails them.
    `const log = createLogger('info', gatheredLines(require('node:fs').openSync(${JSON.stringify(file)}, 'r')));`,
    `for (let i = 0; i < 200; i++) log.info({ n: i, padding: 'x'.repeat(100) }, 'not written');`,
    `setTimeout(() => { log.fatal('at the end'); process.exit(3); }, 300);`,
  ].join('\n');
  const register = require.resolve('ts-node/register/transpile-only');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'));
  const started = Date.now();
  const run = spawnSync(process.execPath, ['-r', register, '-e', script], { env: { ...env, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json') }, encoding: 'utf8', timeout: 60_000 });
  t.equal(run.status, 3, `exited as asked after ${Date.now() - started} ms (status ${String(run.status)}, signal ${String(run.signal)}, ${run.stderr.slice(0, 300)})`);
  t.equal(fs.readFileSync(file, 'utf8'), '', 'nothing written, nothing thrown');
});

/**
 * What src/log.ts assumes of Node.js at an exit: a chunk already handed to fs.write (libuv's thread
 * pool) is not lost. process.exit() shuts libuv down, and the pool's threads finish the work queued
 * before they stop (uv_library_shutdown), so the chunk lands after the lines the 'exit' handler
 * writes. A child with a pool of one thread holds that thread in fs.open of a FIFO nobody writes
 * to yet (an open for reading blocks until a writer comes), so the chunk waits behind it, as it
 * would behind DNS lookups of a database host that stopped answering; the test frees the thread
 * once the child has called process.exit().
 */
t.test('a log chunk waiting in the thread pool at process.exit() is still written, after the exit handler\'s lines', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-log-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'log.jsonl');
  const fifo = path.join(dir, 'pool-holder');
  t.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const script = [
    `const fs = require('node:fs');`,
    `const { createLogger, gatheredLines } = require(${JSON.stringify(path.join(ROOT, 'src', 'log.ts'))});`,
    `const out = gatheredLines(fs.openSync(${JSON.stringify(file)}, 'a'));`,
    `const log = createLogger('info', out);`,
    `fs.open(${JSON.stringify(fifo)}, 'r', () => undefined);`,
    `for (let i = 0; i < 3; i++) log.info({ n: i }, 'in the pool');`,
    `out.flush();`,
    `log.fatal('last');`,
    `process.stdout.write('exiting');`,
    `process.exit(3);`,
  ].join('\n');
  const register = require.resolve('ts-node/register/transpile-only');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'));
  const child = spawn(process.execPath, ['-r', register, '-e', script], { env: { ...env, UV_THREADPOOL_SIZE: '1', TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json') }, stdio: ['ignore', 'pipe', 'pipe'] });
  // A failed assertion below must not leave the child stuck in its exit, holding the pool.
  t.teardown(() => void child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  // process.exit() has begun: the 'exit' handler's line is written and the pool is still held.
  t.ok(await until(() => lines(file).length === 1, 10_000), 'the exit handler wrote the line never handed over');
  let early = false;
  await Promise.race([exited.then(() => (early = true)), new Promise((r) => setTimeout(r, 300))]);
  t.notOk(early, 'the process waits for the thread pool before it ends');
  // A writer frees the pool's thread (a non-blocking open succeeds: the blocked reader counts).
  fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
  t.equal(await exited, 3, `exited with the code asked (${stderr.slice(0, 300)})`);
  t.same(lines(file).map((l) => l.msg), ['last', 'in the pool', 'in the pool', 'in the pool'], 'nothing lost: the chunk from the pool lands after the exit handler\'s line');
});
