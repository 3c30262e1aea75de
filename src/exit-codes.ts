/**
 * The daemon's exit codes (README "Exit codes"), for the single process, the cluster primary and
 * its workers alike.
 */
import type { Logger } from 'pino';
import { SpoolLockedError } from './cdr/spool-lock';
import { flushLogsSync } from './log';
import { ConfigUnavailableError, StartCancelledError } from './snapshot/store';
import { removeWarmUpFoldersSync } from './warmup/folders';

export const EXIT_OK = 0;
export const EXIT_START_FAILED = 1;
export const EXIT_INVALID_CONFIG = 2;
export const EXIT_SPOOL_LOCKED = 3;

/** Logs a failed start-up, says why on stderr when the operator must act, and exits with its code. */
export function exitOnStartFailure(err: unknown, log: Logger): never {
  if (err instanceof StartCancelledError) {
    // SIGTERM while the start waited for its first configuration: nothing listened, a clean stop.
    log.info({ reason: err.message }, 'stopped before the configuration was loaded: neither /metrics nor the outbound socket opened');
    flushLogsSync();
    process.exit(EXIT_OK);
  }
  log.fatal({ err }, 'start-up failed');
  // The operator's reasons in one plain line too (the JSON log may go to a collector).
  if (err instanceof SpoolLockedError || err instanceof ConfigUnavailableError) process.stderr.write(`hotline: ${err.message}\n`);
  process.exit(err instanceof SpoolLockedError ? EXIT_SPOOL_LOCKED : EXIT_START_FAILED);
}

/**
 * Ends the process at once by `signal` (a second SIGTERM/SIGINT while the daemon starts, README
 * "Stopping"): its log lines written and the warm-up's temporary folder removed first, since the
 * signal's default action runs no `finally` and no 'exit' handler. Dying by the signal, not with
 * 128 + n, is what a process manager reads as a stop (systemd counts an exit 143 as a failure).
 */
export function endBySignal(signal: NodeJS.Signals, log: Logger, msg: string): void {
  log.warn({ signal }, msg);
  flushLogsSync();
  removeWarmUpFoldersSync();
  process.removeAllListeners(signal);
  // With no listener left, Node.js has given the signal back its default action: the process
  // ends by it (on whichever thread the kernel delivers it to) within moments.
  process.kill(process.pid, signal);
}
