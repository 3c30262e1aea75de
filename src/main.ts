/**
 * Entry point: `npm start`. Exit codes (README "Stopping"): 0 after a clean stop (SIGTERM/SIGINT
 * drain), 1 when start-up failed (among others: the configuration cannot be read from the database
 * and there is no cached copy), 2 for an invalid setting (the message names the key), 3 when the
 * CDR spool folder is in use by another daemon.
 */
import { ConfigError, loadSettings } from './config';
import { SpoolLockedError } from './cdr/spool-lock';
import { Daemon } from './daemon';
import { createLogger } from './log';
import { ConfigUnavailableError } from './snapshot/store';

const EXIT_START_FAILED = 1;
const EXIT_INVALID_CONFIG = 2;
const EXIT_SPOOL_LOCKED = 3;

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
  let daemon: Daemon;
  try {
    daemon = await Daemon.start(settings, log);
  } catch (err) {
    log.fatal({ err }, 'start-up failed');
    // The operator's reasons in one plain line too (the JSON log may go to a collector).
    if (err instanceof SpoolLockedError || err instanceof ConfigUnavailableError) process.stderr.write(`hotline: ${err.message}\n`);
    process.exit(err instanceof SpoolLockedError ? EXIT_SPOOL_LOCKED : EXIT_START_FAILED);
  }
  let signalled = false;
  const shutdown = (signal: string): void => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, 'signal received');
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
