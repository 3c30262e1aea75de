// Schedules: parsing the schedule_slots columns, and "is this instant inside?" on the tenant's
// wall clock, with slots belonging to the day they start (crossing midnight, holidays, DST).
import t from 'tap';
import {
  describeSlot,
  describeWeekdays,
  isWithinSchedule,
  parseDay,
  parseEndTimeOfDay,
  parseScheduleSlot,
  parseTimeOfDay,
  parseWeekdays,
  ScheduleSyntaxError,
} from '../../src/domain/schedule';
import type { Schedule, ScheduleSlot } from '../../src/domain/schedule';

const SH = 'Asia/Shanghai';
const NY = 'America/New_York';

void t.test('parseWeekdays', (t) => {
  const ok: Array<[input: string | null, expected: number[] | null, guards: string]> = [
    [null, null, 'NULL = every day'],
    ['1-5', [1, 2, 3, 4, 5], 'range'],
    ['6,7', [6, 7], 'list'],
    ['1-3,5', [1, 2, 3, 5], 'range and single day'],
    ['7', [7], 'Sunday alone'],
    [' 1 - 5 ', [1, 2, 3, 4, 5], 'spaces around and inside'],
    ['6, 7', [6, 7], 'space after comma'],
    ['5,1,3', [1, 3, 5], 'sorted'],
    ['1-5,3', [1, 2, 3, 4, 5], 'duplicates removed'],
    ['1-7', [1, 2, 3, 4, 5, 6, 7], 'whole week'],
    ['3-3', [3], 'one-day range'],
    ['１－５', [1, 2, 3, 4, 5], 'full-width digits and dash'],
    ['6，7', [6, 7], 'full-width comma'],
    ['1~5', [1, 2, 3, 4, 5], 'tilde as range'],
    ['01-05', [1, 2, 3, 4, 5], 'leading zeros'],
  ];
  for (const [input, expected, guards] of ok) t.same(parseWeekdays(input), expected, `${JSON.stringify(input)}: ${guards}`);

  const bad: Array<[input: string, message: RegExp, guards: string]> = [
    ['0', /outside 1-7/, 'Sunday is 7, not 0'],
    ['8', /outside 1-7/, 'no 8th day'],
    ['0-5', /outside 1-7/, 'range from 0'],
    ['5-1', /runs backwards/, 'backwards range is not silently wrapped'],
    ['a', /not a day/, 'letters'],
    ['Mon-Fri', /not a day/, 'day names are not accepted'],
    ['', /empty/, 'empty string is not NULL'],
    ['   ', /empty/, 'blank'],
    ['1,,2', /not a day/, 'empty list item'],
    ['1-', /not a day/, 'open range'],
    ['-1', /not a day/, 'negative'],
    ['1-5-7', /not a day/, 'double range'],
    ['10', /outside 1-7/, 'two digits'],
    ['1.5', /not a day/, 'decimal'],
    ['1;2', /not a day/, 'semicolon'],
  ];
  for (const [input, message, guards] of bad) {
    t.throws(() => parseWeekdays(input), { name: 'ScheduleSyntaxError', code: 'SCHEDULE_SYNTAX', field: 'weekdays', message }, `${JSON.stringify(input)}: ${guards}`);
  }
  try {
    parseWeekdays('5-1');
  } catch (err) {
    t.ok(err instanceof ScheduleSyntaxError && err.message.includes('"5-1"'), 'the message quotes the input');
  }
  t.end();
});

