/**
 * Statements and transactions that the database refused for a lock, run again. InnoDB rolls back
 * one of two transactions that wait for each other (ER_LOCK_DEADLOCK) and gives up a wait after
 * innodb_lock_wait_timeout (ER_LOCK_WAIT_TIMEOUT); SQLite answers SQLITE_BUSY when another
 * process holds its write lock past busy_timeout. Each time the work was undone whole, so running
 * it again is safe; a short pause with jitter keeps two retrying writers from meeting again.
 */

/** A refusal a retry can get past. */
export function isLockConflict(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'SQLITE_BUSY';
}

/** Runs `work` until it does not fail with a lock conflict, `attempts` times at most in all. */
export async function withLockRetry<T>(work: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await work();
    } catch (err) {
      if (i >= attempts || !isLockConflict(err)) throw err;
      await new Promise((r) => setTimeout(r, 5 * i + Math.floor(Math.random() * 10)));
    }
  }
}
