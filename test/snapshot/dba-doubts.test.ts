// Values a row can use as written but that likely say other than what the DBA meant (Ledger
// `doubt`): a phone number that lost its trunk 0 to an unquoted UPDATE, a schedule slot whose end
// is its start. An edit into one keeps the row's last good version; a row that had it already,
// or has no earlier version, stays in force as written (it may stand in a database this release
// upgrades: a check must not take it out of service), reported `doubtful`.
import t from 'tap';
import { fixedLineWithoutTrunkZero } from '../../src/domain/geo';
import { slotDoubt, parseScheduleSlot } from '../../src/domain/schedule';
import { buildSnapshot } from '../../src/snapshot/build';
import { formatFinding } from '../../src/snapshot/findings';
import { loadSnapshot } from '../../src/snapshot/store';
import { withDatabases } from '../helpers/db';
import { destinationRow, edited, goodRaw, tenantRow, type Row } from './fixtures';

const WHEN = new Date('2026-11-23T02:00:00.000Z');

const numbersOf = (raw: ReturnType<typeof buildSnapshot>, group: number): string[] => raw.groups.get(group)!.destinations.map((d) => d.number);

t.test('fixedLineWithoutTrunkZero: a fixed line missing its 0, and nothing a carrier connects as written', async (t) => {
  for (const n of ['1088886666', '2088886666', '2112345678', '75512345678', '3351234567', '2012345678']) t.ok(fixedLineWithoutTrunkZero(n), n);
  const dialable = [
    '01088886666', '02088886666', '075512345678', // with the trunk 0
    '13800000001', '19912345678', '+8613900000000', '+862088886666', '008613900000000', // mobile, international
    '4001000001', '8008001234', // 400/800: dialled without 0
    '95588', '10086', '12345', '88886666', '8888666', // short and local numbers
    '*86', '1088886666#', '', '10888866661', // keys, junk: not this check's business
    // Foreign numbers written without + or 00 (what a gateway taking E.164 without + dials): no
    // Chinese area code with a subscriber number of that length.
    '85291234567', '85361234567', '6591234567', '81312345678', '33612345678', '61412345678', '4412345678',
    '5718888666', '3111234567', // 0571 and 0311 have 8-digit subscriber numbers
  ];
  for (const n of dialable) t.notOk(fixedLineWithoutTrunkZero(n), n);
});

t.test('destinations.number written unquoted (number = 02088886666 stores 2088886666): an edit into it keeps the last good number; a new one stands, reported', async (t) => {
  const before = buildSnapshot(goodRaw(), 1, WHEN);
  t.same(before.rejected, []);
  const after = buildSnapshot(edited('destinations', 101, { number: '2088886666' }), 2, WHEN, before.lastGood);
  t.same(numbersOf(after, 10), ['13800000001', '02088886666'], 'the front desk still rings');
  t.match(after.rejected, [{ table: 'destinations', id: 101, status: 'last_good', tenantId: 1, column: 'number', value: '"2088886666"', reason: /reads as the fixed line 02088886666 without its trunk 0 .*write it quoted, '02088886666'/ }]);
  t.equal(after.rejected.length, 1);

  // A row with such a number and no earlier version (a first load, or an upgrade): in force as
  // written, reported; a later edit of another column is not undone for it.
  const raw = goodRaw();
  raw.destinations.push(destinationRow(102, 10, '1088886666', { position: 3 }), destinationRow(103, 10, '13800000003', { position: 4 }));
  const first = buildSnapshot(raw, 1, WHEN);
  t.same(numbersOf(first, 10), ['13800000001', '02088886666', '1088886666', '13800000003'], 'dialled as written');
  t.match(first.rejected, [{ table: 'destinations', id: 102, status: 'doubtful', tenantId: 1, column: 'number', reason: /0 1088886666|01088886666/ }]);
  t.equal(first.rejected.length, 1);
  const relabelled = buildSnapshot(edited('destinations', 102, { label: 'Beijing office' }, raw), 2, WHEN, first.lastGood);
  t.equal(relabelled.groups.get(10)!.destinations[2].label, 'Beijing office', 'the edit is in force');
  t.match(relabelled.rejected, [{ id: 102, status: 'doubtful' }]);
  t.equal(relabelled.rejected.length, 1);
  // Its fix is taken at once; an edit of a good number into another doubtful one keeps the good one.
  const fixed = buildSnapshot(edited('destinations', 102, { number: '01088886666' }, raw), 2, WHEN, first.lastGood);
  t.same(fixed.rejected, []);
  t.equal(fixed.groups.get(10)!.destinations[2].number, '01088886666');
  const again = buildSnapshot(edited('destinations', 102, { number: '1088886667' }, raw), 3, WHEN, fixed.lastGood);
  t.equal(again.groups.get(10)!.destinations[2].number, '01088886666');
  t.match(again.rejected, [{ id: 102, status: 'last_good', value: '"1088886667"' }]);
  // A doubtful version edited into another doubt: that version stands in, both reported (as a tenant's).
  const other = buildSnapshot(edited('destinations', 102, { number: '1088886667' }, raw), 2, WHEN, first.lastGood);
  t.equal(other.groups.get(10)!.destinations[2].number, '1088886666');
  t.match(other.rejected, [{ id: 102, status: 'last_good', value: '"1088886667"' }, { id: 102, status: 'doubtful', value: '"1088886666"' }]);
  t.equal(other.rejected.length, 2);
  t.match(formatFinding(other.rejected[1]), /^destinations id=102 \(tenant 1\) number="1088886666": .* → in force; check it is what was meant$/, 'the stand-in is not said to be "as written"');
  // A row edited into the doubt beside another fault (its group gone) is not kept by the doubt.
  const orphan = buildSnapshot(edited('destinations', 101, { number: '2088886666', group_id: 999 }), 2, WHEN, before.lastGood);
  t.same(numbersOf(orphan, 10), ['13800000001', '02088886666'], 'the last good version stands');
  t.match(orphan.rejected, [{ table: 'destinations', id: 101, status: 'last_good', column: 'group_id' }]);
});

