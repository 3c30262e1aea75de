/**
 * The daemon's exit codes (README "Exit codes"), for the single process, the cluster primary and
 * its workers alike.
 */
import type { Logger } from 'pino';
import { SpoolLockedError } from './cdr/spool-lock';
import { ConfigUnavailableError } from './snapshot/store';

export const EXIT_OK = 0;
export const EXIT_START_FAILED = 1;
export const EXIT_INVALID_CONFIG = 2;
export const EXIT_SPOOL_LOCKED = 3;

/** Logs a failed start-up, says why on stderr when the operator must act, and exits with its code. */
export function exitOnStartFailure(err: unknown, log: Logger): never {
  log.fatal({ err }, 'start-up failed');
  // The operator's reasons in one plain line too (the JSON log may go to a collector).
  if (err instanceof SpoolLockedError || err instanceof ConfigUnavailableError) process.stderr.write(`hotline: ${err.message}\n`);
  process.exit(err instanceof SpoolLockedError ? EXIT_SPOOL_LOCKED : EXIT_START_FAILED);
}
