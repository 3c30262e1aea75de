// A second SIGTERM to a single daemon (CLUSTER_WORKERS=1: src/main.ts's shutdown, the real entry
// point, a real process). test/calls/process.test.ts has the second signal while the start still
// runs; here the two other cases:
//  - the first signal cut the start short (during the warm-up, before the outbound socket
//    listened) and the daemon is stopping what had started: a second one ends the process at
//    once, by that signal (nothing listened: no call to lose);
//  - the outbound socket listened and a call is up: a second one does not end the process; the
//    call talks to its end and the daemon exits 0, as after one signal.
// Assumed, for the first: a stop can take long after a cut-short start. Here it waits for a
// configuration poll under way (ConfigStore.stop): the database (a stand-in that accepts
// connections) stopped answering after the start, and the poll waits for its connection (the
// client's 10 s connect timeout). The daemon started from its cached configuration (a cache file
// written here) since the database refused it at start-up.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { startDaemonProcess } from '../daemon/spawn';
import { startCall } from '../peer/fake-freeswitch';
import { until } from '../helpers/wait';

/**
 * A "MySQL server" on 127.0.0.1: while `answering` is 'close' it closes every connection at once
 * (the client fails at once); once 'silent', it accepts and never says a word (the client waits
 * for its connect timeout). `silentOpen` counts the connections held open in silence.
 */
async function standInDatabase(t: Test): Promise<{ port: number; mode: { answering: 'close' | 'silent' }; silentOpen: () => number }> {
  const mode: { answering: 'close' | 'silent' } = { answering: 'close' };
  const held = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    if (mode.answering === 'close') {
      socket.destroy();
      return;
    }
    held.add(socket);
    socket.on('close', () => held.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of held) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, mode, silentOpen: () => held.size };
}

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-single-second-signal-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a second SIGTERM while the daemon stops a start cut short: the process ends at once, by SIGTERM', async (t) => {
  const db = await standInDatabase(t);
  const dir = tmpDir(t);
  const cacheFile = path.join(dir, 'config-cache.json');
  // A cached configuration of that database (no tenant: no call is taken anyway).
  fs.writeFileSync(cacheFile, JSON.stringify({ format: 'hotline-config-cache/1', database: `mysql://127.0.0.1:${db.port}/hotline`, version: 1, loadedAt: new Date().toISOString(), savedAt: new Date().toISOString(), tables: {} }), { mode: 0o600 });
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  const d = startDaemonProcess({
    DATABASE_URL: `mysql://root@127.0.0.1:${db.port}/hotline`, CONFIG_CACHE_FILE: cacheFile, CONFIG_POLL_INTERVAL_MS: '100',
    CDR_SPOOL_DIR: path.join(dir, 'spool'), TTS_CACHE_DIR: path.join(dir, 'tts'), REPORTS_DIR: path.join(dir, 'reports'),
    WARM_UP_CALLS: '100000000', WARM_UP_MAX_S: '600', TMPDIR: tmp,
  });
  t.teardown(() => d.child.kill('SIGKILL'));
  await until('the daemon routing from its cache, warming up', () => /"msg":"database unreachable at start-up: routing from the cached configuration until it answers"/.test(d.stdout()) && /"msg":"warm-up: running synthetic calls/.test(d.stdout()), 120_000);
  db.mode.answering = 'silent';
  await until('a configuration poll waiting on the silent database', () => db.silentOpen() > 0, 30_000);

  d.child.kill('SIGTERM');
  await until('the stop under way', () => /"msg":"stopping: draining calls"/.test(d.stdout()), 30_000);
  t.match(d.stdout(), /"msg":"signal received".*"starting":true|"starting":true.*"msg":"signal received"/, 'the first signal came during the start');
  t.match(d.stdout(), /"msg":"stop asked for during start-up: neither \/metrics nor the outbound socket opened"/, 'which it cut short');
  t.ok(db.silentOpen() > 0, 'the poll still waits: the stop waits for it');
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 'SIGTERM', 'the second: ended by the signal');
  t.match(d.stdout(), /"msg":"second signal during start-up: the process ends at once"/);
  t.notMatch(d.stdout(), /"msg":"stopped"/, 'before its stop was over');
  t.same(fs.readdirSync(tmp).filter((n) => n.startsWith('hotline-warm-up-')), [], 'no warm-up folder left');
});

t.test('a second SIGTERM while a call is up: the call talks to its end, exit 0', async (t) => {
  const dir = tmpDir(t);
  const d = startDaemonProcess({ DATABASE_URL: `sqlite:${path.join(dir, 'calls.db')}`, CDR_SPOOL_DIR: path.join(dir, 'spool'), TTS_CACHE_DIR: path.join(dir, 'tts'), REPORTS_DIR: path.join(dir, 'reports'), DRAIN_TIMEOUT_S: '60' });
  t.teardown(() => d.child.kill('SIGKILL'));
  let gone = false;
  void d.exited.then(() => (gone = true));
  const eslPort = await d.eslPort;
  // timeScale 1: the phone answers and talks 10 real seconds, through both signals.
  const call = startCall(eslPort, { caller: '13912345670', destination: '4001012345', timeScale: 1, legs: { '13800000001': { result: 'answer', ringMs: 50, talkMs: 10_000 } } });
  await until('the call talking', () => call.live.answered, 60_000);
  d.child.kill('SIGTERM');
  await until('the first signal taken', () => /"msg":"stopping: draining calls"/.test(d.stdout()));
  d.child.kill('SIGTERM');
  const drainsOn = /"msg":"second signal: the outbound socket is open, calls may be up; stopping as for the first"/;
  // Or the process gone: what this case must not see.
  await until('the second signal taken', () => drainsOn.test(d.stdout()) || gone);
  t.match(d.stdout(), drainsOn, 'the second signal: logged, it drains on');
  t.notOk(call.live.hungUpAtFs, 'the call is still up after the second signal');
  const done = await call.done;
  t.equal(done.bridges[0]?.result, 'answer');
  t.notOk(done.api.some((a) => /uuid_kill/.test(a)), 'not cut');
  t.equal(done.hangupCause, 'NORMAL_CLEARING', 'it ended when its phone hung up, not when the socket went');
  t.equal(await d.exited, 0, 'exit 0, not by the signal');
  t.notMatch(d.stdout(), /second signal during start-up/);
  t.match(d.stdout(), /"msg":"stopped"/);
});
