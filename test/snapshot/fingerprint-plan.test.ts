// The poll that looks for a DBA's edit every 2 s (FINGERPRINT_SQL) must not read every row. On
// SQLite it runs on the calls' event loop: read whole, it blocked it 6.8-7.3 ms (p50) at 10,000
// tenants (bench/PROFILE.md, release 32). Each table's MAX(id) and MAX(updated_at) must be answered
// from an index, by each database's own planner, as the statement is written (EXPLAIN of the same
// text), with the tables empty and with the demo tenants in them. The poll's results (an edit, an
// insert, a delete noticed) are store.test.ts's. The SQLite plan's wording is that of the SQLite
// better-sqlite3 bundles (package-lock.json); the MariaDB one, MariaDB's (MySQL 8 is not tested).
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { rawRows } from '../../src/db/connect';
import { seedDemoIfEmpty } from '../../src/db/demo-seed';
import { SNAPSHOT_TABLES } from '../../src/snapshot/build';
import { FINGERPRINT_SQL } from '../../src/snapshot/store';
import { withDatabases, type TargetName } from '../helpers/db';

interface MariadbPlanRow {
  table: string | null;
  key: string | null;
  Extra: string | null;
}

async function checkPlan(t: Test, knex: Knex, target: TargetName): Promise<void> {
  if (target === 'sqlite') {
    const details = (await rawRows<{ detail: string }>(knex, `EXPLAIN QUERY PLAN ${FINGERPRINT_SQL}`)).map((row) => row.detail);
    for (const table of SNAPSHOT_TABLES) {
      // "SEARCH t" is a lone MAX(rowid), "SEARCH t USING COVERING INDEX i" a lone MAX(col) over an
      // index. A lone COUNT(*) shows as "SCAN t USING COVERING INDEX i" but reads no row: it counts
      // the index's cells. Any other SCAN of the table (the three aggregates in one SELECT show
      // one, over the index or the rows) decodes every row.
      t.ok(details.includes(`SEARCH ${table}`), `${table}: MAX(id) is one seek of the rowid`);
      t.ok(details.includes(`SEARCH ${table} USING COVERING INDEX ${table}_updated_at_index`), `${table}: MAX(updated_at) is one seek of its index`);
      const scans = details.filter((d) => d === `SCAN ${table}` || d.startsWith(`SCAN ${table} `));
      t.equal(scans.length, 1, `${table}: one scan, its COUNT(*)`);
      t.match(scans[0] ?? '', / USING COVERING INDEX /, `${table}: the COUNT(*) over an index, not the rows`);
    }
    return;
  }
  // MariaDB answers a lone MIN/MAX over an index while planning, one dive into the index ("Select
  // tables optimized away", or "No matching min/max row" for an empty table), and lists no table
  // for it; without the index, MAX(updated_at) is a second read of the table, with no key.
  // COUNT(*) scans the narrowest index InnoDB has.
  const [rows] = (await knex.raw(`EXPLAIN ${FINGERPRINT_SQL}`)) as [MariadbPlanRow[]];
  const minMax = rows.filter((row) => row.Extra === 'Select tables optimized away' || row.Extra === 'No matching min/max row');
  t.equal(minMax.length, 2 * SNAPSHOT_TABLES.length, 'every MAX(id) and MAX(updated_at) answered from an index');
  for (const table of SNAPSHOT_TABLES) {
    const reads = rows.filter((row) => row.table === table);
    t.equal(reads.length, 1, `${table}: read once (its COUNT)`);
    t.not(reads[0]?.key ?? null, null, `${table}: its COUNT scans an index`);
  }
}

withDatabases(t, async (t, knex, target) => {
  await t.test('empty tables', (t) => checkPlan(t, knex, target));
  t.ok(await seedDemoIfEmpty(knex), 'demo tenants seeded');
  await t.test('the demo tenants', (t) => checkPlan(t, knex, target));
});
