// Request limits counted atomically in the database: 50 simultaneous requests for one visitor
// with a limit of 1 give exactly one admitted request, on MariaDB and SQLite; a refused request
// counts nowhere; windows roll over by the clock passed in.
import t from 'tap';
import { admitRequest, deleteExpiredLimits, windowOf, type LimitCheck } from '../../src/clicktocall/limits';
import { withDatabases } from '../helpers/db';

const ZONE = 'Asia/Shanghai';
const AT = new Date('2026-12-02T03:04:05.000Z');

function checks(visitor: string, client: string, limits: Partial<Record<LimitCheck['scope'], number | null>> = {}): LimitCheck[] {
  const v = { visitor_minute: 1, visitor_day: 5, client_minute: 100, client_day: 1000, widget_minute: null, widget_day: null, ...limits };
  return [
    { scope: 'visitor_minute', subject: visitor, limit: v.visitor_minute, zone: ZONE },
    { scope: 'visitor_day', subject: visitor, limit: v.visitor_day, zone: ZONE },
    { scope: 'client_minute', subject: client, limit: v.client_minute, zone: ZONE },
    { scope: 'client_day', subject: client, limit: v.client_day, zone: ZONE },
    { scope: 'widget_minute', subject: '7', limit: v.widget_minute, zone: ZONE },
    { scope: 'widget_day', subject: '7', limit: v.widget_day, zone: ZONE },
  ];
}

t.test('windows: UTC minutes, tenant-local days for widgets, platform days for visitors, UTC days for clients', async (t) => {
  t.same(windowOf('visitor_minute', AT, ZONE), { start: '2026-12-02T03:04', end: new Date('2026-12-02T03:05:00Z') });
  const day = windowOf('visitor_day', new Date('2026-12-02T17:00:00Z'), ZONE);
  t.equal(day.start, '2026-12-03', '17:00 UTC is already the 3rd in Shanghai');
  t.same(day.end, new Date('2026-12-03T16:00:00Z'));
  t.equal(windowOf('client_day', new Date('2026-12-02T17:00:00Z'), ZONE).start, '2026-12-02');
  // A visitor number is counted across every tenant's widgets: one day for all of them, whatever
  // the widget's tenant's zone (else one number gets two "days" at once, and twice the limit).
  const at = new Date('2026-12-06T20:00:00Z');
  t.same(windowOf('visitor_day', at, 'America/Los_Angeles'), windowOf('visitor_day', at, ZONE), "a Los Angeles tenant's widget counts the visitor's platform day");
  t.equal(windowOf('widget_day', at, 'America/Los_Angeles').start, '2026-12-06', "a widget's own day is its tenant's");
  t.equal(windowOf('widget_day', at, ZONE).start, '2026-12-07');
});

withDatabases(t, async (t, knex) => {
  const verdicts = await Promise.all(Array.from({ length: 50 }, (_, i) => admitRequest(knex, checks('13912345678', `10.0.0.${i % 7}`), AT)));
  t.equal(verdicts.filter((v) => v.ok).length, 1, '50 simultaneous requests for one visitor: exactly one admitted');
  const refused = verdicts.filter((v) => !v.ok);
  t.ok(refused.every((v) => !v.ok && v.scope === 'visitor_minute'), 'the others are refused by the per-visitor minute');
  t.same(refused[0], { ok: false, scope: 'visitor_minute', retryAfterS: 55 }, 'Retry-After: the rest of the minute');
  const rows: Array<{ scope: string; count: number | string }> = await knex('click_to_call_limits').orderBy('id').select('scope', 'count');
  const count = (scope: string): number => rows.filter((r) => r.scope === scope).reduce((s, r) => s + Number(r.count), 0);
  t.equal(count('visitor_minute'), 1);
  t.equal(count('visitor_day'), 1, 'refused requests count nowhere (the transaction rolled back)');
  t.equal(count('client_minute'), 1, 'not even against the client address');

  // The next minute: one more; the day allows five in all.
  let admitted = 1;
  for (let m = 1; m <= 6; m++) {
    const v = await admitRequest(knex, checks('13912345678', '10.0.0.1'), new Date(AT.getTime() + m * 60_000));
    if (v.ok) admitted++;
    else t.match(v, { scope: 'visitor_day' }, `minute ${m}: the day is full`);
  }
  t.equal(admitted, 5, 'five a day for one visitor');
  const dayFull = await admitRequest(knex, checks('13912345678', '10.0.0.1'), new Date(AT.getTime() + 10 * 60_000));
  t.match(dayFull, { ok: false, scope: 'visitor_day' });
  t.equal(dayFull.ok ? 0 : dayFull.retryAfterS, Math.ceil((new Date('2026-12-02T16:00:00Z').getTime() - AT.getTime() - 600_000) / 1000), 'Retry-After: until local midnight');

  // Per client address, across visitors; and per widget.
  const client = await Promise.all(['13900000001', '13900000002', '13900000003'].map((n) => admitRequest(knex, checks(n, '192.0.2.9', { client_minute: 2 }), AT)));
  t.equal(client.filter((v) => v.ok).length, 2, 'two a minute from one client address');
  t.match(client.find((v) => !v.ok), { scope: 'client_minute' });
  const widget = await Promise.all(['13700000001', '13700000002', '13700000003', '13700000004'].map((n, i) => admitRequest(knex, checks(n, `198.51.100.${i}`, { widget_day: 3 }), AT)));
  t.equal(widget.filter((v) => v.ok).length, 3, 'three a day through the widget');
  t.match(widget.find((v) => !v.ok), { scope: 'widget_day' });
  t.same(await admitRequest(knex, checks('13600000000', '203.0.113.1', { widget_minute: 0 }), AT), { ok: false, scope: 'widget_minute', retryAfterS: null },
    'a limit of 0 admits nothing, and names no time to come back');

  // Minute and day both full: Retry-After runs to the day's end, which frees a slot last.
  const both = checks('13500000000', '203.0.113.2', { visitor_minute: 1, visitor_day: 1 });
  t.match(await admitRequest(knex, both, AT), { ok: true });
  const later = new Date(AT.getTime() + 10_000);
  t.same(await admitRequest(knex, both, later), { ok: false, scope: 'visitor_day', retryAfterS: (new Date('2026-12-02T16:00:00Z').getTime() - later.getTime()) / 1000 },
    'the minute is full too, but waiting for it would not help');
  // Only a later window (the client's minute) full beside the visitor's: the later one decides.
  const client2 = checks('13500000001', '203.0.113.3', { visitor_minute: 1, visitor_day: 10, client_minute: 1, client_day: 1 });
  t.match(await admitRequest(knex, client2, AT), { ok: true });
  t.same(await admitRequest(knex, client2, later), { ok: false, scope: 'client_day', retryAfterS: (new Date('2026-12-03T00:00:00Z').getTime() - later.getTime()) / 1000 },
    'visitor minute, client minute and client day full: the client\'s UTC day frees a slot last');

  const swept = await deleteExpiredLimits(knex, new Date(AT.getTime() + 3 * 86_400_000));
  t.ok(swept > 0, 'old windows are swept');
  t.equal(Number((await knex('click_to_call_limits').count({ n: '*' }))[0].n), 0);
});
