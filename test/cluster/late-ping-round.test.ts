/**
 * A ping round that comes late (policy.ts roundWasLate) says nothing about the workers: the
 * primary's own event loop was stalled (a suspended VM, a long collection, the whole group
 * stopped and continued), and a worker's answer that came meanwhile may still be unread when the
 * first round after the stall runs. Such a round does not kill; it starts the worker's count
 * again, and a worker that really does not answer is killed once a full bound has passed after it.
 * This test's process is the primary (ClusterPrimary.start), its worker a stand-in
 * (fake-worker.ts `hangs-once`, the hang flag made beforehand: it answers every ping).
 *
 * The stall is a synchronous busy loop of this process, run from setImmediate: after a callback
 * of that phase the event loop runs its due timers (the ping round) before it reads what came in
 * (the worker's answer), as libuv orders its phases. Assumed, to have the answer arrive during
 * the stall and not before it: the worker is stopped (SIGSTOP) before the ping is written and
 * continued as the stall begins; the test checks that the round after the stall did run before
 * the answer was read (else a round not taken as late would not have killed either, and the test
 * would show nothing). The second case leaves the worker stopped: a process that answers nothing.
 */
import type { Worker } from 'node:cluster';
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { processAlive, until } from '../helpers/wait';
import { startFakePrimary, workersTmpDir } from './fake-cluster';

const tmp = workersTmpDir(t, 'late-ping-round');

/** 2 s bound: pings every 500 ms; a round more than 1 s after the one before is late. */
const HANG_TIMEOUT_S = 2;
/** The primary's stall: past the bound, with margin. */
const STALL_MS = 2500;
const HUNG = 'worker hung: it answered no ping in time; killed (a replacement replays its CDR spool)';

interface Watched {
  /** performance.now() of each ping the primary sent the worker, of each answer it read, and of its kills. */
  pings: number[];
  pongs: number[];
  kills: number[];
  /** Set once the stall is over: when it began and ended. */
  stall: { from: number; to: number } | null;
}

/**
 * Watches what the primary sends `worker` and reads from it. Once `stallAtNextPing(workerFine)`
 * is called, at the next ping it sends: stops the worker before the ping is written, and stalls
 * this process in the next check phase, continuing the worker first when `workerFine`.
 */
function watch(t: Test, worker: Worker): { w: Watched; stallAtNextPing: (workerFine: boolean) => void } {
  const pid = worker.process.pid as number;
  const w: Watched = { pings: [], pongs: [], kills: [], stall: null };
  let armed: { workerFine: boolean } | null = null;
  t.teardown(() => {
    // Whatever happened, no stopped process is left behind.
    if (processAlive(pid)) {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    }
  });
  const realSend = worker.send.bind(worker) as (...args: unknown[]) => boolean;
  worker.send = (message: unknown, ...rest: unknown[]): boolean => {
    if ((message as { type?: string }).type === 'hotline:ping') {
      w.pings.push(performance.now());
      const stall = armed;
      armed = null;
      if (stall) {
        process.kill(pid, 'SIGSTOP');
        setImmediate(() => {
          if (stall.workerFine) process.kill(pid, 'SIGCONT');
          const from = performance.now();
          while (performance.now() - from < STALL_MS);
          w.stall = { from, to: performance.now() };
        });
      }
    }
    return realSend(message, ...rest);
  };
  const realKill = worker.process.kill.bind(worker.process);
  worker.process.kill = (signal?: NodeJS.Signals | number): boolean => {
    w.kills.push(performance.now());
    return realKill(signal);
  };
  // Registered after the primary's own listener: called once the primary has read the message.
  worker.on('message', (m: unknown) => {
    if ((m as { type?: string } | null)?.type === 'hotline:pong') w.pongs.push(performance.now());
  });
  return {
    w,
    stallAtNextPing: (workerFine) => {
      w.stall = null;
      armed = { workerFine };
    },
  };
}

