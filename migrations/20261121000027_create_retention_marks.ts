// retention_marks: how far back each retention purge is complete, so that the next run looks only
// at what aged out since (recordings keep their CDR row: without a mark every run would walk
// through all the rows it already emptied).
import type { Knex } from 'knex';
import { createTable, dropTable, utcDatetime } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'retention_marks', 'progress of the retention purges', (t) => {
    t.string('kind', 32).notNullable().unique().comment('recordings');
    utcDatetime(knex, t, 'done_before').notNullable().comment('everything that started before this (UTC) has been purged');
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'retention_marks');
}
