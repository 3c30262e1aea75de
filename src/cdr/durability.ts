/**
 * Whether a CDR batch the database acknowledged is on disk. The CDR writer deletes a spool
 * segment as soon as its batch commits (writer.ts), so a database that acknowledges commits it
 * has not made durable can lose CDRs that exist nowhere else.
 *
 * - SQLite: the daemon's connection syncs every commit (`synchronous = FULL`, src/db/connect.ts).
 * - MariaDB / MySQL: `innodb_flush_log_at_trx_commit = 1` (the default) writes and syncs the redo
 *   log at each commit. DBAs often set 2 (written at commit, synced about once a second: a crash of
 *   the host or a power cut loses the last second) or 0 (a crash of the server alone does). The
 *   daemon does not refuse to run (it is the DBA's trade-off, and Galera clusters set 2 with
 *   replication for durability) but says so at start.
 */
import type { Knex } from 'knex';
import { dbKind } from '../db/connect';

/** MariaDB's innodb_flush_log_at_trx_commit, or null (SQLite, or not readable). */
export async function readFlushLogAtCommit(knex: Knex): Promise<number | null> {
  if (dbKind(knex) !== 'mysql') return null;
  const [rows] = (await knex.raw('SELECT @@innodb_flush_log_at_trx_commit AS f')) as [Array<{ f: number | string | null }>];
  const value = Number(rows[0]?.f);
  return Number.isInteger(value) ? value : null;
}

/** What the start-up warning says about a setting of innodb_flush_log_at_trx_commit; null when durable. */
export function flushLogAtCommitProblem(value: number | null): string | null {
  if (value === null || value === 1) return null;
  const loses = value === 2 ? 'a crash of the database host or a power cut' : 'a crash of the database server';
  return `innodb_flush_log_at_trx_commit is ${value}, not 1: ${loses} can lose the last second of committed CDRs, and the spool has already deleted them`;
}
