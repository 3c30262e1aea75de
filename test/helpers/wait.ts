/**
 * Waiting for a condition instead of sleeping: polls `check` until it holds, and fails with `what`
 * after `timeoutMs` (a bound for a broken daemon, far above what a loaded machine needs: the test
 * goes on the moment the condition holds, so the bound never decides a passing run).
 */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, intervalMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** How many turns the event loop makes while `work` runs (a setImmediate loop beside it). */
export async function turnsDuring<T>(work: () => Promise<T>): Promise<{ result: T; turns: number }> {
  let turns = 0;
  let counting = true;
  const count = (): void => {
    turns++;
    if (counting) setImmediate(count);
  };
  setImmediate(count);
  try {
    return { result: await work(), turns };
  } finally {
    counting = false;
  }
}

/** Whether a process of that pid is there (signal 0: nothing sent; a zombie counts until reaped). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
