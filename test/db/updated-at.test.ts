// updated_at follows hand edits (DBAs run plain UPDATEs; the daemon reloads by updated_at):
// MySQL via ON UPDATE CURRENT_TIMESTAMP(3), SQLite via the per-table AFTER UPDATE trigger.
import t from 'tap';
import { fromDbTimestamp } from '../../src/db/connect';
import { sleep, withDatabases } from '../helpers/db';

interface Row {
  number: string;
  created_at: Date | string;
  updated_at: Date | string;
}

withDatabases(t, async (t, knex) => {
  const [id] = await knex('destinations').insert({ group_id: 1, number: '13800000001' });
  const read = async (): Promise<Row> => (await knex('destinations').where({ id }).first()) as Row;

  const before = await read();
  const created = fromDbTimestamp(before.created_at);
  t.ok(created, 'created_at defaults to now');
  t.ok(Math.abs(created!.getTime() - Date.now()) < 60_000, 'created_at is UTC now (not shifted by a time zone)');
  t.equal(fromDbTimestamp(before.updated_at)?.getTime(), created!.getTime(), 'updated_at starts at created_at');

  await sleep(20);
  await knex.raw('UPDATE destinations SET number = ? WHERE id = ?', ['13800000009', id]);
  const edited = await read();
  t.equal(edited.number, '13800000009');
  t.ok(
    fromDbTimestamp(edited.updated_at)!.getTime() > fromDbTimestamp(before.updated_at)!.getTime(),
    'a hand edit that does not mention updated_at moves it forward',
  );
  t.equal(fromDbTimestamp(edited.created_at)?.getTime(), created!.getTime(), 'created_at unchanged');

  // Millisecond precision survives, in the text form both databases accept.
  await sleep(20);
  await knex.raw('UPDATE destinations SET number = ?, updated_at = ? WHERE id = ?', [
    '13800000010',
    '2001-02-03 04:05:06.789',
    id,
  ]);
  t.equal(
    fromDbTimestamp((await read()).updated_at)?.toISOString(),
    '2001-02-03T04:05:06.789Z',
    'an explicit updated_at is kept',
  );
});
