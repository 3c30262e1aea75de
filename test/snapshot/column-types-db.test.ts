// A DBA changes a configuration column's type on a live system (ALTER … MODIFY to DATE, TIME,
// BIGINT), or stores a BLOB in a text column: the rows read back through the real driver are read
// as what they mean, or refused with a finding; never taken as NULL ("every day", "no date
// range"). Assumed of mysql2 (checked here against MariaDB): DATE comes back as a Date at
// midnight UTC (the connection's timezone 'Z'), TIME as 'HH:MM:SS' text, BIGINT as a number.
import t from 'tap';
import { identify } from '../../src/domain/routing';
import { loadSnapshot } from '../../src/snapshot/store';
import { dbTargets } from '../helpers/db';

const [sqlite, mariadb] = dbTargets();

t.test('MariaDB: DATE, TIME and BIGINT columns where the schema has text', async (t) => {
  const db = await mariadb.create();
  t.teardown(() => db.destroy());
  const { knex } = db;
  await knex.raw('ALTER TABLE schedule_slots MODIFY date_from DATE NULL, MODIFY date_to DATE NULL, MODIFY start_time TIME NOT NULL, MODIFY end_time TIME NOT NULL');
  await knex.raw('ALTER TABLE holidays MODIFY day DATE NOT NULL');
  await knex.raw('ALTER TABLE access_numbers MODIFY number BIGINT NOT NULL');
  await knex('tenants').insert({ id: 1, name: 'Acme', status: 'active', timezone: 'Asia/Shanghai' });
  await knex('access_numbers').insert({ id: 1, number: 4001000001, tenant_id: 1, kind: 'hotline', enabled: 1 });
  await knex('schedules').insert({ id: 40, tenant_id: 1, name: 'December' });
  await knex('schedule_slots').insert({ id: 1, schedule_id: 40, weekdays: '1-5', start_time: '09:00', end_time: '18:00', date_from: '2026-12-01', date_to: '2026-12-31' });
  await knex('holidays').insert({ id: 1, tenant_id: null, day: '2026-10-01' });

  const s = await loadSnapshot(knex, 1);
  t.same(s.rejected, [], 'no finding: every value is read as what it means');
  t.equal(identify(s, '4001000001').kind, 'ok', 'the BIGINT number is in service');
  t.same(s.schedules.get(40)?.slots, [{ weekdays: [1, 2, 3, 4, 5], startMinute: 540, endMinute: 1080, dateFrom: '2026-12-01', dateTo: '2026-12-31' }], 'TIME and DATE values read, the date range kept');
  t.ok(s.commonHolidays.has('2026-10-01'), 'the DATE holiday is in force');

  // A DATETIME with a time of day is not a day: refused, not read as "no start date".
  await knex.raw('ALTER TABLE schedule_slots MODIFY date_from DATETIME NULL');
  await knex('schedule_slots').where({ id: 1 }).update({ date_from: '2026-12-01 08:30:00' });
  const timed = await loadSnapshot(knex, 2, s.lastGood);
  t.match(timed.rejected, [{ table: 'schedule_slots', id: 1, status: 'last_good', column: 'date_from', reason: /without a time of day/ }]);
  t.equal(timed.schedules.get(40)?.slots[0]?.dateFrom, '2026-12-01', 'the last good slot stays');
});

t.test('SQLite: a BLOB typed into weekdays is refused, not read as every day', async (t) => {
  const db = await sqlite.create();
  t.teardown(() => db.destroy());
  const { knex } = db;
  await knex('tenants').insert({ id: 1, name: 'Acme', status: 'active', timezone: 'Asia/Shanghai' });
  await knex('schedules').insert({ id: 40, tenant_id: 1, name: 'Weekdays' });
  await knex('schedule_slots').insert({ id: 1, schedule_id: 40, weekdays: '1-5', start_time: '09:00', end_time: '18:00' });
  const s = await loadSnapshot(knex, 1);
  t.same(s.rejected, []);
  await knex.raw("UPDATE schedule_slots SET weekdays = x'312d36' WHERE id = 1");
  const blob = await loadSnapshot(knex, 2, s.lastGood);
  t.match(blob.rejected, [{ table: 'schedule_slots', id: 1, status: 'last_good', column: 'weekdays', reason: /weekdays must be text/ }]);
  t.same(blob.schedules.get(40)?.slots[0]?.weekdays, [1, 2, 3, 4, 5], 'the last good weekdays, not every day');
});
