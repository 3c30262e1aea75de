/**
 * A stand-in for a cluster worker (src/cluster/worker.ts) for test/cluster/quit-starting.test.ts
 * and hung-worker.test.ts: it speaks the primary's protocol (src/cluster/protocol.ts), so that the
 * primary's answers can be driven case by case. On hotline:start it makes a warm-up folder named as
 * src/warmup/warm-up.ts names a worker's (its pid and the primary's tag), in the system's temporary
 * folder. argv[2] says what it does.
 *
 * Three stay "starting" (never ready by themselves, as a worker held in its migrations or warm-up)
 * and ignore a drain (a starting worker finishes its start first); they differ in how they answer
 * hotline:quit:
 *  - `deaf`: not at all, and it does not end (a worker stuck in synchronous work): the primary's
 *    quit timer must kill it;
 *  - `drains`: hotline:quit-ignored (its outbound socket had opened), then exits 0 after DRAIN_MS,
 *    past the primary's quit timer;
 *  - `ready-crossing`: hotline:ready, as when its ready message crossed the quit on the channel
 *    (sent before the quit arrived); then exits 0 after DRAIN_MS.
 *
 * One serves: `hangs-once` is ready at once, answers pings, and exits 0 on a drain; but the first
 * such worker of a test (the one that creates the file argv[3] names) blocks its event loop for
 * good at its third ping, as a worker stuck in synchronous work: the primary must kill it.
 */
import fs from 'node:fs';
import os from 'node:os';
import { parseToWorker, type ToPrimary } from '../../src/cluster/protocol';
import { warmUpFolderPrefix } from '../../src/warmup/folders';

const DRAIN_MS = 3000;
const behaviour = process.argv[2];
if (behaviour !== 'deaf' && behaviour !== 'drains' && behaviour !== 'ready-crossing' && behaviour !== 'hangs-once') throw new Error(`fake-worker: unknown behaviour ${String(behaviour)}`);
const hangFlag = process.argv[3];
let pings = 0;

/** True for the first process of the test to claim the flag file. */
function firstToHang(): boolean {
  try {
    fs.writeFileSync(hangFlag, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    return false;
  }
}

function exitSoon(ms: number): void {
  setTimeout(() => {
    clearInterval(keepAlive);
    process.disconnect?.();
  }, ms);
}

const send = (m: ToPrimary): void => void process.send?.(m);
const keepAlive = setInterval(() => undefined, 60_000);

process.on('message', (raw: unknown) => {
  const m = parseToWorker(raw);
  if (!m) return;
  switch (m.type) {
    case 'hotline:start':
      fs.mkdtempSync(warmUpFolderPrefix(os.tmpdir(), process.pid, m.warmUpTag ?? undefined));
      if (behaviour === 'hangs-once') send({ type: 'hotline:ready', eslPort: 1, cronHolder: null });
      return;
    case 'hotline:ping':
      if (++pings === 3 && behaviour === 'hangs-once' && firstToHang()) {
        // Blocked for good: only SIGKILL ends this.
        for (;;);
      }
      send({ type: 'hotline:pong' });
      return;
    case 'hotline:drain':
      if (behaviour === 'hangs-once') exitSoon(0);
      return;
    case 'hotline:quit':
      if (behaviour === 'deaf' || behaviour === 'hangs-once') return;
      send(behaviour === 'drains' ? { type: 'hotline:quit-ignored' } : { type: 'hotline:ready', eslPort: 1, cronHolder: null });
      exitSoon(DRAIN_MS);
      return;
    default:
      return;
  }
});
send({ type: 'hotline:hello' });
