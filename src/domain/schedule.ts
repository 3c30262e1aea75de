/**
 * Schedules (按时间路由, business hours): is an instant inside a tenant's schedule?
 *
 * Pure: the instant is passed in, nothing reads the clock. Evaluated on the wall clock of the
 * tenant's IANA zone, minute precision (seconds are ignored, end minutes are exclusive).
 *
 * The rule that makes slots predictable: **a slot occurrence belongs to the day it starts.**
 * Weekdays, date ranges and holidays are all checked against that day. So 'Mon-Fri 22:00-06:00'
 * covers Friday 22:00 to Saturday 05:59 but not Monday 01:00 (that night started on Sunday).
 *
 * DST: slots are wall-clock times. On a spring-forward day wall-clock times that do not exist
 * are simply never seen (a 02:00-02:59 slot is empty that day; a slot 01:00-04:00 lasts two real
 * hours); on a fall-back day the repeated hour is inside a slot both times it happens.
 */
import { DateTime, IANAZone } from 'luxon';

export interface ScheduleSlot {
  /** 1 = Monday … 7 = Sunday; null = every day. */
  weekdays: number[] | null;
  /** 0..1439 */
  startMinute: number;
  /** 0..1440 (exclusive); end < start crosses midnight; end == start is a whole 24 h from start. */
  endMinute: number;
  /** 'YYYY-MM-DD' inclusive, on the day a slot occurrence starts; null = open. */
  dateFrom: string | null;
  dateTo: string | null;
}

export interface Schedule {
  id: number;
  name: string;
  excludeHolidays: boolean;
  slots: ScheduleSlot[];
}

export interface ScheduleCheck {
  inside: boolean;
  /** Index into `schedule.slots` (0-based) of the slot that matched; null when outside. */
  slotIndex: number | null;
  /** Short English explanation for `explain`; slots are numbered from 1 there, as a DBA counts. */
  reason: string;
}

/** A schedule value a DBA wrote that cannot be understood. `field` names the column. */
export class ScheduleSyntaxError extends Error {
  readonly code = 'SCHEDULE_SYNTAX';
  constructor(
    readonly field: string,
    readonly value: string | null,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = new.target.name;
  }
}

