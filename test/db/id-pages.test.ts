// pagesById on SQLite and MariaDB: a table read a page at a time by id, the event loop turning
// between pages; a filter of the caller's stays whole (grouped), a row updated between two pages is
// read once, a row added meanwhile in a later page.
import t from 'tap';
import { pagesById } from '../../src/db/id-pages';
import { addTenant, eachDb } from '../billing/helpers';

eachDb(t, 'pages by id: every row once, in id order, with turns between pages', async (t, { knex }) => {
  const ids: number[] = [];
  for (let i = 0; i < 7; i++) ids.push(await addTenant(knex, { name: `t${i}`, status: i === 3 ? 'closed' : 'active' }));
  // An OR in the caller's filter: pagesById's id condition must not attach to one side of it.
  const query = () => knex('tenants').where((q) => void q.where('status', 'active').orWhere('name', 't3')).select('id', 'name');
  const seen: number[] = [];
  const sizes: number[] = [];
  let turns = 0;
  let counting = true;
  const count = (): void => {
    turns++;
    if (counting) setImmediate(count);
  };
  let turnsAtFirstPage = -1;
  for await (const rows of pagesById(query, { pageRows: 2 })) {
    if (turnsAtFirstPage < 0) {
      turnsAtFirstPage = turns;
      setImmediate(count);
      // Between pages: a row already read is updated, one not yet read is updated, one is added.
      await knex('tenants').where({ id: ids[0] }).update({ name: 't0 renamed' });
      await knex('tenants').where({ id: ids[5] }).update({ name: 't5 renamed' });
      ids.push(await addTenant(knex, { name: 'late' }));
    }
    sizes.push(rows.length);
    for (const r of rows) seen.push(Number(r.id));
  }
  counting = false;
  t.same(seen, ids, 'every row once, in id order: the updated ones once, the added one at the end');
  t.same(sizes, [2, 2, 2, 2], 'pages of 2; the last one full, then an empty read ends it');
  t.ok(turns >= 3, `the event loop turned between the pages (${turns})`);
});

eachDb(t, 'pages by id: no rows, fewer than a page, exactly a page', async (t, { knex }) => {
  const read = async (pageRows: number): Promise<number[]> => {
    const out: number[] = [];
    for await (const rows of pagesById(() => knex('tenants').select('id'), { pageRows })) out.push(rows.length);
    return out;
  };
  t.same(await read(3), [], 'no rows: no page');
  for (let i = 0; i < 3; i++) await addTenant(knex, {});
  t.same(await read(5), [3], 'fewer than a page: one');
  t.same(await read(3), [3], 'exactly a page: one, and an empty read that yields nothing');
});