t.test('extension_phones.number: the same doubt as a destination', async (t) => {
  const raw = goodRaw();
  raw.extensions = [{ id: 7, tenant_id: 1, ext: '801' }];
  raw.extension_phones = [{ id: 1, extension_id: 7, number: '075512345678', position: 1 }, { id: 2, extension_id: 7, number: '13800000009', position: 2 }];
  const before = buildSnapshot(raw, 1, WHEN);
  t.same(before.rejected, []);
  const after = buildSnapshot(edited('extension_phones', 1, { number: '75512345678' }, raw), 2, WHEN, before.lastGood);
  t.same(after.extensionsById.get(7)?.phones, ['075512345678', '13800000009']);
  t.match(after.rejected, [{ table: 'extension_phones', id: 1, status: 'last_good', tenantId: 1, column: 'number', reason: /fixed line 075512345678 without its trunk 0/ }]);
  raw.extension_phones[0].number = '75512345678';
  const first = buildSnapshot(raw, 1, WHEN);
  t.same(first.extensionsById.get(7)?.phones, ['75512345678', '13800000009']);
  t.match(first.rejected, [{ table: 'extension_phones', id: 1, status: 'doubtful' }]);
});

t.test('schedule_slots end_time equal to start_time (09:00-09:00 is 24 h, open all night): an edit into it keeps the last good slot; a new one stands, reported', async (t) => {
  const slot = (start: string, end: string) => parseScheduleSlot({ weekdays: '1-5', start_time: start, end_time: end, date_from: null, date_to: null });
  t.match(slotDoubt(slot('09:00', '09:00')), /end_time equals start_time \(09:00-09:00\): read as 24 h from 09:00/);
  t.match(slotDoubt(slot('23:30', '23:30:00')), /23:30-23:30/);
  for (const [start, end] of [['00:00', '00:00'], ['00:00', '24:00'], ['09:00', '18:00'], ['22:00', '06:00'], ['09:00', '09:01']]) {
    t.equal(slotDoubt(slot(start, end)), null, `${start}-${end}`);
  }

  const base = goodRaw();
  base.schedules = [{ id: 40, tenant_id: 1, name: 'Acme hours' }];
  base.schedule_slots = [{ id: 1, schedule_id: 40, weekdays: '1-5', start_time: '09:00', end_time: '18:00' }];
  const before = buildSnapshot(base, 1, WHEN);
  t.same(before.rejected, []);
  const after = buildSnapshot(edited('schedule_slots', 1, { end_time: '09:00' }, base), 2, WHEN, before.lastGood);
  t.match(after.schedules.get(40)?.slots, [{ startMinute: 540, endMinute: 1080 }], '09:00-18:00 stays');
  t.match(after.rejected, [{ table: 'schedule_slots', id: 1, status: 'last_good', tenantId: 1, column: 'end_time', value: '"09:00"', reason: /end_time equals start_time/ }]);
  t.equal(after.rejected.length, 1);

  const fresh = structuredClone(base);
  fresh.schedule_slots = [
    { id: 1, schedule_id: 40, weekdays: '1-5', start_time: '09:00', end_time: '09:00' },
    { id: 2, schedule_id: 40, weekdays: '6,7', start_time: '00:00', end_time: '00:00' },
    { id: 3, schedule_id: 40, weekdays: '6,7', start_time: '00:00', end_time: '24:00' },
  ];
  const first = buildSnapshot(fresh, 1, WHEN);
  t.equal(first.schedules.get(40)?.slots.length, 3, 'every slot in force as written');
  t.match(first.rejected, [{ table: 'schedule_slots', id: 1, status: 'doubtful', column: 'end_time' }]);
  t.equal(first.rejected.length, 1, 'a whole day (00:00-00:00, 00:00-24:00) is not doubtful');
});