const DAY_NAMES = ['', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;

// ---------------------------------------------------------------------------------------------
// Parsing the columns of schedule_slots

/**
 * `weekdays` column → sorted distinct days, 1 = Monday … 7 = Sunday. Accepts '1-5', '6,7',
 * '1-3,5', '7', spaces, full-width digits and commas, '~' for '-'. NULL → null (every day).
 * @throws ScheduleSyntaxError for '', '0', '8', '5-1' (backwards), 'a', '1,,2'.
 */
export function parseWeekdays(s: string | null): number[] | null {
  if (s === null) return null;
  const fail = (message: string): ScheduleSyntaxError => new ScheduleSyntaxError('weekdays', s, message);
  const text = s.normalize('NFKC').trim();
  if (text === '') throw fail('empty: write NULL for every day, or days such as 1-5 or 6,7 (1 = Monday)');
  const days = new Set<number>();
  for (const raw of text.split(',')) {
    const part = raw.trim();
    const m = /^(\d{1,2})(?:\s*[-~–]\s*(\d{1,2}))?$/.exec(part);
    if (!m) throw fail(`"${part}" in "${s}" is not a day 1-7 or a range such as 1-5 (1 = Monday, 7 = Sunday)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (const d of [from, to]) {
      if (d < 1 || d > 7) throw fail(`day ${d} in "${s}" is outside 1-7 (1 = Monday, 7 = Sunday)`);
    }
    if (to < from) throw fail(`range ${from}-${to} in "${s}" runs backwards; for a range over Sunday write e.g. 5-7,1`);
    for (let d = from; d <= to; d++) days.add(d);
  }
  return [...days].sort((a, b) => a - b);
}

/**
 * 'HH:MM' (also 'H:MM', 'HH:MM:00', full-width digits and colon) → minutes since midnight, 0..1439.
 * With `allowEndOfDay`, '24:00' is accepted and gives 1440 (only meaningful as an end time).
 * @throws ScheduleSyntaxError naming `field` ('start_time' by default).
 */
export function parseTimeOfDay(s: string, options: { allowEndOfDay?: boolean; field?: string } = {}): number {
  const field = options.field ?? (options.allowEndOfDay ? 'end_time' : 'start_time');
  const fail = (message: string): ScheduleSyntaxError => new ScheduleSyntaxError(field, s, message);
  // Seconds of :00 are read too: what a TIME column gives ('09:00:00'), were a DBA to change its type.
  const m = /^(\d{1,2}):(\d{2})(?::00(?:\.0+)?)?$/.exec(String(s).normalize('NFKC').trim());
  if (!m) throw fail(`"${s}" is not a time of day HH:MM (00:00-23:59)`);
  const hours = Number(m[1]);
  const minutes = Number(m[2]);
  if (minutes > 59) throw fail(`"${s}": minutes must be 00-59`);
  if (hours === 24 && minutes === 0) {
    if (options.allowEndOfDay) return 1440;
    throw fail(`"${s}": 24:00 is only allowed as an end time (a start at midnight is 00:00)`);
  }
  if (hours > 23) throw fail(`"${s}": hours must be 00-23${options.allowEndOfDay ? ' (or 24:00 for end of day)' : ''}`);
  return hours * 60 + minutes;
}

/** End times: 'HH:MM' or '24:00' → 0..1440. */
export function parseEndTimeOfDay(s: string): number {
  return parseTimeOfDay(s, { allowEndOfDay: true, field: 'end_time' });
}

/** A real calendar day 'YYYY-MM-DD' (e.g. not 2026-02-30). Returns it unchanged. */
export function parseDay(s: string, field = 'day'): string {
  const text = String(s).trim();
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text) || !DateTime.fromISO(text, { zone: 'UTC' }).isValid) {
    throw new ScheduleSyntaxError(field, s, `"${s}" is not a day YYYY-MM-DD`);
  }
  return text;
}

/** One schedule_slots row as the database returns it. */
export interface ScheduleSlotRow {
  weekdays: string | null;
  start_time: string;
  end_time: string;
  date_from: string | null;
  date_to: string | null;
}

/** Validates and converts one schedule_slots row. @throws ScheduleSyntaxError. */
export function parseScheduleSlot(row: ScheduleSlotRow): ScheduleSlot {
  const dateFrom = row.date_from === null ? null : parseDay(row.date_from, 'date_from');
  const dateTo = row.date_to === null ? null : parseDay(row.date_to, 'date_to');
  if (dateFrom !== null && dateTo !== null && dateTo < dateFrom) {
    throw new ScheduleSyntaxError('date_to', row.date_to, `date_to ${dateTo} is before date_from ${dateFrom}: the slot would never apply`);
  }
  return {
    weekdays: parseWeekdays(row.weekdays),
    startMinute: parseTimeOfDay(row.start_time, { field: 'start_time' }),
    endMinute: parseEndTimeOfDay(row.end_time),
    dateFrom,
    dateTo,
  };
}

// ---------------------------------------------------------------------------------------------
// Describing

function hhmm(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}

/** [1,2,3,4,5] → 'Mon-Fri', [6,7] → 'Sat,Sun', [1,2,3,5] → 'Mon-Wed,Fri', null → 'daily'. */
export function describeWeekdays(weekdays: readonly number[] | null): string {
  if (weekdays === null) return 'daily';
  if (weekdays.length === 0) return 'no days';
  const days = [...new Set(weekdays)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < days.length; ) {
    let j = i;
    while (j + 1 < days.length && days[j + 1] === (days[j] ?? 0) + 1) j++;
    const a = DAY_NAMES[days[i] ?? 0] ?? '?';
    const b = DAY_NAMES[days[j] ?? 0] ?? '?';
    if (j - i >= 2) parts.push(`${a}-${b}`);
    else for (let k = i; k <= j; k++) parts.push(DAY_NAMES[days[k] ?? 0] ?? '?');
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * Why a slot likely says other than what was meant, or null. A slot whose end equals its start
 * (other than 00:00-00:00, the documented whole day) is read as 24 h from its start: 09:00-09:00
 * is open all night, usually a copied start time where the end was meant (09:00-18:00). Kept as
 * written by the snapshot when there is no earlier version (build.ts), since it is a valid slot.
 */
export function slotDoubt(slot: ScheduleSlot): string | null {
  if (slot.startMinute !== slot.endMinute || slot.startMinute === 0) return null;
  const t = hhmm(slot.startMinute);
  return `end_time equals start_time (${t}-${t}): read as 24 h from ${t} to ${t} the next day, open all night; business hours need their own end, a whole day is 00:00-24:00, and 24 h meant from ${t} is a new row (an edit into it keeps the last good slot)`;
}

/** 'Mon-Fri 22:00-06:00', 'daily all day', 'Sat,Sun 08:00-08:00 (24h) from 2026-01-01'. */
export function describeSlot(slot: ScheduleSlot): string {
  let times: string;
  if (slot.startMinute === 0 && (slot.endMinute === 0 || slot.endMinute === 1440)) times = 'all day';
  else if (slot.startMinute === slot.endMinute) times = `${hhmm(slot.startMinute)}-${hhmm(slot.endMinute)} (24h)`;
  else times = `${hhmm(slot.startMinute)}-${hhmm(slot.endMinute)}`;
  let text = `${describeWeekdays(slot.weekdays)} ${times}`;
  if (slot.dateFrom !== null) text += ` from ${slot.dateFrom}`;
  if (slot.dateTo !== null) text += ` to ${slot.dateTo}`;
  return text;
}

// ---------------------------------------------------------------------------------------------
// Evaluating

interface Day {
  iso: string;
  weekday: number;
}

function dayOf(d: DateTime): Day {
  return { iso: d.toISODate() ?? '', weekday: d.weekday };
}

function slotIsWellFormed(slot: ScheduleSlot): boolean {
  const { startMinute: s, endMinute: e } = slot;
  return Number.isInteger(s) && Number.isInteger(e) && s >= 0 && s <= 1439 && e >= 0 && e <= 1440;
}

/**
 * Which start days of this slot have an occurrence covering `minute` of today: today (the
 * part from the start on) and/or yesterday (the part past midnight of a slot that crosses it).
 */
function coveringStartDays(slot: ScheduleSlot, minute: number): Array<'today' | 'yesterday'> {
  const { startMinute: start, endMinute: end } = slot;
  if (start < end) return start <= minute && minute < end ? ['today'] : [];
  // end < start crosses midnight; end == start is 24 h from the start, also crossing midnight
  // (unless start is 00:00, when the "yesterday" part is empty).
  const days: Array<'today' | 'yesterday'> = [];
  if (minute >= start) days.push('today');
  if (minute < end || (start === end && minute < start)) days.push('yesterday');
  return days;
}

/** Why an occurrence starting on `day` does not apply; null when it does. */
function rejection(slot: ScheduleSlot, day: Day, schedule: Schedule, holidays: ReadonlySet<string>): string | null {
  const when = `${DAY_NAMES[day.weekday]} ${day.iso}`;
  if (slot.weekdays !== null && !slot.weekdays.includes(day.weekday)) return `not on ${when}`;
  if (slot.dateFrom !== null && day.iso < slot.dateFrom) return `${when} is before ${slot.dateFrom}`;
  if (slot.dateTo !== null && day.iso > slot.dateTo) return `${when} is after ${slot.dateTo}`;
  if (schedule.excludeHolidays && holidays.has(day.iso)) return `${when} is a holiday`;
  return null;
}

/**
 * Is `at` inside the schedule, on the wall clock of `timeZone`? The first matching slot wins.
 * `holidays` are 'YYYY-MM-DD' days of the tenant's zone; they count only when the schedule has
 * `excludeHolidays`, and, like weekdays and date ranges, apply to the day a slot occurrence
 * starts (a Friday-night slot still runs into a Saturday holiday; one starting on it does not).
 * A schedule without slots is never inside. Malformed slots are skipped and named in `reason`.
 * @throws RangeError for an unknown time zone or an invalid Date (validate them at config load).
 */
export function isWithinSchedule(
  schedule: Schedule,
  holidays: ReadonlySet<string>,
  at: Date,
  timeZone: string,
): ScheduleCheck {
  if (!IANAZone.isValidZone(timeZone)) throw new RangeError(`unknown time zone "${timeZone}"`);
  const millis = at.getTime();
  if (Number.isNaN(millis)) throw new RangeError('invalid Date');

  const local = DateTime.fromMillis(millis, { zone: timeZone });
  const minute = local.hour * 60 + local.minute;
  // Calendar arithmetic on the date alone, away from the zone, so DST cannot shift it.
  const date = DateTime.fromObject({ year: local.year, month: local.month, day: local.day }, { zone: 'UTC' });
  const days = { today: dayOf(date), yesterday: dayOf(date.minus({ days: 1 })) };
  const now = `${DAY_NAMES[local.weekday]} ${days.today.iso} ${hhmm(minute)} ${timeZone} (UTC${local.toFormat('ZZ')})`;

  if (schedule.slots.length === 0) return { inside: false, slotIndex: null, reason: `outside at ${now}: schedule has no slots` };

  const rejections: string[] = [];
  for (const [index, slot] of schedule.slots.entries()) {
    const label = `slot ${index + 1}`;
    if (!slotIsWellFormed(slot)) {
      rejections.push(`${label} is malformed (start ${slot.startMinute}, end ${slot.endMinute}) and ignored`);
      continue;
    }
    for (const which of coveringStartDays(slot, minute)) {
      const day = days[which];
      const why = rejection(slot, day, schedule, holidays);
      if (why === null) {
        return {
          inside: true,
          slotIndex: index,
          reason: `${label} (${describeSlot(slot)}) started ${DAY_NAMES[day.weekday]} ${day.iso}`,
        };
      }
      rejections.push(`${label} (${describeSlot(slot)}) ${why}`);
    }
  }
  const detail = rejections.length > 0 ? rejections.join('; ') : `no slot covers ${hhmm(minute)}`;
  return { inside: false, slotIndex: null, reason: `outside at ${now}: ${detail}` };
}
