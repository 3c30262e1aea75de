/**
 * One spool folder, one daemon. Two daemons replaying the same folder delete each other's open
 * segment (issue 10: 61 of 1,200 CDRs lost), so the folder is locked for as long as a daemon
 * uses it, and a second daemon refuses to start.
 *
 * The lock is an exclusive SQLite transaction on `<folder>/spool.lock` (better-sqlite3, already
 * the embedded database driver). SQLite takes it with fcntl() byte-range locks, which the kernel
 * drops when the process ends, however it ends: a `kill -9` leaves no stale lock to clean up, and
 * there is no pid file whose pid the system may have given to another process since. The lock
 * holds between processes on one host, also across containers sharing the folder (same kernel),
 * and between two spools of one process (SQLite tracks its own locks per file). It does not hold
 * on a network file system without working POSIX locks: keep the spool on local disk.
 *
 * The lock file is never deleted (a deleted lock file lets two processes lock two different
 * files under one name). Who holds it is written next to it, in `spool.lock.owner`, for the
 * message a second daemon prints.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';

export const LOCK_FILE = 'spool.lock';
const OWNER_FILE = 'spool.lock.owner';

/** Another daemon (or another spool in this process) holds the folder. Stable code: SPOOL_LOCKED. */
export class SpoolLockedError extends Error {
  readonly code = 'SPOOL_LOCKED';

  constructor(readonly dir: string, readonly owner: string | null) {
    super(
      `the CDR spool folder ${dir} is in use by another daemon${owner ? ` (${owner})` : ''}; ` +
        'each daemon needs its own CDR_SPOOL_DIR (two daemons on one folder delete each other\'s CDRs)',
    );
  }
}

export class SpoolLock {
  private constructor(private db: Database.Database | null) {}

  /** Takes the folder's lock now, or throws SpoolLockedError. The folder must exist. */
  static acquire(dir: string): SpoolLock {
    const file = path.join(dir, LOCK_FILE);
    // timeout 0: a held lock fails at once with SQLITE_BUSY instead of waiting for it.
    const db = new Database(file, { timeout: 0 });
    try {
      // No journal file next to it: nothing is ever written, the transaction only holds the lock.
      db.exec('PRAGMA journal_mode = MEMORY');
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new SpoolLockedError(dir, readOwner(dir));
      throw err;
    }
    try {
      const owner = `pid ${process.pid} on ${os.hostname()} since ${new Date().toISOString()}`;
      const tmp = path.join(dir, `${OWNER_FILE}.${process.pid}.tmp`);
      fs.writeFileSync(tmp, `${owner}\n`, { mode: 0o600 });
      fs.renameSync(tmp, path.join(dir, OWNER_FILE));
    } catch {
      // Only the message of a refused second daemon needs it.
    }
    return new SpoolLock(db);
  }

  /** Lets the folder go (a clean shutdown; a dead process lets it go by itself). */
  release(): void {
    if (!this.db) return;
    try {
      this.db.exec('ROLLBACK');
    } finally {
      this.db.close();
      this.db = null;
    }
  }
}

function readOwner(dir: string): string | null {
  try {
    return fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8').trim() || null;
  } catch {
    return null;
  }
}