t.test('schedules with no slot in force (never in hours: a tenant on it always closed) are reported, and stay in force', async (t) => {
  const raw = goodRaw();
  raw.schedules = [{ id: 40, tenant_id: 1, name: 'Acme hours' }, { id: 41, tenant_id: 1, name: 'Empty' }, { id: 42, tenant_id: 1, name: 'Refused slot' }];
  raw.schedule_slots = [
    { id: 1, schedule_id: 40, weekdays: '1-5', start_time: '09:00', end_time: '18:00' },
    { id: 2, schedule_id: 42, weekdays: '1-5', start_time: '25:00', end_time: '18:00' },
  ];
  raw.tenants[0] = { ...raw.tenants[0], business_hours_schedule_id: 41 };
  const s = buildSnapshot(raw, 1, WHEN);
  t.equal(s.tenants.get(1)?.businessHoursScheduleId, 41, 'the link stands');
  t.same([40, 41, 42].map((id) => s.schedules.get(id)?.slots.length), [1, 0, 0], 'every schedule in force');
  t.match(s.rejected, [
    { table: 'schedules', id: 41, status: 'doubtful', tenantId: 1, column: null, reason: /schedule 41 has no slot in force .*never in hours, so a tenant's business hours on it are always closed/ },
    { table: 'schedules', id: 42, status: 'doubtful' },
    { table: 'schedule_slots', id: 2, status: 'skipped', column: 'start_time' },
  ]);
  t.equal(s.rejected.length, 3);
});

t.test('rates: a call type with no rate for some tenants (their calls of it cost nothing) is one finding; no rates at all, none', async (t) => {
  t.same(buildSnapshot(goodRaw(), 1, WHEN).rejected, [], 'no rates: billing is not in use, nothing to say');
  const raw = goodRaw();
  raw.tenants[1] = { ...raw.tenants[1], status: 'active' };
  raw.tenants.push(tenantRow(3, { status: 'closed' }), tenantRow(4, { status: 'suspended' }));
  const rate = (id: number, tenantId: number | null, callType: string): Row => ({ id, tenant_id: tenantId, call_type: callType, per_minute: '0.1000', increment_s: 60, connect_fee: '0' });
  raw.rates = [rate(1, null, 'local'), rate(2, null, 'mobile'), rate(3, null, 'long_distance'), rate(4, 1, 'international')];
  const s = buildSnapshot(raw, 1, WHEN);
  t.same(s.rejected.map((f) => [f.table, f.id, f.status, f.column, f.value]), [['rates', null, 'doubtful', 'call_type', '"international: tenants 2"']], 'closed and suspended tenants take no call: not counted');
  t.match(s.rejected[0].reason, /^no international rate: no default one \(tenant_id NULL\), and active tenants without their own: their international calls cost nothing$/);
  // The reason (the store's log key) stays while the list moves: logged once, not at each new tenant.
  const more = structuredClone(raw);
  for (let id = 5; id <= 10; id++) more.tenants.push(tenantRow(id));
  const moved = buildSnapshot(more, 2, WHEN).rejected;
  t.equal(moved[0].reason, s.rejected[0].reason);
  t.equal(moved[0].value, '"international: tenants 2, 5, 6, 7, 8 … (7 in all)"');
  raw.rates.push(rate(5, 2, 'international'));
  t.same(buildSnapshot(raw, 1, WHEN).rejected, [], 'every tenant has its own');
  raw.rates.push(rate(6, null, 'international'));
  t.same(buildSnapshot(raw, 1, WHEN).rejected, [], 'and a default');
});

// The real path: an UPDATE with the number unquoted, read back through each driver. MariaDB casts
// the integer 02088886666 to the text '2088886666'; SQLite's TEXT affinity stores the integer's text.
withDatabases(t, async (t, knex) => {
  await knex('tenants').insert({ id: 1, name: 'Acme', status: 'active', timezone: 'Asia/Shanghai' });
  await knex('access_numbers').insert({ id: 1, number: '4001000001', tenant_id: 1, kind: 'hotline', enabled: 1 });
  await knex('destination_groups').insert({ id: 10, tenant_id: 1, name: 'Sales', strategy: 'sequential' });
  await knex('destinations').insert([{ id: 100, group_id: 10, number: '02088886666', position: 1, enabled: 1 }, { id: 101, group_id: 10, number: '13800000001', position: 2, enabled: 1 }]);
  const before = await loadSnapshot(knex, 1);
  t.same(before.rejected, []);
  await knex.raw('UPDATE destinations SET number = 02088886666 WHERE id = 100');
  t.equal((await knex('destinations').where({ id: 100 }).first<{ number: unknown }>())?.number, '2088886666', 'the database kept the digits without the 0');
  const after = await loadSnapshot(knex, 2, before.lastGood);
  t.same(after.groups.get(10)!.destinations.map((d) => d.number), ['02088886666', '13800000001'], 'the phone that worked still rings');
  t.match(after.rejected, [{ table: 'destinations', id: 100, status: 'last_good', column: 'number', reason: /write it quoted, '02088886666'/ }]);
  const fresh = await loadSnapshot(knex, 1);
  t.match(fresh.rejected, [{ table: 'destinations', id: 100, status: 'doubtful' }], 'with no last good version (a start without a cache): in force, reported');
});