t.test('one worker, two stalls of the primary past the bound', async (t) => {
  const flag = path.join(tmp, 'no-hang');
  // Claimed beforehand: the worker never blocks its loop by itself.
  fs.writeFileSync(flag, 'none');
  const { primary, lines, first, firstEnded } = await startFakePrimary(tmp, ['hangs-once', flag], { CLUSTER_WORKERS: '1', CLUSTER_WORKER_HANG_TIMEOUT_S: String(HANG_TIMEOUT_S) });
  t.teardown(() => void primary.stop());
  const pid = first.process.pid as number;
  // performance.now() of its end, on the clock the stall is measured on.
  const ended = firstEnded.then((e) => ({ ...e, now: performance.now() }));
  const { w, stallAtNextPing } = watch(t, first);
  await until('the worker serving and answering pings', () => lines.some((l) => l.msg === 'worker serving calls') && w.pongs.length >= 1, 30_000);

  await t.test('while the worker answered: the late round does not kill it', async (t) => {
    stallAtNextPing(true);
    const killed = (): boolean => lines.some((l) => l.msg === HUNG);
    // Or killed by the round after the stall: what this case must not see.
    await until('the stall over and the worker\'s answers read after it', () => w.stall !== null && (w.pongs.filter((p) => p > w.stall!.to).length >= 2 || killed()), 30_000);
    const stall = w.stall!;
    t.ok(stall.to - stall.from >= STALL_MS, `the primary stalled ${Math.round(stall.to - stall.from)} ms (bound ${HANG_TIMEOUT_S * 1000} ms)`);
    // The round after the stall pinged the worker, or killed it.
    const firstRoundAfter = Math.min(...[...w.pings, ...w.kills].filter((p) => p >= stall.to));
    const firstAnswerRead = w.pongs.find((p) => p >= stall.from) ?? Infinity;
    t.ok(firstRoundAfter < firstAnswerRead, 'the round after the stall ran before the worker\'s answer was read: its last ping looked unanswered for longer than the bound');
    t.same(lines.filter((l) => l.msg === HUNG), [], 'not killed');
    t.same(w.kills, [], 'no signal sent to it');
    const text = await (await fetch(`http://127.0.0.1:${primary.metricsPort}/metrics`)).text();
    t.match(text, /^hotline_cluster_workers_killed_hung_total 0$/m, 'none counted');
  });

  await t.test('when the worker really answers nothing (stopped for good): killed, a full bound after the late round', async (t) => {
    if (lines.some((l) => l.msg === HUNG)) {
      t.fail('the worker was killed already');
      return;
    }
    stallAtNextPing(false);
    let bound: NodeJS.Timeout | undefined;
    const end = await Promise.race([ended, new Promise<null>((resolve) => (bound = setTimeout(() => resolve(null), 30_000)))]);
    clearTimeout(bound);
    if (end === null) {
      t.fail('the stopped worker was not killed within 30 s');
      // Else the daemon's stop would wait its whole bound for a worker that cannot drain.
      process.kill(pid, 'SIGKILL');
      await ended;
      return;
    }
    const stall = w.stall;
    t.ok(stall !== null, 'the primary stalled');
    t.equal(end.signal, 'SIGKILL', 'killed');
    const afterMs = end.now - (stall?.to ?? 0);
    // Its count starts again at the late round (at the end of the stall, or later): the kill comes
    // more than a bound after it. A round that took the stall for the worker's silence would have
    // killed at once.
    t.ok(afterMs > HANG_TIMEOUT_S * 1000, `killed ${Math.round(afterMs)} ms after the stall, not at the first round after it`);
    t.equal(lines.filter((l) => l.msg === HUNG).length, 1, 'once');
    t.match(lines.find((l) => l.msg === HUNG), { worker: 1, pid });
  });

  // Its replacement (in the slot) drains, starting or serving: a clean stop.
  t.equal(await primary.stop(), 0, 'the daemon stops cleanly');
});
