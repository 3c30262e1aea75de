/**
 * withTimeout (src/calls/call-state.ts) bounds every database wait of a call. Node.js sets a
 * setTimeout delay beyond 2^31 - 1 ms (24.8 days) to 1 ms; a bound built from settings
 * (click-to-call: 5 × CALL_DB_TIMEOUT_MS, up to 35 days) must not fire at once.
 */
import t from 'tap';
import { CallStateTimeout, withTimeout } from '../../src/calls/call-state';
import { MAX_TIMER_MS, timerDelay } from '../../src/timer-limit';

t.test('a bound beyond 24.8 days does not fire at once', async (t) => {
  const work = new Promise<string>((resolve) => setTimeout(() => resolve('answered'), 50));
  t.equal(await withTimeout('limits', 5 * 604_800_000, work), 'answered');
});

t.test('a bound that runs out rejects with CallStateTimeout', async (t) => {
  await t.rejects(withTimeout('caller memory', 20, new Promise(() => undefined)), CallStateTimeout);
});

t.test('timerDelay keeps what setTimeout can wait', async (t) => {
  t.equal(timerDelay(1000), 1000);
  t.equal(timerDelay(MAX_TIMER_MS), MAX_TIMER_MS);
  t.equal(timerDelay(3_024_000_000), MAX_TIMER_MS);
});
