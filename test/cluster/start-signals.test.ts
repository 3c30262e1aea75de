// Signals while a daemon with CLUSTER_WORKERS=2 starts (the real entry point, real processes):
// a second signal to the primary ends the workers still starting at once, then the primary, by
// that signal; Ctrl-C twice (SIGINT to every process of the group) does the same; a worker
// signalled alone during its warm-up stops cleanly and is replaced, and its cron jobs had not
// started (they start after the warm-up); workers that serve calls drain them through a second
// signal, and the primary then exits 0.
// Assumes, of the process manager: systemd's KillMode=mixed sends SIGTERM to the primary alone,
// control-group and a terminal's Ctrl-C to every process of the group.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { startDaemonProcess } from '../daemon/spawn';
import { startCall } from '../peer/fake-freeswitch';
import { processAlive, until } from '../helpers/wait';
import { startCluster } from './cluster-process';

t.setTimeout(300_000);

/** A "MySQL server" that accepts and never says a word: a start waits in its first statement (the client's connect timeout, 10 s). */
async function silentServer(t: Test): Promise<number> {
  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  return (silent.address() as net.AddressInfo).port;
}

/** The pids of the workers started so far, from the primary's `worker started` lines. */
function startedWorkers(out: string): Array<{ worker: number; pid: number }> {
  return out
    .split('\n')
    .filter((l) => l.includes('"msg":"worker started"'))
    .map((l) => JSON.parse(l) as { worker: number; pid: number });
}

function heldCluster(t: Test, port: number): ReturnType<typeof startDaemonProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-start-signals-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const d = startDaemonProcess({
    CLUSTER_WORKERS: '2', DATABASE_URL: `mysql://root@127.0.0.1:${port}/hotline`, CDR_SPOOL_DIR: path.join(dir, 'spool'), TTS_CACHE_DIR: path.join(dir, 'tts'), REPORTS_DIR: path.join(dir, 'reports'),
  });
  t.teardown(() => {
    d.child.kill('SIGKILL');
    for (const w of startedWorkers(d.stdout())) if (processAlive(w.pid)) process.kill(w.pid, 'SIGKILL');
  });
  return d;
}

t.test('a second SIGTERM to the primary while its worker starts: the worker ends at once, then the primary, by SIGTERM', async (t) => {
  // Both signals must come within the silent server's hold (the client gives up after 10 s, and
  // the worker's start then fails with exit 1): they take well under a second after the line.
  const d = heldCluster(t, await silentServer(t));
  await until('worker 1 waiting on the database', () => /caller geography data loaded/.test(d.stdout()), 120_000);
  const [w1] = startedWorkers(d.stdout());
  d.child.kill('SIGTERM');
  await until('the first signal taken', () => /"msg":"signal received"/.test(d.stdout()) && /"msg":"stopping: draining every worker"/.test(d.stdout()));
  t.ok(processAlive(w1.pid), 'the first: the worker goes on starting (it stops once up, as a single daemon)');
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 'SIGTERM', 'the primary ended by the signal');
  t.match(d.stdout(), /"msg":"second signal: workers still starting end at once; those serving go on draining"/);
  t.match(d.stdout(), /"msg":"the primary had a second signal during start-up: the worker ends at once"/);
  t.match(d.stdout(), /"msg":"second signal during start-up: the workers are gone, the primary ends by it"/);
  t.notMatch(d.stdout(), /did not end in time; killed/, 'the worker ended by itself, not killed');
  await until('worker 1 gone', () => !processAlive(w1.pid));
});

t.test('Ctrl-C twice (SIGINT to every process) while a worker starts: all end by SIGINT', async (t) => {
  const d = heldCluster(t, await silentServer(t));
  await until('worker 1 waiting on the database', () => /caller geography data loaded/.test(d.stdout()), 120_000);
  const [w1] = startedWorkers(d.stdout());
  const group = (): void => {
    d.child.kill('SIGINT');
    process.kill(w1.pid, 'SIGINT');
  };
  group();
  await until('the first signal taken', () => /"msg":"signal received"/.test(d.stdout()));
  t.ok(processAlive(w1.pid), 'one Ctrl-C: the worker goes on starting');
  group();
  t.equal(await d.exited, 'SIGINT', 'the primary ended by the signal');
  t.match(d.stdout(), /"msg":"(second signal during start-up: the worker ends at once|the primary had a second signal during start-up: the worker ends at once)"/, 'the worker ended by its own second signal or by the primary\'s quit');
  t.notMatch(d.stdout(), /did not end in time; killed/, 'the worker ended by itself, not killed');
  await until('worker 1 gone', () => !processAlive(w1.pid));
});

