/**
 * The real entry point as a process: invalid configuration exits 2 naming the key; a started
 * daemon answers /metrics, and SIGTERM drains and exits 0.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startDaemonProcess } from '../daemon/spawn';
import { until } from '../helpers/wait';

// Three daemon processes started under ts-node, one after another: on a loaded machine (load 20 on
// 2 vCPU) that took more than tap's 180 s per file. A bound, not a race: the tests wait for events.
t.setTimeout(480_000);

t.test('invalid configuration: exit 2, the key and the reason on stderr', async (t) => {
  const d = startDaemonProcess({ ESL_LISTEN_PORT: 'eighty' });
  t.equal(await d.exited, 2);
  t.match(d.stderr(), /esl\.listenPort/);
  t.match(d.stderr(), /whole number/);
});

t.test('start, serve /metrics, SIGTERM: exit 0', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-proc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // With the cron jobs (the default): SIGTERM stops them too.
  const d = startDaemonProcess({ DATABASE_URL: `sqlite:${path.join(dir, 'calls.db')}`, CDR_SPOOL_DIR: path.join(dir, 'spool'), CRON_ENABLED: 'true' });
  const port = await d.listening;
  const body = await new Promise<string>((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}/metrics`, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  t.match(body, /hotline_active_calls 0/);
  t.match(d.stdout(), /seeded the demo tenant/);
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0, 'clean exit on SIGTERM');
  t.match(d.stdout(), /"msg":"stopped"/);
  for (const line of d.stdout().trim().split("\n")) t.doesNotThrow(() => { JSON.parse(line); }, "every log line is JSON");
});

t.test('kill -9 while a call rings and while it talks: hotline_handled=true is left behind, so the dialplan hangs up', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-proc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const d = startDaemonProcess({ DATABASE_URL: `sqlite:${path.join(dir, 'calls.db')}`, CDR_SPOOL_DIR: path.join(dir, 'spool') });
  const eslPort = await d.eslPort;
  const { startCall } = await import('../peer/fake-freeswitch');
  // timeScale 1: the first phone rings for a real minute; the second answers and talks a minute.
  const ringing = startCall(eslPort, { caller: '13912345678', destination: '4001012345', timeScale: 1, legs: { '13800000001': { result: 'answer', ringMs: 60_000 } } });
  const talking = startCall(eslPort, { caller: '13912345679', destination: '4001012345', timeScale: 1, legs: { '13800000001': { result: 'answer', ringMs: 50, talkMs: 60_000 } } });
  // Killed once the first call rings (its bridge runs) and the second talks (its phone answered).
  await until('one call ringing and one talking', () => ringing.live.bridges.length > 0 && talking.live.answered);
  d.child.kill('SIGKILL');
  const [r, k] = await Promise.all([ringing.done, talking.done]);
  for (const [what, c] of [['ringing', r], ['talking', k]] as const) {
    t.notOk(c.commands.some((x) => /hangup|uuid_kill/.test(`${x.line} ${x.headers['call-command'] ?? ''} ${x.headers['execute-app-name'] ?? ''}`)), `${what}: the daemon never hung up`);
    t.equal(c.hangupCause, null, `${what}: the caller was still up when the socket went`);
    t.same(c.releasedWith, { handled: 'true' }, `${what}: socket gone, caller up, hotline_handled=true → hotline_after_socket.xml hangs up, no announcement`);
  }
  t.ok(k.answered, 'the second call was talking');
});

t.test('signals during start-up: the first waits for the start, a second ends the process at once, by that signal', async (t) => {
  // A "MySQL server" that accepts and never says a word: the start waits in its first statement
  // (the client's connect timeout, 10 s) while the signals come.
  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const port = (silent.address() as net.AddressInfo).port;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-proc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const d = startDaemonProcess({ DATABASE_URL: `mysql://root@127.0.0.1:${port}/hotline`, CDR_SPOOL_DIR: path.join(dir, 'spool'), TTS_CACHE_DIR: path.join(dir, 'tts') });
  t.teardown(() => d.child.kill('SIGKILL'));
  await until('the start waiting on the database', () => /caller geography data loaded/.test(d.stdout()), 120_000);
  d.child.kill('SIGTERM');
  await until('the first signal taken', () => /"msg":"signal received"/.test(d.stdout()));
  t.match(d.stdout(), /"starting":true/, 'taken while starting: the daemon would stop once up');
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 'SIGTERM', 'the second: ended by the signal');
  t.match(d.stdout(), /"msg":"second signal during start-up: the process ends at once"/);
});
