// Hand-edited values review 38 found read silently: each took a number out of service, screened a
// caller otherwise than written or refused every call, with no finding. Each case: the row, what
// the snapshot keeps, and (where it matters) what a call gets.
import t from 'tap';
import { callerNumber } from '../../src/domain/caller-number';
import type { CallerGeo } from '../../src/domain/geo';
import { identify } from '../../src/domain/routing';
import { screenCaller } from '../../src/domain/screening';
import { buildSnapshot, NO_FILTERS } from '../../src/snapshot/build';
import { explainFindings } from '../../src/snapshot/findings';
import { accessNumberRow, edited, goodRaw, tenantRow } from './fixtures';

const WHEN = new Date('2026-11-23T02:00:00.000Z');

t.test('access_numbers.number: a 400 or 800 number of other than 10 digits is refused; an edit into it keeps the last good number', async (t) => {
  // UPDATE access_numbers SET number='400100001' (a digit dropped from 4001000001): accepted as a
  // number of 3-32 digits, so 4001000001 went out of service and route explain said nothing.
  const before = buildSnapshot(goodRaw(), 1, WHEN);
  for (const number of ['400100001', '40010000011', '+86 400-100-00011', '0086 400 100 001', '８６４００１０００００', '0400100001']) {
    const s = buildSnapshot(edited('access_numbers', 1, { number }), 2, WHEN, before.lastGood);
    t.equal(identify(s, '4001000001').kind, 'ok', `${number}: 4001000001 is still in service`);
    t.match(s.rejected, [{ table: 'access_numbers', id: 1, status: 'last_good', column: 'number', reason: /400 and 800 numbers have 10/ }], `${number}: reported`);
    t.equal(s.rejected.length, 1, `${number}: one finding`);
    t.match(explainFindings(s, '4001000001').join('\n'), /access_numbers id=1 .*400 and 800 numbers have 10/, `${number}: route explain says why`);
  }

  // A new row with such a number: skipped, and route explain of what was typed says why.
  const raw = goodRaw();
  raw.access_numbers.push(accessNumberRow(3, 1, '800123456'), accessNumberRow(4, 1, '80012345678'));
  const s = buildSnapshot(raw, 1, WHEN);
  t.match(s.rejected, [
    { table: 'access_numbers', id: 3, status: 'skipped', column: 'number', value: '"800123456"', reason: /starts with 800 but has 9 digits: 400 and 800 numbers have 10/ },
    { table: 'access_numbers', id: 4, status: 'skipped', column: 'number', reason: /has 11 digits/ },
  ]);
  t.match(explainFindings(s, '800123456').join('\n'), /access_numbers id=3/);

  // Every spelling of a 10-digit number (and numbers that are not 400/800 numbers) still reads.
  const spellings = ['+86 400-100-0001', '0086 4001000001', '864001000001', '04001000001', '４００１０００００１', '400 100 0001'];
  for (const number of spellings) {
    const ok = buildSnapshot(edited('access_numbers', 1, { number }), 2, WHEN, before.lastGood);
    t.same(ok.rejected, [], `${number} is 4001000001`);
  }
  const others = goodRaw();
  others.access_numbers.push(accessNumberRow(5, 1, '020-8888-6666'), accessNumberRow(6, 1, '8008001234'), accessNumberRow(7, 1, '95588'), accessNumberRow(8, 1, '+44 20 7946 0000'));
  t.same(buildSnapshot(others, 1, WHEN).rejected, [], 'a switchboard number, an 800 number, a short number, a foreign number');
});

