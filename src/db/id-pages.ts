/**
 * A table read a page at a time by id, the event loop turning between pages: for the cron jobs'
 * reads that grow with a carrier's size (every tenant, every live call), so that the calls' events
 * and statements go on between pages. Through knex a statement's rows come back as one array,
 * turned into objects in one go; on SQLite (better-sqlite3) the statement itself runs on the event
 * loop, and the promise resolves without a turn. At 10,000 tenants the caps job's reads held the
 * loop 106-227 ms at once on SQLite, 22-63 ms on MariaDB (bench/PROFILE.md, release 30).
 *
 * Without a transaction around them the pages are not one snapshot: a row written between two
 * pages is in a later page or in none, never in two, as long as a write keeps a row's id (an
 * update, an upsert).
 */
import type { Knex } from 'knex';
import { nextTurn } from '../next-turn';

type Row = Record<string, unknown>;

/** Pages of the rows `base()` selects (its selection must include `idColumn`'s value as `id`). */
export async function* pagesById(
  base: () => Knex.QueryBuilder,
  opts: {
    pageRows: number;
    /** The id column as the query names it (`l.id` with an alias); default `id`. */
    idColumn?: string;
    /** Runs a page's query (an SQLite reader); default: knex. */
    run?: (query: Knex.QueryBuilder) => Promise<Row[]>;
  },
): AsyncGenerator<Row[]> {
  const idColumn = opts.idColumn ?? 'id';
  const run = opts.run ?? (async (query: Knex.QueryBuilder): Promise<Row[]> => (await query) as Row[]);
  for (let afterId: number | null = null; ; ) {
    const query = base();
    if (afterId !== null) void query.andWhere(idColumn, '>', afterId);
    const rows = await run(query.orderBy(idColumn).limit(opts.pageRows));
    if (rows.length > 0) yield rows;
    if (rows.length < opts.pageRows) return;
    afterId = Number(rows[rows.length - 1].id);
    await nextTurn();
  }
}
