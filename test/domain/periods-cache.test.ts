// The memoised periodOf (and the memoised zone check under it) against the plain luxon
// computation, instant by instant: across DST changes (1 hour, 30 minutes, at midnight), zones
// with quarter-hour offsets, a skipped calendar day, month and year ends, cold and warm cache.
import { DateTime } from 'luxon';
import t from 'tap';
import { computePeriodOf, periodCacheSize, periodOf, periodStartOf, tenantZone, DEFAULT_TIMEZONE, type Period, type PeriodKind } from '../../src/domain/periods';
import { isValidTimeZone } from '../../src/domain/timezone';

const ZONES = [
  'Asia/Shanghai',
  'UTC',
  'America/New_York',
  'Europe/London',
  'America/Santiago', // DST changes at midnight: some days start at 01:00
  'America/Havana', // likewise, at 00:00 → 01:00
  'Australia/Lord_Howe', // a 30-minute DST shift
  'Asia/Kathmandu', // +05:45
  'Pacific/Chatham', // +12:45 / +13:45
  'Asia/Kolkata', // +05:30
  'Pacific/Apia', // skipped 2011-12-30 entirely
];

const plain = (p: Period): string => `${p.kind} ${p.start} ${p.zone} ${p.from.toISOString()} ${p.to.toISOString()}`;

/** The UTC instants in [from, to) where `zone`'s offset changes (found day by day, then bisected to the millisecond). */
function offsetChanges(zone: string, from: Date, to: Date): Date[] {
  const out: Date[] = [];
  const offset = (ms: number): number => DateTime.fromMillis(ms, { zone }).offset;
  const DAY = 86_400_000;
  for (let ms = from.getTime(); ms < to.getTime(); ms += DAY) {
    if (offset(ms) === offset(ms + DAY)) continue;
    let lo = ms; // offset(lo) is the old one, offset(hi) the new one
    let hi = ms + DAY;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offset(mid) === offset(lo)) lo = mid;
      else hi = mid;
    }
    out.push(new Date(hi));
  }
  return out;
}

/** Every `stepMs` from `hours` before to `hours` after `around`, plus the millisecond either side of it. */
function sweep(around: Date, hours: number, stepMs: number): Date[] {
  const out: Date[] = [];
  const a = around.getTime();
  for (let ms = a - hours * 3_600_000; ms <= a + hours * 3_600_000; ms += stepMs) out.push(new Date(ms));
  out.push(new Date(a - 1), new Date(a), new Date(a + 1));
  return out;
}

function check(instants: Date[], zone: string): string[] {
  const wrong: string[] = [];
  for (const kind of ['day', 'month'] as PeriodKind[]) {
    for (const at of instants) {
      const want = plain(computePeriodOf(kind, at, zone));
      const got = plain(periodOf(kind, at, zone));
      if (got !== want) wrong.push(`${zone} ${kind} ${at.toISOString()}: ${got}, want ${want}`);
      const start = periodStartOf(kind, at, zone);
      if (!want.startsWith(`${kind} ${start} `)) wrong.push(`${zone} ${kind} ${at.toISOString()}: periodStartOf ${start}, want ${want}`);
    }
  }
  return wrong;
}

void t.test('memoised periods equal the computed ones across DST changes, cold and warm', async (t) => {
  for (const zone of ZONES) {
    const changes = offsetChanges(zone, new Date('2026-01-01T00:00:00Z'), new Date('2027-01-01T00:00:00Z'));
    if (zone === 'Pacific/Apia') changes.push(...offsetChanges(zone, new Date('2011-12-28T00:00:00Z'), new Date('2012-01-02T00:00:00Z')));
    const instants = changes.flatMap((c) => sweep(c, 12, 11 * 60_000 + 13_000));
    // Cold, warm, and warm in reverse order (slots filled from the other side).
    const wrong = [...check(instants, zone), ...check(instants, zone), ...check([...instants].reverse(), zone)];
    t.same(wrong.slice(0, 5), [], `${zone}: ${changes.length} offset changes, ${instants.length} instants × 2 kinds × 3 passes`);
  }
});

void t.test('memoised periods equal the computed ones at every local midnight of month and year ends', async (t) => {
  for (const zone of ZONES) {
    const instants: Date[] = [];
    for (const day of ['2026-01-01', '2026-02-28', '2026-03-01', '2026-04-01', '2026-10-31', '2026-11-01', '2026-12-31', '2027-01-01', '2028-02-29', '2028-03-01']) {
      const midnight = DateTime.fromISO(day, { zone }).startOf('day').toJSDate();
      instants.push(...sweep(midnight, 2, 5 * 60_000 + 1));
    }
    const wrong = [...check(instants, zone), ...check([...instants].reverse(), zone)];
    t.same(wrong.slice(0, 5), [], `${zone}: ${instants.length} instants around month and year ends`);
    const last = periodOf('month', new Date(DateTime.fromISO('2027-01-01', { zone }).toMillis() - 1), zone);
    t.equal(last.start, '2026-12-01', `${zone}: the millisecond before the new year is in December`);
    t.equal(periodOf('month', last.to, zone).start, '2027-01-01', `${zone}: its end is January's first instant`);
  }
});

void t.test('a zone whose offset is not quarter hours (LMT) is computed, never answered from a slot', async (t) => {
  // Shanghai's local mean time before 1901 was +08:05:43: midnight falls inside a 15-minute slot.
  const zone = 'Asia/Shanghai';
  const midnight = DateTime.fromISO('1899-06-01', { zone }).startOf('day').toJSDate();
  t.not(midnight.getTime() % (15 * 60_000), 0, 'the local midnight is not on a slot boundary');
  const instants = sweep(midnight, 1, 15_000 + 7);
  t.same([...check(instants, zone), ...check([...instants].reverse(), zone)].slice(0, 5), []);
});

void t.test('a returned period is the caller\'s own: changing it does not change the cache', async (t) => {
  const at = new Date('2026-11-21T02:00:00Z');
  const first = periodOf('day', at, 'Asia/Shanghai');
  first.from.setTime(0);
  first.to.setTime(0);
  const again = periodOf('day', at, 'Asia/Shanghai');
  t.equal(again.from.toISOString(), '2026-11-20T16:00:00.000Z');
  t.equal(again.to.toISOString(), '2026-11-21T16:00:00.000Z');
});

void t.test('the caches are bounded', async (t) => {
  const { max } = periodCacheSize();
  // More 15-minute slots than the cache holds.
  for (let ms = Date.parse('2026-01-01T00:00:00Z'), i = 0; i < max + 100; ms += 15 * 60_000, i++) periodOf('day', new Date(ms), 'Asia/Shanghai');
  t.ok(periodCacheSize().size <= max, `${periodCacheSize().size} entries, bound ${max}`);
  t.equal(periodOf('day', new Date('2026-01-01T00:00:00Z'), 'Asia/Shanghai').start, '2026-01-01', 'an evicted slot is computed again');
  // Many junk zone names (a tenants.timezone column full of typos) fall back to the default.
  const junk = Array.from({ length: 3000 }, (_, i) => `Not/AZone${i}`).filter((z) => isValidTimeZone(z));
  t.same(junk, [], '3,000 junk names: none valid');
  t.equal(tenantZone('Not/AZone1'), DEFAULT_TIMEZONE);
  t.equal(isValidTimeZone('Europe/Paris'), true);
  t.equal(isValidTimeZone('Europe/Paris'), true, 'the same answer from the cache');
});
