// Runs the knex migrations in migrations/ (TypeScript under ts-node) or dist/migrations/ (compiled).
//
// A custom migration source instead of knex's directory loader, because:
// - migration names are recorded WITHOUT extension ('20261121000001_create_tenants'), so a
//   database migrated by the tests under ts-node (.ts) is not "corrupt" for the compiled daemon (.js);
// - only top-level YYYYMMDDHHMMSS_*.ts|js files are migrations: migrations/lib (shared helpers),
//   .d.ts and .js.map files are not.
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';

const RUNNING_TS = __filename.endsWith('.ts');
// src/db -> migrations, dist/src/db -> dist/migrations
const MIGRATIONS_DIR = path.resolve(__dirname, '..', '..', 'migrations');
const EXTENSION = RUNNING_TS ? '.ts' : '.js';
const MIGRATION_FILE = /^\d{14}_[a-z0-9_]+$/;

class MigrationFiles implements Knex.MigrationSource<string> {
  getMigrations(): Promise<string[]> {
    const files = fs
      .readdirSync(MIGRATIONS_DIR)
      .filter((f) => f.endsWith(EXTENSION) && !f.endsWith('.d.ts') && MIGRATION_FILE.test(stripExt(f)))
      .sort();
    return Promise.resolve(files);
  }

  getMigrationName(file: string): string {
    return stripExt(file);
  }

  async getMigration(file: string): Promise<Knex.Migration> {
    return (await import(path.join(MIGRATIONS_DIR, file))) as Knex.Migration;
  }
}

function stripExt(file: string): string {
  return file.replace(/\.(ts|js)$/, '');
}

function config(): Knex.MigratorConfig {
  return { migrationSource: new MigrationFiles(), tableName: 'knex_migrations' };
}

/** Apply every pending migration; returns the names applied (empty when up to date). */
export async function migrateLatest(knex: Knex): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest(config())) as [number, string[]];
  return applied;
}

/** Undo every applied migration (knex_migrations bookkeeping tables remain); returns the names undone. */
export async function migrateDownAll(knex: Knex): Promise<string[]> {
  const [, undone] = (await knex.migrate.rollback(config(), true)) as [number, string[]];
  return undone;
}
