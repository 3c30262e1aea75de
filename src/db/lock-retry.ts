/**
 * Statements and transactions that the database refused for a lock, run again. InnoDB rolls back
 * one of two transactions that wait for each other (ER_LOCK_DEADLOCK) and gives up a wait after
 * innodb_lock_wait_timeout (ER_LOCK_WAIT_TIMEOUT); SQLite answers SQLITE_BUSY when another
 * connection (another process, or the CDR writer's thread: src/cdr/batch-runner.ts) holds its
 * write lock past busy_timeout, and at once, without waiting, to a transaction that read before it
 * wrote while another connection held the lock or had committed since the read (SQLITE_BUSY, or
 * SQLITE_BUSY_SNAPSHOT in WAL mode). Each time the work was undone whole, so running it again is
 * safe; a short pause with jitter keeps two retrying writers from meeting again.
 */

/** SQLite's busy refusals: SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, …). */
function isSqliteBusy(code: string | undefined): boolean {
  return code === 'SQLITE_BUSY' || (code?.startsWith('SQLITE_BUSY_') ?? false);
}

/** A refusal a retry can get past. */
export function isLockConflict(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT' || isSqliteBusy(code);
}

/**
 * Runs `work` until it does not fail with a lock conflict, `attempts` times at most in all.
 * SQLITE_BUSY is retried only when `sqliteBusy` says so: it comes after busy_timeout (5 s) already
 * waited with the embedded database's only connection held, so a call's statement gives up at
 * once (its caller's policy decides) while the CDR writer, which must get through, tries again.
 */
export async function withLockRetry<T>(work: () => Promise<T>, options: { attempts?: number; sqliteBusy?: boolean } = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  for (let i = 1; ; i++) {
    try {
      return await work();
    } catch (err) {
      const code = (err as { code?: string } | null)?.code;
      if (i >= attempts || !isLockConflict(err) || (isSqliteBusy(code) && options.sqliteBusy !== true)) throw err;
      await new Promise((r) => setTimeout(r, 5 * i + Math.floor(Math.random() * 10)));
    }
  }
}
