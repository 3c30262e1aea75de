/**
 * The configuration read on SQLite (src/snapshot/store.ts readConfigTables): a table of more rows
 * than a page is read in pages with turns of the event loop between them, gives the rows a
 * single `SELECT *` gives, in the same order, and still reads one moment of the database: a
 * DBA's insert committed on another connection between two pages is not in this read, and is in
 * the next. On MariaDB one statement a table, as before.
 */
import t from 'tap';
import { createKnex } from '../../src/db/connect';
import { readConfigTables, SQLITE_CONFIG_PAGE_ROWS } from '../../src/snapshot/store';
import { dbTargets, withDatabases } from '../helpers/db';

const TENANTS = SQLITE_CONFIG_PAGE_ROWS * 10 + 17;

function tenantRows(from: number, count: number): Array<Record<string, unknown>> {
  return Array.from({ length: count }, (_, i) => ({ id: from + i, name: `tenant ${from + i}` }));
}

async function insertTenants(knex: ReturnType<typeof createKnex>, rows: Array<Record<string, unknown>>): Promise<void> {
  for (let i = 0; i < rows.length; i += 200) await knex('tenants').insert(rows.slice(i, i + 200));
}

withDatabases(t, async (t, knex, target) => {
  // Inserted out of id order: the read keeps the table's own order (rowid), as a scan does.
  await insertTenants(knex, tenantRows(TENANTS + 1, 5));
  await insertTenants(knex, tenantRows(1, TENANTS));
  let turns = 0;
  let counting = true;
  const count = (): void => {
    turns++;
    if (counting) setImmediate(count);
  };
  setImmediate(count);
  const read = await readConfigTables(knex);
  counting = false;
  const single = await knex('tenants').select('*');
  t.same(read.tenants, single, `${target}: ${single.length} tenants, the rows and order of one SELECT *`);
  t.equal(read.tenants.length, TENANTS + 5);
  if (target === 'sqlite') {
    t.ok(turns >= 5, `the event loop turned ${turns} times while ${TENANTS + 5} tenants were read ${SQLITE_CONFIG_PAGE_ROWS} at a time`);
  }
});

t.test('SQLite: a row committed by another connection between two pages is not in the read, and is in the next', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  await insertTenants(db.knex, tenantRows(1, TENANTS));
  // A DBA's session: a connection of its own to the same file.
  const dba = createKnex(db.url);
  t.teardown(() => dba.destroy());
  await dba('tenants').count({ n: '*' });

  let inserted = false;
  let turns = 0;
  const reading = readConfigTables(db.knex);
  // Two turns in: the read has begun and has pages to go (its pages are its turns).
  const insertSoon = (): void => {
    if (++turns < 2) {
      setImmediate(insertSoon);
      return;
    }
    void dba('tenants').insert(tenantRows(1_000_000, 1)).then(() => {
      inserted = true;
    });
  };
  setImmediate(insertSoon);
  const read = await reading;
  t.ok(inserted, 'the insert was committed before the read ended');
  t.equal(read.tenants.length, TENANTS, 'the read is of the moment it began: the new tenant is not in it');
  const next = await readConfigTables(db.knex);
  t.equal(next.tenants.length, TENANTS + 1, 'the next read has it');
});
