/**
 * Extra accept handles on the ESL listening socket (src/calls/accept-handles.ts), on real sockets.
 *
 * What this assumes of libuv (Node.js 20 ships 1.46): a listening handle accepts at most one
 * connection a turn of the event loop (libuv/libuv#3696, in 1.45 and later). The per-turn test
 * measures it with one handle and says so; with several it asserts at least one connection per
 * handle in the first turn, which holds whether or not libuv accepts in a loop.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { AcceptHandlesError, copyListeningHandle } from '../../src/calls/accept-handles';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';
import { listeningDescriptors as descriptorsOf } from '../helpers/listening';

function listening(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => resolve());
  });
}

function closed(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The descriptors of this process that are the socket listening on the port. */
function listeningDescriptors(port: number): number {
  return descriptorsOf(process.pid, port);
}

/**
 * Opens `n` connections while this process's event loop is held up, so that all of them wait in
 * the kernel's accept queue, then counts how many the servers accept in the first turn after.
 */
async function acceptedInOneTurn(servers: net.Server[], port: number, n: number): Promise<{ firstTurn: number; total: number; answered: number; servers: number }> {
  let total = 0;
  let firstTurn = -1;
  const accepting = new Set<net.Server>();
  for (const s of servers) {
    s.on('connection', (socket) => {
      total++;
      accepting.add(s);
      if (firstTurn < 0) setImmediate(() => (firstTurn = total));
      socket.end('ok\n');
    });
  }
  const clients = Array.from({ length: n }, () => net.connect({ port, host: '127.0.0.1' }));
  const answers = clients.map((c) => new Promise<boolean>((resolve) => {
    let text = '';
    c.on('data', (d: Buffer) => (text += d.toString()));
    c.on('close', () => resolve(text === 'ok\n'));
    c.on('error', () => resolve(false));
  }));
  // net.connect issues its connect() on the next tick; once all have been (this tick comes after
  // theirs), hold the loop a while: every handshake completes in the kernel and waits to be accepted.
  process.nextTick(() => {
    const until = Date.now() + 100;
    while (Date.now() < until);
  });
  const answered = (await Promise.all(answers)).filter(Boolean).length;
  return { firstTurn, total, answered, servers: accepting.size };
}

t.test('each copy is another descriptor of the same listening socket, and every one accepts', async (t) => {
  const server = net.createServer();
  await listening(server, { port: 0, host: '127.0.0.1' });
  const port = (server.address() as net.AddressInfo).port;
  const copies = await copyListeningHandle(server, 3, { timeoutMs: 10_000 });
  t.equal(copies.length, 3);
  t.equal(listeningDescriptors(port), 4, 'the original and three copies in this process');
  const servers = [server, ...copies.map(() => net.createServer())];
  await Promise.all(copies.map((handle, i) => listening(servers[i + 1], { handle } as net.ListenOptions)));
  const byServer = new Map<number, number>();
  servers.forEach((s, i) => s.on('connection', (socket) => {
    byServer.set(i, (byServer.get(i) ?? 0) + 1);
    socket.end();
  }));
  await Promise.all(Array.from({ length: 40 }, () => new Promise<void>((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1' });
    c.on('close', () => resolve());
    c.on('error', () => resolve());
    c.resume();
  })));
  t.equal([...byServer.values()].reduce((a, b) => a + b, 0), 40, 'every connection accepted');
  await Promise.all(servers.map(closed));
  t.equal(listeningDescriptors(port), 0, 'closing every server closes the socket');
  const again = net.createServer();
  await listening(again, { port, host: '127.0.0.1' });
  await closed(again);
  t.pass('the port can be listened on again');
});

t.test('connections queued during a long turn: one handle takes one a turn, eight take eight', async (t) => {
  for (const handles of [1, 8]) {
    const server = net.createServer();
    await listening(server, { port: 0, host: '127.0.0.1', backlog: 512 });
    const port = (server.address() as net.AddressInfo).port;
    const copies = await copyListeningHandle(server, handles - 1, { timeoutMs: 10_000 });
    const servers = [server, ...copies.map(() => net.createServer())];
    await Promise.all(copies.map((handle, i) => listening(servers[i + 1], { handle } as net.ListenOptions)));
    const r = await acceptedInOneTurn(servers, port, 30);
    t.equal(r.total, 30, `${handles} handle(s): all 30 accepted`);
    t.equal(r.answered, 30, `${handles} handle(s): all 30 served`);
    if (handles === 1) t.comment(`one handle accepted ${r.firstTurn} in the first turn (libuv 1.45 and later: 1)`);
    else {
      t.ok(r.firstTurn >= handles, `${handles} handles accepted ${r.firstTurn} in the first turn`);
      t.equal(r.servers, handles, 'every handle accepted');
    }
    await Promise.all(servers.map(closed));
  }
});

