/**
 * Entry point: `npm start`. Exit codes (README "Stopping"): 0 after a clean stop (SIGTERM/SIGINT
 * drain), 1 when start-up failed (among others: the configuration cannot be read from the database
 * and there is no cached copy), 2 for an invalid setting (the message names the key), 3 when the
 * CDR spool folder is in use by another daemon. A SIGTERM/SIGINT while the daemon starts ends its
 * warm-up and stops it once up (exit 0); a second one ends the process at once, by that signal.
 * (Once the outbound socket listens, calls may be up: from then on a second signal is logged and
 * the daemon drains as for the first.)
 * With workers, a second one ends the workers whose outbound socket has not opened at once; when
 * none ever served calls, the primary then ends by that signal too, else it waits for the others
 * to drain.
 *
 * CLUSTER_WORKERS = 1 (the default): this process is the daemon. More: this process becomes the
 * cluster's primary (src/cluster/primary.ts) and the same entry point runs in every worker
 * (src/cluster/worker.ts).
 */
import cluster from 'node:cluster';
import { ConfigError, loadSettings } from './config';
import { ClusterPrimary } from './cluster/primary';
import type { StopSignal } from './cluster/protocol';
import { runWorker } from './cluster/worker';
import { Daemon } from './daemon';
import { EXIT_INVALID_CONFIG, endBySignal, exitOnStartFailure } from './exit-codes';
import { createLogger } from './log';
import { intendedNodeFlags, missingNodeFlags } from './node-flags';

async function main(): Promise<void> {
  let settings;
  try {
    settings = loadSettings();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hotline: ${err.message}\n`);
      process.exit(EXIT_INVALID_CONFIG);
    }
    throw err;
  }
  const log = createLogger(settings.log.level);
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled promise rejection'));
  // Node prints the stack to stderr and exits 1; the JSON log says so too (written at exit, src/log.ts).
  process.on('uncaughtExceptionMonitor', (err) => log.fatal({ err }, 'uncaught exception: the process exits'));
  if (cluster.isWorker) {
    runWorker(settings, log);
    return;
  }
  const missing = missingNodeFlags(process.execArgv, intendedNodeFlags());
  if (missing.length > 0) {
    log.warn({ missing }, 'node was started without the flags npm start passes (package.json config.nodeFlags): expect a full garbage collection every second or so under load, and longer young-generation pauses after a burst of calls; put them on node\'s command line (README "Node.js flags")');
  }
  // SIGTERM/SIGINT are taken from before the start: one that comes while the daemon starts (its
  // warm-up can take seconds) ends the warm-up at once, and the daemon stops as soon as it is up,
  // cleanly, instead of dying half-started.
  const starting = new AbortController();
  let stop: (() => Promise<number>) | null = null;
  let primary: ClusterPrimary | null = null;
  let signalled = false;
  let listening = false;
  /** Set when a second signal came while no worker served yet: the primary ends by it once its workers are gone. */
  let endSignal: StopSignal | null = null;
  const stopAndExit = (run: () => Promise<number>): void => {
    run().then(
      // By the signal only after a clean stop: a worker that failed (or was killed) keeps exit 1.
      (code) => (endSignal && code === 0 ? endBySignal(endSignal, log, 'second signal during start-up: the workers are gone, the primary ends by it') : process.exit(code)),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const shutdown = (signal: StopSignal): void => {
    if (signalled) {
      // A second signal while the start still runs (a migration waiting on a lock, say): the
      // process dies by it at once, as it did before signals were taken during the start.
      if (primary !== null) {
        if (primary.quitStarting(signal)) endSignal = signal;
      } else if (!listening) {
        // One process whose outbound socket never opened (still starting, or stopping a start
        // cut short): no call to lose, the CDR spool is on disk.
        endBySignal(signal, log, 'second signal during start-up: the process ends at once');
      } else {
        // Calls may be up (the click-to-call API may still be starting): they are drained.
        log.warn({ signal }, 'second signal: the outbound socket is open, calls may be up; stopping as for the first');
      }
      return;
    }
    signalled = true;
    log.info({ signal, starting: stop === null }, 'signal received');
    starting.abort();
    if (stop) stopAndExit(stop);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (settings.cluster.workers > 1) {
    let started: ClusterPrimary;
    try {
      started = await ClusterPrimary.start(settings, log);
    } catch (err) {
      exitOnStartFailure(err, log);
    }
    primary = started;
    stop = () => started.stop();
  } else {
    let daemon: Daemon;
    try {
      daemon = await Daemon.start(settings, log, { starting: starting.signal, onListening: () => (listening = true) });
    } catch (err) {
      exitOnStartFailure(err, log);
    }
    stop = () => daemon.stop().then(() => 0);
  }
  if (signalled) stopAndExit(stop);
}

void main();