t.test('call_filters: a number or prefix is screened the same whichever spelling the DBA typed (0086, 86, +86, a trunk 0 before a mobile)', async (t) => {
  // A list row '008613912345678' (or '013912345678') never matched the caller 13912345678: only a
  // + was dropped from the value. An allow list of such rows blocked the very callers it listed.
  const geo: CallerGeo = { e164: null, country: null, province: null, city: null, areaCode: null, isMobile: false, description: null };
  const screen = (list: 'block' | 'allow', kind: 'number' | 'prefix', value: string, caller: string): string => {
    const raw = goodRaw();
    raw.call_filters = [{ id: 1, tenant_id: 1, list, kind, value }];
    const s = buildSnapshot(raw, 1, WHEN);
    t.same(s.rejected, [], `${kind} ${value} is read`);
    return screenCaller(s.tenants.get(1)!, s.filtersByTenant.get(1) ?? NO_FILTERS, callerNumber(caller), geo).verdict;
  };
  const cases: Array<{ kind: 'number' | 'prefix'; spellings: string[]; callers: string[]; others: string[] }> = [
    {
      kind: 'number',
      spellings: ['13912345678', '+8613912345678', '8613912345678', '008613912345678', '013912345678', '+86013912345678', '0086013912345678'],
      callers: ['13912345678', '+8613912345678', '008613912345678', '013912345678'],
      others: ['13912345679'],
    },
    {
      kind: 'number',
      spellings: ['02088886666', '2088886666', '+862088886666', '862088886666', '00862088886666', '+8602088886666'],
      callers: ['02088886666', '+862088886666', '2088886666'],
      others: ['02088886667'],
    },
    { kind: 'number', spellings: ['10086', '+8610086', '008610086', '8610086'], callers: ['10086', '+8610086'], others: ['100860'] },
    {
      kind: 'prefix',
      spellings: ['139', '0139', '86139', '+86139', '0086139', '+860139', '+0086139', '+0139'],
      callers: ['13912345678', '+8613912345678', '008613912345678', '013912345678'],
      others: ['13812345678'],
    },
    { kind: 'prefix', spellings: ['010', '+8610', '008610', '+86010'], callers: ['01012345678', '+861012345678'], others: ['02012345678'] },
    // Another country's prefix written as it is dialled from China (00852): before, it matched only
    // a caller presented with 00, never one with + (the usual presentation of a foreign caller).
    { kind: 'prefix', spellings: ['00852', '+852', '852', '+00852'], callers: ['+85291234567', '0085291234567'], others: ['+85391234567', '13912345678'] },
    { kind: 'number', spellings: ['0085291234567', '+85291234567'], callers: ['+85291234567', '0085291234567'], others: ['+85291234568'] },
  ];
  for (const c of cases) {
    for (const value of c.spellings) {
      for (const caller of c.callers) {
        t.equal(screen('block', c.kind, value, caller), 'blocked', `block ${c.kind} ${value}: caller ${caller} is blocked`);
        t.equal(screen('allow', c.kind, value, caller), 'pass', `allow ${c.kind} ${value}: caller ${caller} passes`);
      }
      for (const caller of c.others) {
        t.equal(screen('block', c.kind, value, caller), 'pass', `block ${c.kind} ${value}: caller ${caller} is not listed`);
        t.equal(screen('allow', c.kind, value, caller), 'blocked', `allow ${c.kind} ${value}: caller ${caller} is not listed`);
      }
    }
  }
  // A prefix written with China's country code stays one: +861 is not prefix 1 (a +1 caller's digits).
  t.equal(screen('block', 'prefix', '00861', '+12125551234'), 'pass', '0086 1 does not block a US caller');
  t.equal(screen('block', 'prefix', '+4420', '+442079460000'), 'blocked', 'another country, as before');
  // A foreign prefix matches foreign callers only: read as 1…, +1 (or 001) blocked every Chinese mobile.
  for (const value of ['+1', '001', '+1212', '001212']) {
    for (const caller of ['13912345678', '+8613912345678', '02088886666', '12345']) t.equal(screen('block', 'prefix', value, caller), 'pass', `block prefix ${value}: caller ${caller} is not listed`);
    for (const caller of ['+12125551234', '0012125551234']) t.equal(screen('block', 'prefix', value, caller), 'blocked', `block prefix ${value}: caller ${caller} is blocked`);
    t.equal(screen('allow', 'prefix', value, '13912345678'), 'blocked', `allow prefix ${value}: a Chinese mobile is not on it`);
  }
  t.equal(screen('block', 'prefix', '+44', '+4412'), 'blocked', 'a foreign caller too short for libphonenumber still has its + spelling');
  t.equal(screen('block', 'prefix', '+44', '004412'), 'blocked', 'and presented with 00');
  // 00 alone is no country: it stays the prefix of callers presented with 00, never every caller.
  t.equal(screen('block', 'prefix', '00', '13912345678'), 'pass', 'prefix 00 does not block a Chinese mobile');
  t.equal(screen('block', 'prefix', '00', '0085291234567'), 'blocked', 'prefix 00: a caller presented with 00');
});

t.test('tenants.timezone the runtime does not know (GMT+8, Beijing …): the tenant stays in force on the default zone, reported; an edit into it keeps the last good zone', async (t) => {
  // A new tenant typed with timezone 'GMT+8' was skipped whole: every number of it out of service
  // for a zone name, when CST (a zone that does exist) is read as the default with a finding.
  const zones = ['GMT+8', 'UTC+8', '+08:00', 'Beijing', 'China Standard Time', 'Asia/Beijing'];
  const raw = goodRaw();
  zones.forEach((timezone, i) => {
    raw.tenants.push(tenantRow(10 + i, { timezone }));
    raw.access_numbers.push(accessNumberRow(10 + i, 10 + i, `40099000${10 + i}`));
  });
  const s = buildSnapshot(raw, 1, WHEN);
  zones.forEach((timezone, i) => {
    const id = 10 + i;
    t.equal(s.tenants.get(id)?.timezone, 'Asia/Shanghai', `${timezone}: in force on the default zone`);
    t.equal(identify(s, `40099000${id}`).kind, 'ok', `${timezone}: its number is in service`);
  });
  t.match(s.rejected, zones.map((timezone, i) => ({
    table: 'tenants', id: 10 + i, status: 'link_ignored', column: 'timezone', value: JSON.stringify(timezone),
    reason: /is not an IANA time zone .*; Asia\/Shanghai, the default, is used/,
  })));
  t.equal(s.rejected.length, zones.length, 'one finding each');

  // Edited from America/New_York (tenant 2) into one: the last good zone stays, reported.
  const before = buildSnapshot(goodRaw(), 1, WHEN);
  const after = buildSnapshot(edited('tenants', 2, { timezone: 'GMT-5' }), 2, WHEN, before.lastGood);
  t.equal(after.tenants.get(2)?.timezone, 'America/New_York');
  t.match(after.rejected, [{ table: 'tenants', id: 2, status: 'last_good', column: 'timezone', value: '"GMT-5"' }]);
  const again = buildSnapshot(edited('tenants', 2, { timezone: 'GMT-5' }), 3, WHEN, after.lastGood);
  t.equal(again.tenants.get(2)?.timezone, 'America/New_York', 'still the last good zone a reload later');
});

