// Caps and report periods in the tenant's zone: midnight in Shanghai is 16:00 UTC the day
// before; New York has 23- and 25-hour days; month ends, leap years, a zone whose DST change
// skips midnight itself.
import t from 'tap';
import { DEFAULT_TIMEZONE, lastCompletePeriod, localHour, LocalHours, nextPeriod, periodByStart, periodLabel, periodOf, previousPeriod, tenantZone, type PeriodKind } from '../../src/domain/periods';

const iso = (d: Date): string => d.toISOString();
const hours = (p: { from: Date; to: Date }): number => (p.to.getTime() - p.from.getTime()) / 3_600_000;

void t.test('periodOf: which day and month an instant belongs to', async (t) => {
  // [instant (UTC), zone, kind, start, from, to]
  const table: Array<[string, string, PeriodKind, string, string, string]> = [
    ['2026-11-20T15:59:59.999Z', 'Asia/Shanghai', 'day', '2026-11-20', '2026-11-19T16:00:00.000Z', '2026-11-20T16:00:00.000Z'],
    ['2026-11-20T16:00:00.000Z', 'Asia/Shanghai', 'day', '2026-11-21', '2026-11-20T16:00:00.000Z', '2026-11-21T16:00:00.000Z'],
    ['2026-11-30T15:59:59.999Z', 'Asia/Shanghai', 'month', '2026-11-01', '2026-10-31T16:00:00.000Z', '2026-11-30T16:00:00.000Z'],
    ['2026-11-30T16:00:00.000Z', 'Asia/Shanghai', 'month', '2026-12-01', '2026-11-30T16:00:00.000Z', '2026-12-31T16:00:00.000Z'],
    ['2026-12-31T16:00:00.000Z', 'Asia/Shanghai', 'day', '2027-01-01', '2026-12-31T16:00:00.000Z', '2027-01-01T16:00:00.000Z'],
    ['2028-02-29T12:00:00.000Z', 'Asia/Shanghai', 'month', '2028-02-01', '2028-01-31T16:00:00.000Z', '2028-02-29T16:00:00.000Z'],
    ['2028-02-29T16:30:00.000Z', 'Asia/Shanghai', 'day', '2028-03-01', '2028-02-29T16:00:00.000Z', '2028-03-01T16:00:00.000Z'],
    // New York, standard time (UTC-5) and daylight time (UTC-4).
    ['2026-11-21T04:59:59.999Z', 'America/New_York', 'day', '2026-11-20', '2026-11-20T05:00:00.000Z', '2026-11-21T05:00:00.000Z'],
    ['2026-07-04T03:59:59.999Z', 'America/New_York', 'day', '2026-07-03', '2026-07-03T04:00:00.000Z', '2026-07-04T04:00:00.000Z'],
    // DST starts 2026-03-08 02:00 → 03:00: a 23-hour day.
    ['2026-03-08T12:00:00.000Z', 'America/New_York', 'day', '2026-03-08', '2026-03-08T05:00:00.000Z', '2026-03-09T04:00:00.000Z'],
    // DST ends 2026-11-01 02:00 → 01:00: a 25-hour day; 05:30Z is 01:30 EDT, 06:30Z is 01:30 EST, both Nov 1.
    ['2026-11-01T05:30:00.000Z', 'America/New_York', 'day', '2026-11-01', '2026-11-01T04:00:00.000Z', '2026-11-02T05:00:00.000Z'],
    ['2026-11-01T06:30:00.000Z', 'America/New_York', 'day', '2026-11-01', '2026-11-01T04:00:00.000Z', '2026-11-02T05:00:00.000Z'],
    ['2026-11-15T00:00:00.000Z', 'America/New_York', 'month', '2026-11-01', '2026-11-01T04:00:00.000Z', '2026-12-01T05:00:00.000Z'],
    ['2026-03-15T00:00:00.000Z', 'America/New_York', 'month', '2026-03-01', '2026-03-01T05:00:00.000Z', '2026-04-01T04:00:00.000Z'],
    ['2026-11-01T03:59:59.999Z', 'America/New_York', 'month', '2026-10-01', '2026-10-01T04:00:00.000Z', '2026-11-01T04:00:00.000Z'],
  ];
  for (const [at, zone, kind, start, from, to] of table) {
    const p = periodOf(kind, new Date(at), zone);
    t.same({ start: p.start, from: iso(p.from), to: iso(p.to) }, { start, from, to }, `${at} in ${zone}: ${kind} ${start}`);
  }
});