void t.test('parseTimeOfDay / parseEndTimeOfDay', (t) => {
  const ok: Array<[input: string, expected: number, guards: string]> = [
    ['00:00', 0, 'midnight'],
    ['09:00', 540, 'nine'],
    ['9:00', 540, 'one-digit hour'],
    ['23:59', 1439, 'last minute'],
    [' 12:30 ', 750, 'spaces'],
    ['１２：３０', 750, 'full-width digits and colon'],
    ['12:00:00', 720, "a TIME column's value (seconds of :00)"],
  ];
  for (const [input, expected, guards] of ok) {
    t.equal(parseTimeOfDay(input), expected, `start ${JSON.stringify(input)}: ${guards}`);
    t.equal(parseEndTimeOfDay(input), expected, `end ${JSON.stringify(input)}: ${guards}`);
  }
  t.equal(parseEndTimeOfDay('24:00'), 1440, '24:00 is the end of the day');
  t.equal(parseTimeOfDay('24:00', { allowEndOfDay: true }), 1440, 'same through the flag');

  const bad: Array<[input: string, end: boolean, message: RegExp, guards: string]> = [
    ['24:00', false, /only allowed as an end time/, '24:00 as a start'],
    ['24:01', true, /hours must be 00-23/, 'past 24:00'],
    ['25:00', true, /hours must be 00-23/, 'hour 25'],
    ['12:60', false, /minutes must be 00-59/, 'minute 60'],
    ['12:5', false, /not a time of day/, 'one-digit minutes'],
    ['1200', false, /not a time of day/, 'no colon'],
    ['', false, /not a time of day/, 'empty'],
    ['noon', false, /not a time of day/, 'words'],
    ['-1:00', false, /not a time of day/, 'negative'],
    ['12:00:30', false, /not a time of day/, 'seconds other than :00: a slot is whole minutes'],
    ['123:00', false, /not a time of day/, 'three-digit hour'],
  ];
  for (const [input, end, message, guards] of bad) {
    const field = end ? 'end_time' : 'start_time';
    t.throws(() => (end ? parseEndTimeOfDay(input) : parseTimeOfDay(input)), { name: 'ScheduleSyntaxError', field, message }, `${JSON.stringify(input)}: ${guards}`);
  }
  t.end();
});

void t.test('parseDay and parseScheduleSlot', (t) => {
  t.equal(parseDay('2026-02-28'), '2026-02-28');
  t.equal(parseDay('2028-02-29'), '2028-02-29', 'leap day');
  t.throws(() => parseDay('2026-02-29'), /not a day/, 'not a leap year');
  t.throws(() => parseDay('2026-02-30'), /not a day/, 'no such day');
  t.throws(() => parseDay('2026-2-3'), /not a day/, 'unpadded');
  t.throws(() => parseDay('2026/02/03'), /not a day/, 'slashes');

  t.same(
    parseScheduleSlot({ weekdays: '1-5', start_time: '22:00', end_time: '06:00', date_from: '2026-11-01', date_to: null }),
    { weekdays: [1, 2, 3, 4, 5], startMinute: 1320, endMinute: 360, dateFrom: '2026-11-01', dateTo: null },
  );
  t.same(
    parseScheduleSlot({ weekdays: null, start_time: '18:00', end_time: '24:00', date_from: null, date_to: null }),
    { weekdays: null, startMinute: 1080, endMinute: 1440, dateFrom: null, dateTo: null },
    '24:00 end',
  );
  const row = { weekdays: '1-5', start_time: '09:00', end_time: '18:00', date_from: null, date_to: null };
  t.throws(() => parseScheduleSlot({ ...row, weekdays: '8' }), { name: 'ScheduleSyntaxError', field: 'weekdays' }, 'bad weekday names the weekdays column');
  t.throws(() => parseScheduleSlot({ ...row, start_time: '24:00' }), { name: 'ScheduleSyntaxError', field: 'start_time' }, '24:00 start names start_time');
  t.throws(() => parseScheduleSlot({ ...row, end_time: '9' }), { name: 'ScheduleSyntaxError', field: 'end_time' }, 'bad end names end_time');
  t.throws(() => parseScheduleSlot({ ...row, date_from: '2026-13-01' }), { name: 'ScheduleSyntaxError', field: 'date_from' }, 'month 13 names date_from');
  t.throws(() => parseScheduleSlot({ ...row, date_from: '2026-11-02', date_to: '2026-11-01' }), { name: 'ScheduleSyntaxError', field: 'date_to', message: /never apply/ }, 'empty date range');
  t.same(parseScheduleSlot({ ...row, date_from: '2026-11-01', date_to: '2026-11-01' }).dateTo, '2026-11-01', 'one-day range is fine');
  t.end();
});