t.test('tenants caps of 0 (every call refused) are doubtful: an edit into 0 keeps the last good cap; with none, 0 stands, reported', async (t) => {
  // UPDATE tenants SET max_calls_day = 0 (meant as "off", as 0 is in caller_memory_hours,
  // max_queue, pin_lockout_failures): every call was refused, and nothing said why.
  const base = goodRaw();
  base.tenants[0] = { ...base.tenants[0], max_calls_day: 100, max_calls_month: 1000, max_spend_day: '50.0000', max_spend_month: '500.0000' };
  const before = buildSnapshot(base, 1, WHEN);
  const caps = { max_calls_day: 100, max_calls_month: 1000, max_spend_day: 500_000, max_spend_month: 5_000_000 };
  const field = { max_calls_day: 'maxCallsDay', max_calls_month: 'maxCallsMonth', max_spend_day: 'maxSpendDay', max_spend_month: 'maxSpendMonth' } as const;
  for (const [column, zero] of [['max_calls_day', 0], ['max_calls_month', '0'], ['max_spend_day', '0.0000'], ['max_spend_month', 0]] as const) {
    const s = buildSnapshot(edited('tenants', 1, { [column]: zero }, base), 2, WHEN, before.lastGood);
    t.equal(s.tenants.get(1)?.[field[column]], caps[column], `${column} = ${JSON.stringify(zero)}: the last good cap stays`);
    t.match(s.rejected, [{ table: 'tenants', id: 1, status: 'last_good', column, reason: new RegExp(`${column} 0 refuses every call: NULL means no cap, and status 'suspended' stops calls`) }]);
    t.equal(s.rejected.length, 1);
  }
  // A tenant that has it with no earlier version: in force as written (it may stand in a database
  // this release upgrades), reported.
  const raw = goodRaw();
  raw.tenants.push(tenantRow(3, { max_calls_day: 0 }), tenantRow(4, { max_spend_month: '0.0000' }), tenantRow(5, { max_calls_day: null, max_spend_day: '0.0001' }));
  const s = buildSnapshot(raw, 1, WHEN);
  t.equal(s.tenants.get(3)?.maxCallsDay, 0);
  t.equal(s.tenants.get(4)?.maxSpendMonth, 0);
  t.match(s.rejected, [
    { table: 'tenants', id: 3, status: 'doubtful', column: 'max_calls_day', value: '0', reason: /refuses every call.*; 0 is used as written/ },
    { table: 'tenants', id: 4, status: 'doubtful', column: 'max_spend_month' },
  ]);
  t.equal(s.rejected.length, 2, 'NULL and a cap above 0 are not reported');
  // A tenant in force with a cap of 0 as written: a later edit of another column is not undone
  // for it; an edit into a bad value keeps that version (0 and all), both reported.
  const renamed = buildSnapshot(edited('tenants', 3, { name: 'Renamed' }, raw), 2, WHEN, s.lastGood);
  t.equal(renamed.tenants.get(3)?.name, 'Renamed', 'the new name is in force');
  t.match(renamed.rejected.filter((f) => f.id === 3), [{ status: 'doubtful', column: 'max_calls_day' }]);
  const cleared = buildSnapshot(edited('tenants', 3, { name: 'Renamed', balance: '' }, raw), 2, WHEN, s.lastGood);
  t.equal(cleared.tenants.get(3)?.balance, 1_000_000, 'the last good balance stays');
  t.equal(cleared.tenants.get(3)?.name, 'Tenant 3', 'with the rest of that version');
  t.match(cleared.rejected.filter((f) => f.id === 3), [{ status: 'last_good', column: 'balance' }, { status: 'doubtful', column: 'max_calls_day' }]);
  // A negative cap is still refused (its last good version, or the tenant skipped).
  t.match(buildSnapshot(edited('tenants', 1, { max_calls_month: -1 }, base), 2, WHEN, before.lastGood).rejected, [{ id: 1, status: 'last_good', column: 'max_calls_month', reason: /must not be negative \(NULL = no cap\)/ }]);
});
