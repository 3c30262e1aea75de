/**
 * Whether a CDR batch the database acknowledged is on disk. The CDR writer deletes a spool
 * segment as soon as its batch commits (writer.ts), so a database that acknowledges commits it
 * has not made durable can lose CDRs that exist nowhere else.
 *
 * - SQLite: the daemon's connection syncs every commit (`synchronous = FULL`, src/db/connect.ts).
 * - MariaDB / MySQL: `innodb_flush_log_at_trx_commit` 1 (the default) writes and syncs the redo
 *   log at each commit, and MariaDB's 3 does too (through its group commit). DBAs often set 2
 *   (written at commit, synced about once a second: a crash of the host or a power cut loses the
 *   last second) or 0 (a crash of the server alone does). The daemon does not refuse to run (it is
 *   the DBA's trade-off, and Galera clusters set 2 with replication for durability) but says so.
 */
import type { Knex } from 'knex';
import { dbKind, rawRows } from '../db/connect';

/** MariaDB's innodb_flush_log_at_trx_commit, or null (SQLite, or no number); rejects when the database does not answer within `timeoutMs`. */
export async function readFlushLogAtCommit(knex: Knex, timeoutMs: number): Promise<number | null> {
  if (dbKind(knex) !== 'mysql') return null;
  const rows = await rawRows<{ f: number | string | null }>(knex, 'SELECT @@innodb_flush_log_at_trx_commit AS f', [], { timeoutMs });
  const f = rows[0]?.f;
  if (f === null || f === undefined || f === '') return null;
  const value = Number(f);
  return Number.isInteger(value) ? value : null;
}

/** Values of innodb_flush_log_at_trx_commit under which a commit that returned is on disk. */
const DURABLE = new Set([1, 3]);

/** What the warning says about a setting of innodb_flush_log_at_trx_commit; null when commits are durable or it is unknown. */
export function flushLogAtCommitProblem(value: number | null): string | null {
  if (value === null || DURABLE.has(value)) return null;
  const loses = value === 2 ? 'a crash of the database host or a power cut' : 'a crash of the database server';
  return `innodb_flush_log_at_trx_commit is ${value}, not 1: ${loses} can lose the last second of committed CDRs, and the spool has already deleted them`;
}