t.test('a worker signalled alone during its warm-up stops cleanly and is replaced; its cron jobs had not started', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-start-signals-tmp-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const c = startCluster(t, { WARM_UP_CALLS: '100000000', WARM_UP_MAX_S: '600', CRON_ENABLED: 'true', TMPDIR: tmp });
  const warming = (): number => c.lines().filter((l) => l.msg === 'warm-up: running synthetic calls through the call flow before listening').length;
  const folders = (): string[] => fs.readdirSync(tmp).filter((n) => n.startsWith('hotline-warm-up-'));
  await until('worker 1 warming up', () => warming() === 1 && folders().length === 1, 120_000);
  const [w1Started] = startedWorkers(c.stdout());
  t.match(folders()[0], new RegExp(`^hotline-warm-up-${w1Started.pid}-[0-9a-f]{8}-`), 'a real worker\'s folder carries its pid and its primary\'s tag');
  t.notOk(c.lines().some((l) => l.msg === 'cron jobs scheduled'), 'no cron job scheduled during the warm-up: a worker killed in it holds no lease');
  const [w1] = startedWorkers(c.stdout());
  process.kill(w1.pid, 'SIGTERM');
  await until('the replacement warming up', () => warming() === 2 && startedWorkers(c.stdout()).length === 2, 120_000);
  const stopped = c.lines().find((l) => l.msg === 'worker exited 0 unasked (stopped on a signal of its own); starting a replacement');
  t.match(stopped, { worker: 1, pid: w1.pid, code: 0 }, 'a clean stop, replaced: not read as a failed start');
  t.notOk(c.lines().some((l) => l.msg === 'worker failed; stopping the daemon'), 'the daemon goes on');
  t.equal(startedWorkers(c.stdout())[1].worker, 1, 'in the same slot');
  c.child.kill('SIGTERM');
  t.equal(await c.exited, 0, 'SIGTERM to the primary: the replacement stops in its warm-up, exit 0');
  t.notOk(c.lines().some((l) => l.msg === 'cron jobs scheduled'), 'never warmed up: cron never started');
  t.same(folders(), [], 'both warm-ups\' folders removed');
});

t.test('a second SIGTERM while the workers serve: a call in progress talks to its end, exit 0', async (t) => {
  const c = startCluster(t, { DRAIN_TIMEOUT_S: '60' });
  const { eslPort } = await c.ready;
  // timeScale 1: the phone answers and talks 3 real seconds, through both signals.
  const call = startCall(eslPort, { caller: '13912345670', destination: '4001012345', timeScale: 1, legs: { '13800000001': { result: 'answer', ringMs: 50, talkMs: 3000 } } });
  await until('the call talking', () => call.live.answered, 60_000);
  c.child.kill('SIGTERM');
  await until('the first signal taken', () => c.lines().some((l) => l.msg === 'stopping: draining every worker'));
  c.child.kill('SIGTERM');
  await until('the second signal taken', () => c.lines().some((l) => l.msg === 'second signal: workers still starting end at once; those serving go on draining'));
  t.notOk(call.live.hungUpAtFs, 'the call is still up after the second signal');
  const done = await call.done;
  t.equal(done.bridges[0]?.result, 'answer');
  t.notOk(done.api.some((a) => /uuid_kill/.test(a)), 'not cut: it ended when its phone hung up');
  t.equal(await c.exited, 0, 'the primary exits 0, not by the signal: the daemon had served');
  t.notOk(c.lines().some((l) => /killed|second signal during start-up/.test(String(l.msg))), 'no worker killed, no start-up end');
  t.same(c.lines().filter((l) => l.msg === 'second signal: workers still starting end at once; those serving go on draining').map((l) => l.workers), [[]], 'no worker was starting');
});
