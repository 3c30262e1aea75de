/**
 * A stand-in for a cluster worker (src/cluster/worker.ts) for test/cluster/quit-starting.test.ts:
 * it speaks the primary's protocol (src/cluster/protocol.ts) and stays "starting" (never ready by
 * itself, as a worker held in its migrations or warm-up), so that the primary's answer to a second
 * signal can be driven case by case. On hotline:start it makes a warm-up folder named as
 * src/warmup/warm-up.ts names its own, in the system's temporary folder. A drain is ignored (a
 * starting worker finishes its start first). argv[2] says how it answers hotline:quit:
 *  - `deaf`: not at all, and it does not end (a worker stuck in synchronous work): the primary's
 *    quit timer must kill it;
 *  - `drains`: hotline:quit-ignored (its outbound socket had opened), then exits 0 after DRAIN_MS,
 *    past the primary's quit timer;
 *  - `ready-crossing`: hotline:ready, as when its ready message crossed the quit on the channel
 *    (sent before the quit arrived); then exits 0 after DRAIN_MS.
 */
import fs from 'node:fs';
import os from 'node:os';
import { parseToWorker, type ToPrimary } from '../../src/cluster/protocol';
import { warmUpFolderPrefix } from '../../src/warmup/folders';

const DRAIN_MS = 3000;
const behaviour = process.argv[2];
if (behaviour !== 'deaf' && behaviour !== 'drains' && behaviour !== 'ready-crossing') throw new Error(`fake-worker: unknown behaviour ${String(behaviour)}`);

const send = (m: ToPrimary): void => void process.send?.(m);
const keepAlive = setInterval(() => undefined, 60_000);

process.on('message', (raw: unknown) => {
  const m = parseToWorker(raw);
  if (!m) return;
  switch (m.type) {
    case 'hotline:start':
      fs.mkdtempSync(warmUpFolderPrefix(os.tmpdir()));
      return;
    case 'hotline:quit':
      if (behaviour === 'deaf') return;
      send(behaviour === 'drains' ? { type: 'hotline:quit-ignored' } : { type: 'hotline:ready', eslPort: 1, cronHolder: null });
      setTimeout(() => {
        clearInterval(keepAlive);
        process.disconnect?.();
      }, DRAIN_MS);
      return;
    default:
      return;
  }
});
send({ type: 'hotline:hello' });