void t.test('describeWeekdays / describeSlot', (t) => {
  t.equal(describeWeekdays([1, 2, 3, 4, 5]), 'Mon-Fri');
  t.equal(describeWeekdays([6, 7]), 'Sat,Sun');
  t.equal(describeWeekdays([1, 2, 3, 5]), 'Mon-Wed,Fri');
  t.equal(describeWeekdays([1, 3]), 'Mon,Wed');
  t.equal(describeWeekdays([1, 2, 3, 4, 5, 6, 7]), 'Mon-Sun');
  t.equal(describeWeekdays(null), 'daily');
  t.equal(describeWeekdays([]), 'no days');
  t.equal(describeSlot(slot(null, '00:00', '00:00')), 'daily all day');
  t.equal(describeSlot(slot([6], '08:00', '08:00')), 'Sat 08:00-08:00 (24h)');
  t.equal(describeSlot(slot([1, 2, 3, 4, 5], '18:00', '24:00', '2026-01-01', '2026-12-31')), 'Mon-Fri 18:00-24:00 from 2026-01-01 to 2026-12-31');
  t.end();
});

function slot(weekdays: number[] | null, start: string, end: string, dateFrom: string | null = null, dateTo: string | null = null): ScheduleSlot {
  return { weekdays, startMinute: parseTimeOfDay(start), endMinute: parseEndTimeOfDay(end), dateFrom, dateTo };
}

function schedule(slots: ScheduleSlot[], excludeHolidays = false): Schedule {
  return { id: 1, name: 'test', excludeHolidays, slots };
}

const MON_FRI = [1, 2, 3, 4, 5];
const office = schedule([slot(MON_FRI, '09:00', '18:00')]);
const night = schedule([slot(MON_FRI, '22:00', '06:00')]);
const nightWithSunday = schedule([slot([1, 2, 3, 4, 5, 7], '22:00', '06:00')]);
const lunchBreak = schedule([slot(MON_FRI, '09:00', '12:00'), slot(MON_FRI, '13:00', '18:00')]);
const allDay = schedule([slot(null, '00:00', '00:00')]);
const allDayTo24 = schedule([slot(null, '00:00', '24:00')]);
const saturday24h = schedule([slot([6], '08:00', '08:00')]);
const evening = schedule([slot(null, '18:00', '24:00')]);
const novemberDays = schedule([slot(null, '09:00', '18:00', '2026-11-20', '2026-11-22')]);
const nightsUntil20th = schedule([slot(null, '22:00', '06:00', null, '2026-11-20')]);
const nightsFrom20th = schedule([slot(null, '22:00', '06:00', '2026-11-20', null)]);
const officeNoHolidays = schedule([slot(MON_FRI, '09:00', '18:00')], true);
const nightNoHolidays = schedule([slot(MON_FRI, '22:00', '06:00')], true);
const noSlots = schedule([]);
const noDays = schedule([slot([], '00:00', '00:00')]);
const withMalformed = schedule([{ weekdays: null, startMinute: 2000, endMinute: 10, dateFrom: null, dateTo: null }, slot(null, '09:00', '18:00')]);

const NATIONAL_DAY = new Set(['2026-10-01']);
const FRI_20TH = new Set(['2026-11-20']);
const SAT_21ST = new Set(['2026-11-21']);
const NONE = new Set<string>();