t.test('failures are typed and leave nothing behind', async (t) => {
  const idle = net.createServer();
  await t.rejects(copyListeningHandle(idle, 2, { timeoutMs: 1000 }), { code: 'NOT_A_SOCKET' }, 'a server that does not listen');
  const server = net.createServer();
  await listening(server, { port: 0, host: '127.0.0.1' });
  const port = (server.address() as net.AddressInfo).port;
  t.same(await copyListeningHandle(server, 0, { timeoutMs: 1000 }), [], 'none asked, none made (no child)');
  await t.rejects(copyListeningHandle(server, 2, { timeoutMs: 5000, execPath: '/nonexistent/node' }), { code: 'HELPER_FAILED' }, 'the helper cannot start');
  await t.rejects(copyListeningHandle(server, 2, { timeoutMs: 5000, execPath: '/bin/true' }), { code: 'HELPER_FAILED' }, 'the helper ends without answering');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accept-handles-'));
  const silent = path.join(dir, 'silent');
  const pidFile = path.join(dir, 'pid');
  fs.writeFileSync(silent, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 30\n`, { mode: 0o755 });
  const started = Date.now();
  const err = await copyListeningHandle(server, 2, { timeoutMs: 2000, execPath: silent }).catch((e: unknown) => e);
  t.ok(err instanceof AcceptHandlesError && err.code === 'HELPER_TIMEOUT', 'a helper that never answers times out');
  t.ok(Date.now() - started < 10_000, 'within its bound');
  t.ok(fs.existsSync(pidFile), 'the silent helper ran');
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  const gone = async (): Promise<boolean> => {
    for (const until = Date.now() + 5000; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
      try {
        process.kill(pid, 0);
      } catch {
        return true;
      }
    }
    return false;
  };
  t.ok(await gone(), 'the timed-out helper was killed');
  const once = path.join(dir, 'once');
  // Sends one copy back, then exits: the copy already received must be closed too.
  fs.writeFileSync(once, `#!/bin/sh\nexec ${process.execPath} -e "process.once('message', (m, h) => process.send(m, h, {}, () => { h.close(); process.exit(0); }))"\n`, { mode: 0o755 });
  const partial = await copyListeningHandle(server, 3, { timeoutMs: 10_000, execPath: once }).catch((e: unknown) => e);
  t.ok(partial instanceof AcceptHandlesError && partial.code === 'HELPER_FAILED', 'a helper that ends after one copy');
  t.equal(listeningDescriptors(port), 1, 'no copy left open by a failure, the one received included');
  await closed(server);
  fs.rmSync(dir, { recursive: true, force: true });
});

t.test('no descriptor left to spawn the helper (EMFILE): a typed error, and no signal to the process group', async (t) => {
  const script = path.join(__dirname, 'accept-handles-emfile.ts');
  // A plain environment: tap's loaders must not reach the child (tap's processinfo puts its
  // --import back into NODE_OPTIONS of every child it sees spawned, hence the unset). setsid: in
  // a process group of its own, a kill(0) by the code under test cannot reach the test runner.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const register = require.resolve('ts-node/register/transpile-only');
  const run = spawnSync('sh', ['-c', `unset NODE_OPTIONS; ulimit -n 512 && exec setsid -w "${process.execPath}" -r "${register}" "${script}"`], { encoding: 'utf8', timeout: 60_000, env, cwd: path.join(__dirname, '..', '..') });
  t.equal(run.status, 0, `exits 0 (${run.stderr.slice(0, 300)})`);
  t.equal(run.stdout, 'error HELPER_FAILED\n', 'HELPER_FAILED, and no SIGTERM (kill() of a child without a process id signals the group)');
});

t.test('the daemon listens with ESL_ACCEPT_HANDLES handles and closes them all when it stops', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { esl: { acceptHandles: 5 } });
  t.equal(listeningDescriptors(d.port), 5);
  await d.stop();
  t.equal(listeningDescriptors(d.port), 0, 'every handle closed: FreeSWITCH gets connection refused, its fallback runs');
});

t.test('the default is 16 handles', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  t.equal(d.settings.esl.acceptHandles, 16);
  t.equal(listeningDescriptors(d.port), 16);
});
