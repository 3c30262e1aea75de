/**
 * The primary's messages to a worker that has just died must not end the primary. Assumes what
 * Node.js documents for `subprocess.send()`: a failed write goes to the callback when there is one,
 * else it is emitted as an 'error' event (and an 'error' event with no listener throws).
 */
import { fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import t from 'tap';
import { sendToWorker, type WorkerChannel } from '../../src/cluster/primary';
import type { ToWorker } from '../../src/cluster/protocol';

const DRAIN: ToWorker = { type: 'hotline:drain' };

t.test('a write that fails (EPIPE) is reported, not emitted as an error event', async (t) => {
  const errors: Error[] = [];
  const worker = new (class extends EventEmitter implements WorkerChannel {
    isConnected(): boolean {
      return true;
    }
    send(_message: ToWorker, callback?: (err: Error | null) => void): boolean {
      const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
      if (typeof callback === 'function') process.nextTick(callback, epipe);
      else process.nextTick(() => this.emit('error', epipe));
      return false;
    }
  })();
  worker.on('error', (err: Error) => errors.push(err));
  const reported = await new Promise<Error>((resolve) => sendToWorker(worker, DRAIN, resolve));
  await new Promise((r) => setImmediate(r));
  t.equal((reported as NodeJS.ErrnoException).code, 'EPIPE', 'the failure reaches the caller');
  t.same(errors, [], 'no error event');
});

t.test('nothing is sent to a worker no longer connected', async (t) => {
  let sent = 0;
  const worker: WorkerChannel = { isConnected: () => false, send: () => ++sent > 0 };
  sendToWorker(worker, DRAIN, () => t.fail('no failure to report'));
  t.equal(sent, 0);
});

t.test('a real child killed with SIGKILL, sent to while it still counts as connected: no error event', async (t) => {
  for (let round = 0; round < 5; round++) {
    const child = fork('-e', ['setInterval(() => {}, 1000)'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], execArgv: [] });
    const errors: Error[] = [];
    child.on('error', (err) => errors.push(err));
    await new Promise<void>((r) => child.once('spawn', () => r()));
    const failures: Error[] = [];
    const worker: WorkerChannel = { isConnected: () => child.connected, send: (m, cb) => child.send(m, cb) };
    child.kill('SIGKILL');
    const exited = new Promise((r) => child.once('exit', r));
    while (child.connected) {
      sendToWorker(worker, DRAIN, (err) => failures.push(err));
      await new Promise((r) => setImmediate(r));
    }
    await exited;
    t.same(errors, [], `round ${round}: no error event (${failures.length} sends failed and were reported)`);
  }
});
