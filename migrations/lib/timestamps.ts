// Shared table scaffolding for every migration: id, UTF-8 MySQL tables, created_at/updated_at that
// stay current even when a DBA edits a row by hand (the daemon reloads config by updated_at).
//
// MySQL/MariaDB: TIMESTAMP(3) ... ON UPDATE CURRENT_TIMESTAMP(3) does it natively (and stores UTC
// because the connection sets time_zone = '+00:00').
// SQLite: no ON UPDATE clause exists, so timestamps are UTC text 'YYYY-MM-DD HH:MM:SS.SSS' and an
// AFTER UPDATE trigger per table bumps updated_at unless the UPDATE itself changed it.
// (SQLite fires the trigger even for an UPDATE that changes nothing; MySQL then leaves updated_at alone.)
//
// Knex drops .comment() on SQLite silently, so migrations can comment columns unconditionally.
import type { Knex } from 'knex';
import { dbKind } from '../../src/db/connect';

/** SQLite expression for "now" in the same text form MySQL's DATETIME(3) prints. */
const SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f','now')";

export interface TableOptions {
  /** BIGINT id for tables that grow without bound (cdrs, notifications). */
  bigId?: boolean;
}

/**
 * Create `name` with `id`, the caller's columns, then `created_at` and `updated_at`, plus the
 * SQLite updated_at trigger. Every migration creates its tables through here.
 */
export async function createTable(
  knex: Knex,
  name: string,
  comment: string,
  build: (table: Knex.CreateTableBuilder) => void,
  opts: TableOptions = {},
): Promise<void> {
  const mysql = dbKind(knex) === 'mysql';
  await knex.schema.createTable(name, (table) => {
    if (mysql) {
      table.engine('InnoDB');
      table.charset('utf8mb4');
      table.collate('utf8mb4_unicode_ci');
      table.comment(comment);
    }
    if (opts.bigId) table.bigIncrements('id').primary();
    else table.increments('id').primary();
    build(table);
    if (mysql) {
      table
        .specificType('created_at', 'TIMESTAMP(3)')
        .notNullable()
        .defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'))
        .comment('row created (UTC)');
      table
        .specificType('updated_at', 'TIMESTAMP(3)')
        .notNullable()
        .defaultTo(knex.raw('CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)'))
        .comment('last change (UTC), also by hand edits');
    } else {
      table.specificType('created_at', 'TEXT').notNullable().defaultTo(knex.raw(`(${SQLITE_NOW})`));
      table.specificType('updated_at', 'TEXT').notNullable().defaultTo(knex.raw(`(${SQLITE_NOW})`));
    }
  });
  if (!mysql) {
    // `IS` rather than `=`: also true when both are NULL. recursive_triggers is off by default,
    // so the inner UPDATE does not fire this trigger again.
    await knex.raw(
      `CREATE TRIGGER ${triggerName(name)} AFTER UPDATE ON ${name} FOR EACH ROW ` +
        `WHEN NEW.updated_at IS OLD.updated_at BEGIN ` +
        `UPDATE ${name} SET updated_at = ${SQLITE_NOW} WHERE id = NEW.id; END`,
    );
  }
}

/** Exact reverse of createTable. */
export async function dropTable(knex: Knex, name: string): Promise<void> {
  if (dbKind(knex) === 'sqlite') await knex.raw(`DROP TRIGGER IF EXISTS ${triggerName(name)}`);
  await knex.schema.dropTableIfExists(name);
}

/**
 * A UTC instant column other than created_at/updated_at (cdrs.started_at, sent_at…), nullable
 * unless the caller says otherwise or asks for defaultNow (NOT NULL, default now).
 * MySQL: DATETIME(3) (no 2038 limit, no session time zone conversion; the session is UTC anyway).
 * SQLite: TEXT in the same 'YYYY-MM-DD HH:MM:SS.SSS' form, so string comparison orders it.
 */
export function utcDatetime(
  knex: Knex,
  table: Knex.CreateTableBuilder,
  name: string,
  opts: { defaultNow?: boolean } = {},
): Knex.ColumnBuilder {
  const mysql = dbKind(knex) === 'mysql';
  const column = table.specificType(name, mysql ? 'DATETIME(3)' : 'TEXT');
  if (opts.defaultNow) column.notNullable().defaultTo(knex.raw(mysql ? 'CURRENT_TIMESTAMP(3)' : `(${SQLITE_NOW})`));
  return column;
}

/** DECIMAL(14,4) money in currency units (SQLite stores it as a float: see src/db/connect.ts). */
export function money(table: Knex.CreateTableBuilder, name: string): Knex.ColumnBuilder {
  return table.decimal(name, 14, 4);
}

/** A reference to another table's id: plain indexed-where-needed integer, no FK constraint (DBAs edit by hand). */
export function ref(table: Knex.CreateTableBuilder, name: string): Knex.ColumnBuilder {
  return table.integer(name).unsigned();
}

function triggerName(table: string): string {
  return `${table}_touch_updated_at`;
}
