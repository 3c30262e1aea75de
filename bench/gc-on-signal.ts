/**
 * Preloaded into the daemon by `npm run bench:memory` (`node --expose-gc -r
 * dist/bench/gc-on-signal.js dist/src/main.js`): SIGUSR2 runs a full garbage collection, so the
 * heap gauges on /metrics that follow show what is alive, not what is waiting to be collected.
 * No inspector, no change to the daemon.
 */
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
});
