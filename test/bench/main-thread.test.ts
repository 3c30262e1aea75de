/**
 * `npm run bench` says what bound a closed loop (bench/run.ts: the generator's main thread, the
 * controller's, or the machine's CPUs): mainThreadSeconds must count the thread that runs a
 * process's JavaScript and nothing else, where cpuSeconds counts every thread, and machineTicks
 * the whole machine's busy time. Spins until CPU is spent, not for a time, so
 * a loaded machine slows the test and does not change what it sees.
 */
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { cpuSeconds, machineTicks, mainThreadSeconds } from '../../bench/lib';

/** Spins on this thread until the process has spent `ms` more of CPU (every other thread idle). */
function spin(ms: number): void {
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if ((used.user + used.system) / 1000 >= ms) return;
  }
}

t.test('mainThreadSeconds counts the main thread alone; cpuSeconds counts every thread', async (t) => {
  const pid = process.pid;
  // A worker spins 300 ms of CPU while the main thread waits for it.
  const [all0, main0] = [cpuSeconds(pid), mainThreadSeconds(pid)];
  await new Promise<void>((resolve, reject) => {
    const w = new Worker(
      `const start = process.cpuUsage();
       for (;;) { const u = process.cpuUsage(start); if ((u.user + u.system) / 1000 >= 300) break; }`,
      { eval: true },
    );
    w.once('error', reject);
    w.once('exit', () => resolve());
  });
  const [all1, main1] = [cpuSeconds(pid), mainThreadSeconds(pid)];
  t.ok(all1 - all0 >= 0.25, `the process spent the worker's CPU (${(all1 - all0).toFixed(2)} s)`);
  t.ok(main1 - main0 < 0.15, `the main thread did not (${(main1 - main0).toFixed(2)} s)`);
  // Now the main thread spins 300 ms.
  spin(300);
  const main2 = mainThreadSeconds(pid);
  t.ok(main2 - main1 >= 0.25, `the main thread's own spin counted (${(main2 - main1).toFixed(2)} s)`);
  t.ok(main2 <= cpuSeconds(pid) + 0.011, 'never more than the whole process (one clock tick of rounding)');
});

t.test('machineTicks: the machine\'s busy time grows by at least what this process spent, never past the total', async (t) => {
  const m0 = machineTicks();
  const own0 = cpuSeconds(process.pid);
  spin(300);
  const m1 = machineTicks();
  const own = (cpuSeconds(process.pid) - own0) * 100; // clock ticks
  const busy = m1.busy - m0.busy;
  t.ok(busy >= own - 5, `busy ${busy} ticks, this process ${own.toFixed(0)}`);
  t.ok(m1.total - m0.total >= busy, 'busy within the total');
  t.ok(m0.busy <= m0.total && m0.busy > 0, 'a reading is busy <= total');
});
