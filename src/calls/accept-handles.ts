/**
 * More than one accept a turn of the event loop on the ESL listening socket.
 *
 * libuv accepts at most one connection per listening handle per turn of the event loop (since
 * libuv 1.45, libuv/libuv#3696 "unix: don't accept() connections in a loop"; Node.js 20 ships
 * 1.46): it takes one and waits for epoll to report the socket again. Under load a turn is long,
 * because it runs every call that has data, so the connections FreeSWITCH opened waited in the
 * kernel's accept queue: at saturation 44 of 100 calls in flight sat there, and connect →
 * `connect` was 40 ms of a 48 ms setup (bench/PROFILE.md, release 11). While it waits, FreeSWITCH's
 * socket application holds the caller in silence.
 *
 * Each extra handle is another descriptor of the same socket, registered with the same event
 * loop: every one of them accepts one connection a turn. Node.js 20 has neither dup() nor
 * SO_REUSEPORT for net servers (`reusePort` came in 22.12), so a copy is made the way node:cluster
 * shares a listening socket between processes: the handle goes to a short-lived child process
 * over the IPC channel (SCM_RIGHTS) and comes back, and this process holds one more descriptor of
 * the socket. The child never listens on it (a raw handle is passed, not a net.Server) and closes
 * its own copy, so it cannot take a call. The price when idle: a connection wakes every handle
 * and all but one find nothing to accept (one failed accept4 each, about 2 µs).
 */
import { spawn } from 'node:child_process';
import type net from 'node:net';

/** The child: sends every handle it gets straight back, then closes its own descriptor. */
const ECHO_SOURCE = [
  "process.on('message', (m, h) => { if (h) process.send(m, h, {}, () => h.close()); else process.send(m); });",
  "process.on('disconnect', () => process.exit(0));",
].join('\n');

export class AcceptHandlesError extends Error {
  override readonly name = 'AcceptHandlesError';
  constructor(
    readonly code: 'NOT_A_SOCKET' | 'HELPER_FAILED' | 'HELPER_TIMEOUT',
    message: string,
  ) {
    super(message);
  }
}

export interface CopyOptions {
  /** Bound on the whole exchange with the child (its start included). */
  timeoutMs: number;
  /** The Node.js binary the child runs on (tests point it elsewhere). */
  execPath?: string;
}

/**
 * The raw libuv handle of a listening net.Server that owns a socket (not a cluster round-robin
 * stand-in). Only a raw handle may go to the helper: Node.js would make the child listen on a
 * net.Server it received, and it would take calls it never answers.
 */
function socketHandleOf(server: net.Server): object | null {
  const handle = (server as unknown as { _handle?: { fd?: unknown } | null })._handle;
  return handle && typeof handle.fd === 'number' && handle.fd >= 0 ? handle : null;
}

/** Closes a copy that will not be listened on (its descriptor with it). */
export function closeCopy(handle: unknown): void {
  (handle as { close?: () => void } | undefined)?.close?.();
}

/**
 * `count` more handles of the socket `server` listens on, not listening yet: pass each to
 * `net.Server.listen(handle, backlog)` (with `{ handle }` Node.js drops the backlog to 511).
 * Rejects (AcceptHandlesError) when the server owns no socket of its own (not listening, or a
 * cluster worker whose primary accepts for it) or the child fails; copies already received are
 * closed then.
 */
export async function copyListeningHandle(server: net.Server, count: number, options: CopyOptions): Promise<object[]> {
  const original = socketHandleOf(server);
  if (!original) throw new AcceptHandlesError('NOT_A_SOCKET', 'the server has no listening socket of its own to copy');
  if (count <= 0) return [];
  // The helper gets none of the daemon's environment: NODE_OPTIONS (--require, --inspect) and
  // node:cluster's NODE_UNIQUE_ID would change what it runs. A Node.js that cannot start without
  // its environment (LD_LIBRARY_PATH) fails here, and the daemon goes on with one handle.
  const child = spawn(options.execPath ?? process.execPath, ['-e', ECHO_SOURCE], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: {} });
  // Errors after the outcome (a send refused once the child is gone, ERR_IPC_DISCONNECTED when it
  // exits before acknowledging a handle) must not become uncaught: this listener stays.
  child.on('error', () => undefined);
  const copies: object[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const failed = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new AcceptHandlesError('HELPER_TIMEOUT', `no copy of the listening socket within ${options.timeoutMs} ms`)), options.timeoutMs);
      child.once('error', (err) => reject(new AcceptHandlesError('HELPER_FAILED', `the helper process failed: ${err.message}`)));
      child.once('exit', (code, signal) => reject(new AcceptHandlesError('HELPER_FAILED', `the helper process ended (${signal ?? `exit ${code}`}) before it sent every copy back`)));
    });
    failed.catch(() => undefined);
    // No process id: the spawn failed (ENOENT, EMFILE …); its 'error' comes on a later tick.
    if (child.pid === undefined) await failed;
    for (let i = 0; i < count; i++) {
      const back = new Promise<object>((resolve, reject) => {
        child.once('message', (_message: unknown, handle: unknown) => {
          if (handle && typeof handle === 'object') resolve(handle);
          else reject(new AcceptHandlesError('HELPER_FAILED', 'the helper answered without a handle'));
        });
        // A raw libuv handle travels as node's 'net.Native': the child gets a descriptor, not a listener.
        child.send({ copy: i }, original as net.Server, {}, (err) => {
          if (err) reject(new AcceptHandlesError('HELPER_FAILED', `the handle could not be sent to the helper: ${err.message}`));
        });
      });
      copies.push(await Promise.race([back, failed]));
    }
    return copies;
  } catch (err) {
    for (const copy of copies) closeCopy(copy);
    throw err;
  } finally {
    clearTimeout(timer);
    child.removeAllListeners('exit');
    // A copy that arrives after the outcome is closed, not left open in this process.
    child.removeAllListeners('message');
    child.on('message', (_message: unknown, handle: unknown) => closeCopy(handle));
    if (child.connected) child.disconnect();
    // Never kill() a child that has no process id: kill(0) would signal this whole process group.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill();
  }
}
