/**
 * Writes of a call that wait, without holding the event loop, for another writer of the same
 * SQLite file on this process's behalf: the CDR writer's thread (src/cdr/batch-runner.ts).
 *
 * SQLite has one writer at a time. A statement of the main connection that meets the thread's
 * transaction waits in SQLite's busy handler, which sleeps the main thread (1 ms, then 2, then 5 …
 * until the lock is free): every call of the daemon waits with it. A call's write (admission of a
 * capped tenant, a PIN failure, a round-robin position) first waits here, asynchronously, until
 * the batches out are answered: only that call waits, and only as long as the batch.
 */
import type { Knex } from 'knex';

/** What a database's writes wait for: null when nothing is out. */
export type PendingWrites = () => Promise<void> | null;

const gates = new WeakMap<Knex, PendingWrites>();

/** From now on, writes through `writesClear(knex)` wait for `pending`. */
export function gateWrites(knex: Knex, pending: PendingWrites): void {
  gates.set(knex, pending);
}

/** Resolves when no other writer of this process holds the file; null (nothing to wait for) most of the time. */
export function writesClear(knex: Knex): Promise<void> | null {
  return gates.get(knex)?.() ?? null;
}
