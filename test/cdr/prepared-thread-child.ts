// Run by batch-thread.test.ts in a process of its own: a writer thread started ahead
// (ThreadRunner.prepare) with no batch ever sent. A timer holds the process until the thread is
// up, then goes, and the process prints whether the thread came up; it must then end by itself
// (nothing keeps it alive but a batch out).
import { ThreadRunner } from '../../src/cdr/batch-runner';

const runner = new ThreadRunner(process.argv[2]);
runner.prepare();
const hold = setInterval(() => undefined, 1000);
void runner.whenUp()?.then((up) => {
  clearInterval(hold);
  process.stdout.write(JSON.stringify({ up }));
});