// 2026-11-16 is a Monday, 2026-11-20 a Friday, 2026-11-21 a Saturday, 2026-11-22 a Sunday.
type Case = [guards: string, sched: Schedule, at: string, zone: string, inside: boolean, slotIndex: number | null, holidays?: ReadonlySet<string>];
const cases: Case[] = [
  // Weekday ranges and minute precision
  ['Mon 09:00 is inside (start minute inclusive)', office, '2026-11-16T09:00:00+08:00', SH, true, 0],
  ['Mon 08:59 is outside', office, '2026-11-16T08:59:00+08:00', SH, false, null],
  ['Mon 08:59:59.999 is still minute 08:59: outside', office, '2026-11-16T08:59:59.999+08:00', SH, false, null],
  ['Fri 17:59 is inside', office, '2026-11-20T17:59:00+08:00', SH, true, 0],
  ['Fri 17:59:59 is inside (seconds ignored)', office, '2026-11-20T17:59:59+08:00', SH, true, 0],
  ['Fri 18:00 is outside (end minute exclusive)', office, '2026-11-20T18:00:00+08:00', SH, false, null],
  ['Sat 10:00 is outside Mon-Fri', office, '2026-11-21T10:00:00+08:00', SH, false, null],
  ['Sun 10:00 is outside Mon-Fri', office, '2026-11-22T10:00:00+08:00', SH, false, null],
  ['instant given in UTC is read on the Shanghai clock', office, '2026-11-16T01:00:00Z', SH, true, 0],
  ['Mon-Wed,Fri excludes Thu', schedule([slot([1, 2, 3, 5], '09:00', '18:00')]), '2026-11-19T10:00:00+08:00', SH, false, null],
  ['Mon-Wed,Fri includes Fri', schedule([slot([1, 2, 3, 5], '09:00', '18:00')]), '2026-11-20T10:00:00+08:00', SH, true, 0],
  ['lunch break 12:30 is outside both slots', lunchBreak, '2026-11-16T12:30:00+08:00', SH, false, null],
  ['13:00 is inside the second slot', lunchBreak, '2026-11-16T13:00:00+08:00', SH, true, 1],
  ['11:59 is inside the first slot', lunchBreak, '2026-11-16T11:59:00+08:00', SH, true, 0],
  // Crossing midnight: the occurrence belongs to the day it starts
  ['Fri 22:00 starts the Friday night slot', night, '2026-11-20T22:00:00+08:00', SH, true, 0],
  ['Sat 05:59 is still the Friday night slot', night, '2026-11-21T05:59:00+08:00', SH, true, 0],
  ['Sat 06:00 is outside (end exclusive, past midnight)', night, '2026-11-21T06:00:00+08:00', SH, false, null],
  ['Sat 23:00 is outside: Saturday is not listed', night, '2026-11-21T23:00:00+08:00', SH, false, null],
  ['Mon 01:00 is outside: that night started on Sunday', night, '2026-11-23T01:00:00+08:00', SH, false, null],
  ['Mon 01:00 is inside when Sunday is listed', nightWithSunday, '2026-11-23T01:00:00+08:00', SH, true, 0],
  ['Mon 21:59 is outside', night, '2026-11-16T21:59:00+08:00', SH, false, null],
  ['Tue 03:00 belongs to Monday night', night, '2026-11-17T03:00:00+08:00', SH, true, 0],
  ['Mon 12:00 is outside a night slot', night, '2026-11-16T12:00:00+08:00', SH, false, null],
  // Whole-day slots
  ['00:00-00:00 covers 00:00', allDay, '2026-11-16T00:00:00+08:00', SH, true, 0],
  ['00:00-00:00 covers 23:59', allDay, '2026-11-16T23:59:00+08:00', SH, true, 0],
  ['00:00-24:00 covers 23:59', allDayTo24, '2026-11-21T23:59:00+08:00', SH, true, 0],
  ['18:00-24:00 covers 23:59', evening, '2026-11-21T23:59:00+08:00', SH, true, 0],
  ['18:00-24:00 does not cover 00:00', evening, '2026-11-22T00:00:00+08:00', SH, false, null],
  ['Sat 08:00-08:00 is 24 h from Saturday 08:00', saturday24h, '2026-11-21T08:00:00+08:00', SH, true, 0],
  ['... and covers Sun 07:59', saturday24h, '2026-11-22T07:59:00+08:00', SH, true, 0],
  ['... but not Sun 08:00', saturday24h, '2026-11-22T08:00:00+08:00', SH, false, null],
  ['... nor Sat 07:59 (that is Friday\'s turn)', saturday24h, '2026-11-21T07:59:00+08:00', SH, false, null],
  ['empty weekday list never runs', noDays, '2026-11-16T10:00:00+08:00', SH, false, null],
  // Date ranges, inclusive, applied to the start day
  ['day before date_from is outside', novemberDays, '2026-11-19T10:00:00+08:00', SH, false, null],
  ['date_from itself is inside', novemberDays, '2026-11-20T09:00:00+08:00', SH, true, 0],
  ['date_to itself is inside', novemberDays, '2026-11-22T17:59:00+08:00', SH, true, 0],
  ['day after date_to is outside', novemberDays, '2026-11-23T09:00:00+08:00', SH, false, null],
  ['a night started on date_to runs past it', nightsUntil20th, '2026-11-21T05:00:00+08:00', SH, true, 0],
  ['no night starts after date_to', nightsUntil20th, '2026-11-21T22:30:00+08:00', SH, false, null],
  ['early hours of date_from belong to the night before it', nightsFrom20th, '2026-11-20T01:00:00+08:00', SH, false, null],
  ['night of date_from is inside', nightsFrom20th, '2026-11-20T22:00:00+08:00', SH, true, 0],
  // Holidays
  ['a holiday is outside when holidays are excluded', officeNoHolidays, '2026-10-01T10:00:00+08:00', SH, false, null, NATIONAL_DAY],
  ['the next day is inside again', officeNoHolidays, '2026-10-02T10:00:00+08:00', SH, true, 0, NATIONAL_DAY],
  ['holidays are ignored without exclude_holidays', office, '2026-10-01T10:00:00+08:00', SH, true, 0, NATIONAL_DAY],
  ['a night that starts on a holiday is outside past midnight too', nightNoHolidays, '2026-11-21T01:00:00+08:00', SH, false, null, FRI_20TH],
  ['a night that started on a working day runs into a holiday', nightNoHolidays, '2026-11-21T01:00:00+08:00', SH, true, 0, SAT_21ST],
  ['holiday days are the tenant\'s local days', officeNoHolidays, '2026-10-01T01:30:00Z', SH, false, null, NATIONAL_DAY],
  // Degenerate schedules
  ['a schedule without slots is never inside', noSlots, '2026-11-16T10:00:00+08:00', SH, false, null],
  ['a malformed slot is skipped, the next one still applies', withMalformed, '2026-11-16T10:00:00+08:00', SH, true, 1],
  // Other zones
  ['New York Fri 09:00 EST', office, '2026-11-20T14:00:00Z', NY, true, 0],
  ['the same instant is 22:00 in Shanghai: outside office hours', office, '2026-11-20T14:00:00Z', SH, false, null],
  ['New York Fri 23:00 is Sat in UTC but Friday night locally', night, '2026-11-21T04:00:00Z', NY, true, 0],
  ['Kolkata +05:30: 09:00 IST', office, '2026-11-16T03:30:00Z', 'Asia/Kolkata', true, 0],
  ['Kolkata +05:30: 08:59 IST', office, '2026-11-16T03:29:00Z', 'Asia/Kolkata', false, null],
  // Spring forward, New York, Sunday 2026-03-08: 02:00 EST jumps to 03:00 EDT
  ['01:59 EST is before the gap', schedule([slot(null, '01:00', '02:00')]), '2026-03-08T06:59:00Z', NY, true, 0],
  ['"02:30" does not exist: 02:30-05:00 offset is 03:30 EDT, outside a 02:00-03:00 slot',
    schedule([slot(null, '02:00', '03:00')]), '2026-03-08T02:30:00-05:00', NY, false, null],
  ['... and inside a 02:30-04:00 slot (start not seen, wall clock past it)',
    schedule([slot(null, '02:30', '04:00')]), '2026-03-08T02:30:00-05:00', NY, true, 0],
  ['03:00 EDT is the first minute after the gap', schedule([slot(null, '03:00', '04:00')]), '2026-03-08T07:00:00Z', NY, true, 0],
  // Fall back, New York, Sunday 2026-11-01: 02:00 EDT falls back to 01:00 EST, 01:xx happens twice
  ['01:30 EDT (first time) is inside 01:30-01:45', schedule([slot([7], '01:30', '01:45')]), '2026-11-01T05:30:00Z', NY, true, 0],
  ['01:30 EST (second time) is inside too', schedule([slot([7], '01:30', '01:45')]), '2026-11-01T06:30:00Z', NY, true, 0],
  ['01:45 EDT is outside', schedule([slot([7], '01:30', '01:45')]), '2026-11-01T05:45:00Z', NY, false, null],
  ['01:00 EST (after falling back) is outside', schedule([slot([7], '01:30', '01:45')]), '2026-11-01T06:00:00Z', NY, false, null],
  ['02:00 EST is the first 02:00', schedule([slot(null, '02:00', '03:00')]), '2026-11-01T07:00:00Z', NY, true, 0],
];

