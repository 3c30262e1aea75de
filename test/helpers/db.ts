// Fresh databases for DB tests: every test runs against SQLite AND a real MariaDB/MySQL.
//
// MariaDB: connects to TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/test), creates a
// throw-away database hotline_t_<random>, and drops it in teardown. An unreachable server FAILS
// the test on purpose: the production target must not go silently untested.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import type { Test } from 'tap';
import { createKnex } from '../../src/db/connect';
import { migrateLatest } from '../../src/db/migrate';

export type TargetName = 'sqlite' | 'mariadb';

export interface TestDb {
  knex: Knex;
  /** The DATABASE_URL of this database, for starting a daemon on it. */
  url: string;
  destroy(): Promise<void>;
}

export interface DbTarget {
  name: TargetName;
  /** A fresh, empty database; migrated to latest unless `migrate: false`. */
  create(opts?: { migrate?: boolean }): Promise<TestDb>;
}

/** How long a test's query waits for a pooled connection (see mariadbTarget). */
export const TEST_ACQUIRE_TIMEOUT_MS = 120_000;

export const TEST_MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export function dbTargets(): DbTarget[] {
  return [
    { name: 'sqlite', create: createSqlite },
    { name: 'mariadb', create: createMariadb },
  ];
}

/** Run `fn` once per target as a subtest, with a fresh migrated database torn down afterwards. */
export function withDatabases(t: Test, fn: (t: Test, knex: Knex, target: TargetName) => Promise<void>): void {
  for (const target of dbTargets()) {
    void t.test(target.name, async (st) => {
      const db = await target.create();
      st.teardown(() => db.destroy());
      await fn(st, db.knex, target.name);
    });
  }
}

async function createSqlite(opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-t-'));
  const url = `sqlite:${path.join(dir, 'test.db')}`;
  const knex = createKnex(url);
  if (opts.migrate !== false) await migrateLatest(knex);
  return {
    knex,
    url,
    async destroy() {
      await knex.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function createMariadb(opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const admin = createKnex(TEST_MYSQL_URL, { poolMax: 1, acquireTimeoutMs: 5000 });
  const name = `hotline_t_${crypto.randomBytes(6).toString('hex')}`;
  try {
    await admin.raw(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } catch (err) {
    await admin.destroy();
    throw new Error(
      `MariaDB/MySQL is not reachable at ${TEST_MYSQL_URL} (${(err as Error).message}). ` +
        'Start MariaDB (e.g. `service mariadb start`) or point TEST_MYSQL_URL at a server where the user may CREATE DATABASE.',
      { cause: err },
    );
  }
  const url = new URL(TEST_MYSQL_URL);
  url.pathname = `/${name}`;
  // A test proves what is written, not how fast: on a loaded 2-vCPU machine a burst of concurrent
  // transactions waits for one of 4 connections far longer than a daemon's 10 s (seen: 100 at once).
  const knex = createKnex(url.toString(), { poolMax: 4, acquireTimeoutMs: TEST_ACQUIRE_TIMEOUT_MS });
  const destroy = async (): Promise<void> => {
    await knex.destroy();
    try {
      await admin.raw(`DROP DATABASE IF EXISTS ${name}`);
    } finally {
      await admin.destroy();
    }
  };
  try {
    if (opts.migrate !== false) await migrateLatest(knex);
  } catch (err) {
    await destroy();
    throw err;
  }
  return { knex, url: url.toString(), destroy };
}

/** Tables created by the migrations (SCHEMA.md plus the daemon's own), for down-all checks. */
export async function listTables(knex: Knex, kind: TargetName): Promise<string[]> {
  if (kind === 'sqlite') {
    const rows: Array<{ name: string }> = await knex('sqlite_master')
      .where({ type: 'table' })
      .andWhereNot('name', 'like', 'sqlite_%')
      .select('name');
    return rows.map((r) => r.name).sort();
  }
  const rows: Array<{ name: string }> = await knex('information_schema.tables')
    .where('table_schema', knex.raw('DATABASE()'))
    .select('table_name as name');
  return rows.map((r) => r.name).sort();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