void t.test('DST days have 23 and 25 hours; Shanghai has none', async (t) => {
  t.equal(hours(periodByStart('day', '2026-03-08', 'America/New_York')), 23);
  t.equal(hours(periodByStart('day', '2026-11-01', 'America/New_York')), 25);
  t.equal(hours(periodByStart('day', '2026-11-02', 'America/New_York')), 24);
  t.equal(hours(periodByStart('month', '2026-03-01', 'America/New_York')), 31 * 24 - 1);
  t.equal(hours(periodByStart('month', '2026-11', 'America/New_York')), 30 * 24 + 1);
  for (const d of ['2026-03-08', '2026-11-01', '2026-06-30']) t.equal(hours(periodByStart('day', d, 'Asia/Shanghai')), 24, `Shanghai ${d}`);
  // Chile moves its clocks at midnight: 2026-09-06 begins at 01:00 local, and is 23 hours long.
  const chile = periodByStart('day', '2026-09-06', 'America/Santiago');
  t.equal(hours(chile), 23, 'a day that starts at 01:00');
  t.equal(periodOf('day', new Date(chile.from.getTime() + 1000), 'America/Santiago').start, '2026-09-06');
  t.equal(periodOf('day', new Date(chile.from.getTime() - 1000), 'America/Santiago').start, '2026-09-05');
  t.equal(iso(previousPeriod(chile).to), iso(chile.from), 'no gap, no overlap');
});

void t.test('consecutive periods tile time exactly', async (t) => {
  for (const zone of ['Asia/Shanghai', 'America/New_York', 'Asia/Kathmandu', 'Australia/Lord_Howe']) {
    for (const kind of ['day', 'month'] as const) {
      let p = periodOf(kind, new Date('2026-01-01T12:00:00Z'), zone);
      let ok = true;
      for (let i = 0; i < (kind === 'day' ? 400 : 14); i++) {
        const n = nextPeriod(p);
        if (n.from.getTime() !== p.to.getTime() || previousPeriod(n).start !== p.start || n.start <= p.start) ok = false;
        p = n;
      }
      t.ok(ok, `${zone} ${kind}s`);
    }
  }
});

void t.test('named periods, labels, last complete period, hours, zones', async (t) => {
  t.same(periodByStart('month', '2026-11', 'Asia/Shanghai'), periodByStart('month', '2026-11-01', 'Asia/Shanghai'));
  t.throws(() => periodByStart('month', '2026-11-20', 'Asia/Shanghai'), /starts on day 01/);
  t.throws(() => periodByStart('day', '2026-02-30', 'Asia/Shanghai'), /not a day/);
  t.throws(() => periodByStart('day', '20261120', 'Asia/Shanghai'), /not a day/);
  t.equal(periodLabel(periodByStart('month', '2026-11', 'Asia/Shanghai')), '2026-11');
  t.equal(periodLabel(periodByStart('day', '2026-11-20', 'Asia/Shanghai')), '2026-11-20');
  const now = new Date('2026-12-01T16:05:00Z'); // 00:05 on Dec 2 in Shanghai
  t.equal(lastCompletePeriod('day', now, 'Asia/Shanghai').start, '2026-12-01');
  t.equal(lastCompletePeriod('month', now, 'Asia/Shanghai').start, '2026-11-01');
  t.equal(lastCompletePeriod('day', now, 'America/New_York').start, '2026-11-30');
  t.equal(localHour(new Date('2026-11-20T16:30:00Z'), 'Asia/Shanghai'), 0);
  t.equal(localHour(new Date('2026-11-01T05:30:00Z'), 'America/New_York'), 1);
  t.equal(localHour(new Date('2026-11-01T06:30:00Z'), 'America/New_York'), 1, 'the repeated hour');
  t.equal(tenantZone('Mars/Olympus'), DEFAULT_TIMEZONE, 'unknown zone: the default');
  t.equal(tenantZone(null), 'Asia/Shanghai');
  t.equal(tenantZone(' America/New_York '), 'America/New_York');
  t.equal(periodOf('day', new Date('2026-11-20T16:00:00Z'), 'Not/AZone').start, '2026-11-21', 'computed in the default zone');
});

t.test('LocalHours gives localHour\'s answer for every minute around clock changes, odd offsets and a zone typed wrong', async (t) => {
  const cases: Array<[string, string]> = [
    ['America/New_York', '2026-03-08T00:00:00Z'], // spring forward
    ['America/New_York', '2026-11-01T00:00:00Z'], // fall back: 01:00-02:00 twice
    ['Australia/Lord_Howe', '2026-04-04T12:00:00Z'], // a 30-minute change
    ['Australia/Lord_Howe', '2026-10-03T12:00:00Z'],
    ['Asia/Kathmandu', '2026-11-20T00:00:00Z'], // +05:45
    ['Asia/Kolkata', '2026-11-20T00:00:00Z'], // +05:30
    ['Asia/Shanghai', '2026-11-19T00:00:00Z'],
    ['Europe/London', '2026-03-29T00:00:00Z'],
    ['Not/AZone', '2026-11-20T00:00:00Z'], // tenantZone's fallback, as localHour takes it
  ];
  for (const [zone, fromIso] of cases) {
    const hours = new LocalHours(zone);
    const from = Date.parse(fromIso);
    let differ = 0;
    // Every minute and every 7 s of 48 hours, in an order that is not time's (the cache must not depend on it).
    const instants: number[] = [];
    for (let ms = 0; ms < 48 * 3_600_000; ms += 60_000) instants.push(from + ms, from + ms + 7_000);
    for (let i = 0; i < instants.length; i++) {
      const at = new Date(instants[(i * 7919) % instants.length]);
      if (hours.of(at) !== localHour(at, zone)) differ++;
    }
    t.equal(differ, 0, `${zone} from ${fromIso}: ${instants.length} instants`);
  }
});