void t.test('isWithinSchedule', (t) => {
  for (const [guards, sched, at, zone, inside, slotIndex, holidays] of cases) {
    const r = isWithinSchedule(sched, holidays ?? NONE, new Date(at), zone);
    t.same({ inside: r.inside, slotIndex: r.slotIndex }, { inside, slotIndex }, `${guards} [${at} ${zone}] (${r.reason})`);
  }
  t.end();
});

/** Minutes inside the schedule over [fromUtc, toUtc), one sample per real minute. */
function minutesInside(sched: Schedule, fromUtc: string, toUtc: string, zone: string): number {
  let count = 0;
  for (let ms = Date.parse(fromUtc); ms < Date.parse(toUtc); ms += 60_000) {
    if (isWithinSchedule(sched, NONE, new Date(ms), zone).inside) count++;
  }
  return count;
}

void t.test('DST: real durations follow the wall clock', (t) => {
  // Spring forward 2026-03-08: the 02:xx hour does not exist.
  t.equal(minutesInside(schedule([slot(null, '02:00', '03:00')]), '2026-03-08T04:00:00Z', '2026-03-08T10:00:00Z', NY), 0,
    'a 02:00-03:00 slot is empty on spring-forward day');
  t.equal(minutesInside(schedule([slot(null, '01:00', '04:00')]), '2026-03-08T04:00:00Z', '2026-03-08T10:00:00Z', NY), 120,
    '01:00-04:00 lasts two real hours');
  t.equal(minutesInside(schedule([slot([6], '22:00', '06:00')]), '2026-03-08T00:00:00Z', '2026-03-08T14:00:00Z', NY), 420,
    'Saturday night 22:00-06:00 over spring forward: 7 real hours, all of it Saturday\'s slot');
  // Fall back 2026-11-01: 01:xx happens twice.
  t.equal(minutesInside(schedule([slot([7], '01:30', '01:45')]), '2026-11-01T04:00:00Z', '2026-11-01T09:00:00Z', NY), 30,
    '01:30-01:45 happens twice: 30 real minutes');
  t.equal(minutesInside(schedule([slot([6], '22:00', '06:00')]), '2026-11-01T00:00:00Z', '2026-11-01T14:00:00Z', NY), 540,
    'Saturday night 22:00-06:00 over fall back: 9 real hours');
  t.equal(minutesInside(allDay, '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z', NY), 25 * 60,
    'the fall-back Sunday has 25 hours, all inside a whole-day slot');
  // Asia/Shanghai has no DST: a weekday night is always 8 hours.
  t.equal(minutesInside(night, '2026-11-20T12:00:00Z', '2026-11-21T12:00:00Z', SH), 480, 'Friday night in Shanghai: 8 hours');
  t.end();
});

