/**
 * Resolves after the event loop has turned once (an immediate): the I/O callbacks already waiting,
 * the calls' events among them, run first. The one pause of long reads and builds between their
 * steps (cron jobs' pages, the configuration's reload, the spool's replay).
 */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
