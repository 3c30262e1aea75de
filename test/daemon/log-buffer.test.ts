/**
 * The daemon's log destination (src/log.ts bufferedDestination): lines are gathered and written
 * in chunks, a line that waits is written within LOG_FLUSH_MS, and lines logged just before the
 * process exits (process.exit, an uncaught exception) are not lost. Written to a real file and, for
 * the exits, by a real child process.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { bufferedDestination, createLogger, LOG_BUFFER_BYTES, LOG_FLUSH_MS } from '../../src/log';

const ROOT = path.join(__dirname, '..', '..');

function tempFile(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-log-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'log.jsonl');
}

/** The file opened for appending, as stdout is open for the daemon (bufferedDestination takes a descriptor). */
function openFd(t: Test, file: string): number {
  const fd = fs.openSync(file, 'a');
  t.teardown(() => fs.closeSync(fd));
  return fd;
}

const lines = (file: string): Array<Record<string, unknown>> =>
  fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) : [];

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
  const log = createLogger('info', bufferedDestination(openFd(t, file)));
  log.info({ n: 1 }, 'first');
  log.info({ n: 2 }, 'second');
  t.same(lines(file), [], 'not written as they are logged (fewer than LOG_BUFFER_BYTES)');
  // Generous against a loaded machine: the flush is due after LOG_FLUSH_MS.
  t.ok(await until(() => lines(file).length === 2, LOG_FLUSH_MS + 5000), `written within about ${LOG_FLUSH_MS} ms`);
  t.same(lines(file).map((l) => [l.msg, l.n, l.service]), [['first', 1, 'hotline'], ['second', 2, 'hotline']], 'in order, whole');
});

t.test('more than LOG_BUFFER_BYTES is written without waiting for the timer', async (t) => {
  const file = tempFile(t);
  // A flush timer far beyond the test: only the buffer's size can write these.
  const log = createLogger('info', bufferedDestination(openFd(t, file), { flushMs: 600_000 }));
  const padding = 'x'.repeat(200);
  let logged = 0;
  while (logged * 250 < LOG_BUFFER_BYTES * 3) log.info({ n: logged++, padding }, 'line');
  t.ok(await until(() => lines(file).length >= Math.floor(logged / 2), 5000), 'most lines written by size alone');
  const written = lines(file);
  t.same(written.map((l) => l.n), written.map((_, i) => i), 'in order, none torn');
});

t.test('lines logged right before the process exits are written (process.exit and an uncaught exception)', async (t) => {
  for (const how of ['exit', 'throw'] as const) {
    const file = tempFile(t);
    const script = [
      `const { createLogger, bufferedDestination } = require(${JSON.stringify(path.join(ROOT, 'src', 'log.ts'))});`,
      `const log = createLogger('info', bufferedDestination(require('node:fs').openSync(${JSON.stringify(file)}, 'a')));`,
      `for (let i = 0; i < 3; i++) log.info({ n: i }, 'before the end');`,
      how === 'exit' ? `log.fatal('exiting'); process.exit(3);` : `log.fatal('throwing'); throw new Error('boom');`,
    ].join('\n');
    const register = require.resolve('ts-node/register/transpile-only');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'));
    const run = spawnSync(process.execPath, ['-r', register, '-e', script], { env: { ...env, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json') }, encoding: 'utf8', timeout: 60_000 });
    t.equal(run.status, how === 'exit' ? 3 : 1, `${how}: the process ended as asked (status ${String(run.status)}, ${run.stderr.slice(0, 300)})`);
    t.same(lines(file).map((l) => l.msg), ['before the end', 'before the end', 'before the end', how === 'exit' ? 'exiting' : 'throwing'], `${how}: every line, the last one included`);
  }
});