void t.test('reasons for explain', (t) => {
  const r1 = isWithinSchedule(schedule([slot(MON_FRI, '09:00', '18:00'), slot(MON_FRI, '22:00', '06:00')]), NONE, new Date('2026-11-21T05:00:00+08:00'), SH);
  t.same(r1, { inside: true, slotIndex: 1, reason: 'slot 2 (Mon-Fri 22:00-06:00) started Fri 2026-11-20' }, 'the example from the brief');

  const r2 = isWithinSchedule(night, NONE, new Date('2026-11-23T01:00:00+08:00'), SH);
  t.equal(r2.reason, 'outside at Mon 2026-11-23 01:00 Asia/Shanghai (UTC+08:00): slot 1 (Mon-Fri 22:00-06:00) not on Sun 2026-11-22', 'names the start day that is not listed');

  const r3 = isWithinSchedule(office, NONE, new Date('2026-11-16T08:59:00+08:00'), SH);
  t.equal(r3.reason, 'outside at Mon 2026-11-16 08:59 Asia/Shanghai (UTC+08:00): no slot covers 08:59');

  const r4 = isWithinSchedule(officeNoHolidays, NATIONAL_DAY, new Date('2026-10-01T10:00:00+08:00'), SH);
  t.match(r4.reason, /Thu 2026-10-01 is a holiday/);
  // On the fall-back night the offset tells the two 01:30s apart.
  t.match(isWithinSchedule(office, NONE, new Date('2026-11-01T05:30:00Z'), NY).reason, /01:30 America\/New_York \(UTC-04:00\)/);
  t.match(isWithinSchedule(office, NONE, new Date('2026-11-01T06:30:00Z'), NY).reason, /01:30 America\/New_York \(UTC-05:00\)/);

  const r5 = isWithinSchedule(novemberDays, NONE, new Date('2026-11-23T10:00:00+08:00'), SH);
  t.match(r5.reason, /Mon 2026-11-23 is after 2026-11-22/);
  const r6 = isWithinSchedule(novemberDays, NONE, new Date('2026-11-19T10:00:00+08:00'), SH);
  t.match(r6.reason, /Thu 2026-11-19 is before 2026-11-20/);

  t.match(isWithinSchedule(noSlots, NONE, new Date('2026-11-16T10:00:00+08:00'), SH).reason, /no slots/);
  t.match(isWithinSchedule(withMalformed, NONE, new Date('2026-11-16T10:00:00+08:00'), SH).reason, /slot 2/);
  t.match(isWithinSchedule(withMalformed, NONE, new Date('2026-11-16T20:00:00+08:00'), SH).reason, /slot 1 is malformed/);
  t.end();
});

void t.test('bad arguments are programming errors: they throw', (t) => {
  t.throws(() => isWithinSchedule(office, NONE, new Date('2026-11-16T10:00:00Z'), 'Mars/Olympus'), { name: 'RangeError', message: /unknown time zone/ });
  t.throws(() => isWithinSchedule(office, NONE, new Date('2026-11-16T10:00:00Z'), ''), RangeError, 'empty zone');
  t.throws(() => isWithinSchedule(office, NONE, new Date('not a date'), SH), { name: 'RangeError', message: /invalid Date/ });
  t.end();
});

void t.test('pure: the same inputs give the same answer, nothing is mutated', (t) => {
  const sched = schedule([slot(MON_FRI, '22:00', '06:00')], true);
  const before = JSON.stringify(sched);
  const holidays = new Set(['2026-11-20']);
  const a = isWithinSchedule(sched, holidays, new Date('2026-11-21T01:00:00+08:00'), SH);
  const b = isWithinSchedule(sched, holidays, new Date('2026-11-21T01:00:00+08:00'), SH);
  t.same(a, b);
  t.equal(JSON.stringify(sched), before);
  t.same([...holidays], ['2026-11-20']);
  t.end();
});
