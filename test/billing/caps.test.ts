// The caps job on SQLite and MariaDB: usage recounted from CDR histories with known answers,
// drift corrected both ways (down only when seen twice), calls in flight counted, tenants capped
// and reopened at the next day or month in their own zone (Shanghai and New York).
import Database from 'better-sqlite3';
import type { Knex } from 'knex';
import t, { type Test } from 'tap';
import { CAPS_PAGE_ROWS, capsReached, cdrTotals, correctedCalls, LIVE_CALLS_PAGE_ROWS, publishedLiveCalls, recountPieces, runCaps, SQLITE_RECOUNT_SLICE_ROWS, type TenantLimits } from '../../src/billing/caps';
import { periodOf } from '../../src/domain/periods';
import { sqliteFile, toDbTimestamp } from '../../src/db/connect';
import { money, parseMoney } from '../../src/domain/money';
import { createLogger } from '../../src/log';
import { inReadTransaction, openSqliteReader, type SqliteReader } from '../../src/db/sqlite-reader';
import { dbTargets, type TestDb } from '../helpers/db';
import { turnsDuring } from '../helpers/wait';
import { addCdrs, addTenant, cdrRow, eachDb, setUsage, usage } from './helpers';

const log = createLogger('silent');

void t.test('capsReached (pure)', async (t) => {
  const base: TenantLimits = { id: 1, status: 'active', zone: 'Asia/Shanghai', balance: null, maxCallsDay: null, maxCallsMonth: null, maxSpendDay: null, maxSpendMonth: null };
  const used = { callsDay: 10, callsMonth: 100, spendDay: parseMoney('5'), spendMonth: parseMoney('50'), liveCost: money(0) };
  const reasons = (limits: Partial<TenantLimits>, u: Partial<typeof used> = {}): string[] => capsReached({ ...base, ...limits }, { ...used, ...u }).map((f) => f.reason);
  t.same(reasons({}), [], 'no caps');
  t.same(reasons({ maxCallsDay: 10 }), ['calls_day'], 'reached = capped (the next call would exceed)');
  t.same(reasons({ maxCallsDay: 11 }), []);
  t.same(reasons({ maxCallsMonth: 100, maxCallsDay: 50 }), ['calls_month']);
  t.same(reasons({ maxSpendDay: parseMoney('5.0001') }), []);
  t.same(reasons({ maxSpendDay: parseMoney('5.0001') }, { liveCost: money(1) }), ['spend_day'], 'live calls count');
  t.same(reasons({ maxSpendMonth: parseMoney('50') }), ['spend_month']);
  t.same(reasons({ balance: parseMoney('0.0001') }), []);
  t.same(reasons({ balance: parseMoney('0') }), ['balance']);
  t.same(reasons({ balance: parseMoney('1') }, { liveCost: parseMoney('1') }), ['balance'], 'live calls have used the balance up');
  t.same(reasons({ balance: parseMoney('-3') }), ['balance']);
  t.same(reasons({ status: 'suspended', balance: parseMoney('-3') }), [], 'suspended tenants take no calls anyway');
  t.same(reasons({ maxCallsDay: 0 }, { callsDay: 0 }), ['calls_day'], '0 = no calls at all');
});

void t.test('correctedCalls (pure): up at once; down only by what was missing before and no call admitted since can stand for', async (t) => {
  // [stored, recount, excess seen before, calls the job last wrote (null: never), expected]
  const table: Array<[number, number, number, number | null, { calls: number; excess: number }]> = [
    [5, 5, 0, 5, { calls: 5, excess: 0 }],
    [3, 5, 0, 3, { calls: 5, excess: 0 }],
    [3, 5, 2, 3, { calls: 5, excess: 0 }],
    [8, 5, 0, 8, { calls: 8, excess: 3 }],
    [8, 5, 3, 8, { calls: 5, excess: 0 }], // nothing admitted since: the 3 missing twice go
    [8, 5, 1, 8, { calls: 7, excess: 2 }],
    [8, 5, 9, 8, { calls: 5, excess: 0 }],
    [8, 5, 3, null, { calls: 8, excess: 3 }], // a row the job never wrote: only noted
    [9, 5, 3, 8, { calls: 6, excess: 1 }], // one admitted since: it may be one of the 4 missing, the 3 missing before go
    [2, 1, 1, 1, { calls: 2, excess: 1 }], // the review's case: B (admitted since) is the one missing, not A
    [11, 5, 3, 8, { calls: 8, excess: 3 }], // 3 admitted since may be 3 of the 6 missing; 3 were missing before
    [11, 5, 3, 5, { calls: 11, excess: 6 }], // 6 admitted since: every call missing may be one of them
    [8, 5, 3, 10, { calls: 5, excess: 0 }], // a count the job wrote above today's (nothing admitted since)
  ];
  for (const [stored, recount, seen, atRecount, want] of table) t.same(correctedCalls(stored, recount, seen, atRecount), want, `stored ${stored}, recount ${recount}, seen ${seen}, written at ${atRecount}`);
});

const NOW = new Date('2026-11-20T02:00:00.000Z');

eachDb(t, 'a CDR history with known answers: recount, drift corrected, capped', async (t, { knex }) => {
  const tenant = await addTenant(knex, { max_calls_day: 6, max_spend_month: '100', balance: '50' });
  const day = (h: number, m = 0): Date => new Date(Date.UTC(2026, 10, 19, 16 + h, m)); // local 2026-11-20 h:m
  await addCdrs(knex, [
    { tenant_id: tenant, started_at: day(0, 0), cost: '0.3000' }, // 00:00 local, counts today
    { tenant_id: tenant, started_at: day(1), cost: '0.1500' },
    { tenant_id: tenant, started_at: day(2), outcome: 'busy' },
    { tenant_id: tenant, started_at: day(3), outcome: 'no_answer' },
    { tenant_id: tenant, started_at: day(4), outcome: 'capped' }, // refused: not a call against the cap
    { tenant_id: tenant, started_at: day(5), outcome: 'blocked' }, // refused by screening
    { tenant_id: tenant, started_at: day(6), outcome: 'blocked', admitted: 1 }, // a routing rule's reject after admission
    { tenant_id: tenant, started_at: day(7), outcome: 'answered', admitted: 0, cost: '0.0100' }, // said not admitted
    { tenant_id: tenant, started_at: new Date('2026-11-19T15:59:59.000Z'), cost: '7.0000' }, // yesterday 23:59:59 local
    { tenant_id: tenant, started_at: new Date('2026-10-31T15:59:59.000Z'), cost: '9.0000' }, // Oct 31 local: last month
    { tenant_id: null, started_at: day(1), cost: '1.0000' },
  ]);
  // Drift: the day row lost two calls and has too much spend; the month row is missing.
  await setUsage(knex, tenant, 'day', '2026-11-20', 2, '3.3300');
  const r = await runCaps(knex, NOW, log);
  t.same(await usage(knex, tenant, 'day', '2026-11-20'), { calls: 5, spend: '0.4600', excess: 0 }, 'day: 5 calls, 0.46');
  t.same(await usage(knex, tenant, 'month', '2026-11-01'), { calls: 6, spend: '7.4600', excess: 0 }, 'month: yesterday included, October not');
  t.equal(r.corrected, 2);
  t.equal(r.capped, 0);

  // One more answered call: 6 calls = the cap.
  await addCdrs(knex, [{ tenant_id: tenant, started_at: day(8), cost: '0.1500' }]);
  const r2 = await runCaps(knex, NOW, log);
  t.equal((await usage(knex, tenant, 'day', '2026-11-20'))?.calls, 6);
  t.equal(r2.capped, 1);
  t.equal(r2.cappedTenants, 1);
  const capped: Array<Record<string, unknown>> = await knex('capped_tenants').where({ tenant_id: tenant }).select('reason', 'period_start', 'detail');
  t.same(capped, [{ reason: 'calls_day', period_start: '2026-11-20', detail: '6 calls of 6 today' }]);

  // Nothing changed: nothing written.
  const r3 = await runCaps(knex, new Date(NOW.getTime() + 60_000), log);
  t.same([r3.corrected, r3.capped, r3.reopened], [0, 0, 0], 'a run with nothing to do touches no rows');

  // The next day in Shanghai (16:00Z): reopened. Month spend still counted.
  const r4 = await runCaps(knex, new Date('2026-11-20T16:00:30.000Z'), log);
  t.equal(r4.reopened, 1, 'reopened at local midnight');
  t.same(await knex('capped_tenants').where({ tenant_id: tenant }).select('reason'), []);
  t.equal(await usage(knex, tenant, 'day', '2026-11-21'), null, 'a new day starts empty (no row needed)');
  t.equal((await usage(knex, tenant, 'month', '2026-11-01'))?.spend, '7.6100');
});

eachDb(t, 'calls in flight count; a count above the recount comes down only when it persists', async (t, { knex }) => {
  const tenant = await addTenant(knex, { max_calls_day: 100 });
  await addCdrs(knex, [{ tenant_id: tenant, started_at: '2026-11-20T01:00:00Z', cost: '0.1500' }, { tenant_id: tenant, started_at: '2026-11-20T01:10:00Z', cost: '0.1500' }]);
  const seen = toDbTimestamp(new Date(NOW.getTime() - 20_000));
  await knex('live_calls').insert([
    { call_uuid: 'live-1', node: 'n1', tenant_id: tenant, started_at: '2026-11-20 01:59:00.000', answered_at: '2026-11-20 01:59:10.000', per_minute: '0.1500', increment_s: 60, connect_fee: '0', admitted: 1, seen_at: seen },
    { call_uuid: 'live-2', node: 'n2', tenant_id: tenant, started_at: '2026-11-20 01:59:30.000', admitted: 1, seen_at: seen },
    { call_uuid: 'live-3', node: 'n2', tenant_id: tenant, started_at: '2026-11-20 01:59:30.000', admitted: 0, seen_at: seen },
    { call_uuid: 'stale', node: 'dead', tenant_id: tenant, started_at: '2026-11-20 01:00:00.000', admitted: 1, seen_at: toDbTimestamp(new Date(NOW.getTime() - 11 * 60_000)) },
  ]);
  // Admission counted 2 CDR calls + 2 live + 3 that died with a daemon (no CDR, not live) = 7.
  await setUsage(knex, tenant, 'day', '2026-11-20', 7, '0.3000');
  const r1 = await runCaps(knex, NOW, log);
  t.same(await usage(knex, tenant, 'day', '2026-11-20'), { calls: 7, spend: '0.3000', excess: 3 }, 'first run: 3 unexplained calls noted, not removed');
  t.equal(r1.purgedLiveCalls, 1, 'a live call not published for 10 minutes is purged');
  // An admission meanwhile (a call another daemon has not published yet) …
  await knex('tenant_usage').where({ tenant_id: tenant, period_kind: 'day' }).increment('calls', 1);
  await runCaps(knex, new Date(NOW.getTime() + 60_000), log);
  t.same(await usage(knex, tenant, 'day', '2026-11-20'), { calls: 5, spend: '0.3000', excess: 1 }, 'second run: the 3 still missing removed; the new one only noted');
  // … which is published before the next run.
  await knex('live_calls').insert({ call_uuid: 'live-4', node: 'n2', tenant_id: tenant, started_at: '2026-11-20 02:00:30.000', seen_at: toDbTimestamp(new Date(NOW.getTime() + 90_000)) });
  await runCaps(knex, new Date(NOW.getTime() + 120_000), log);
  t.same(await usage(knex, tenant, 'day', '2026-11-20'), { calls: 5, spend: '0.3000', excess: 0 }, 'third run: it is live, nothing to remove');
  // A CDR written for a call still listed as live counts once.
  await addCdrs(knex, [{ tenant_id: tenant, started_at: '2026-11-20T01:59:00Z', call_uuid: 'live-1', cost: '0.1500' }]);
  await knex('live_calls').update({ seen_at: toDbTimestamp(new Date(NOW.getTime() + 150_000)) }); // the daemons publish every minute
  await runCaps(knex, new Date(NOW.getTime() + 180_000), log);
  t.same(await usage(knex, tenant, 'day', '2026-11-20'), { calls: 5, spend: '0.4500', excess: 0 });
});

eachDb(t, 'a call admitted after the last publication never stands for one published since: the count stays at the calls in progress, and the calls cap holds', async (t, { knex }) => {
  // A review's case. The daemons publish their live calls at :30 each minute, the job runs at :00.
  const tenant = await addTenant(knex, { max_calls_day: 2 });
  const day = (): Promise<unknown> => usage(knex, tenant, 'day', '2026-11-20');
  const admit = (): Promise<unknown> => knex('tenant_usage').where({ tenant_id: tenant, period_kind: 'day' }).increment('calls', 1);
  const at = (s: number): string => toDbTimestamp(new Date(NOW.getTime() + s * 1000));
  // Call A admitted at 01:59:40, after the publication of 01:59:30.
  await setUsage(knex, tenant, 'day', '2026-11-20', 1, '0');
  await runCaps(knex, NOW, log);
  t.same(await day(), { calls: 1, spend: '0.0000', excess: 1 }, '02:00: A not yet published, noted');
  // 02:00:30: A published. 02:00:40: call B admitted.
  await knex('live_calls').insert({ call_uuid: 'call-a', node: 'n1', tenant_id: tenant, started_at: '2026-11-20 01:59:40.000', admitted: 1, seen_at: at(30) });
  await admit();
  await runCaps(knex, new Date(NOW.getTime() + 60_000), log);
  t.same(await day(), { calls: 2, spend: '0.0000', excess: 1 }, '02:01: B, admitted since, is the one missing: nothing taken off (before: 1 call counted for 2 in progress)');
  t.same((await knex('capped_tenants').where({ tenant_id: tenant }).select('reason')).map((r: { reason: string }) => r.reason), ['calls_day'], 'capped: a third call is refused');
  // 02:01:30: B published; and a call C admitted at 02:01:40 dies with its daemon, never published.
  await knex('live_calls').where({ call_uuid: 'call-a' }).update({ seen_at: at(90) });
  await knex('live_calls').insert({ call_uuid: 'call-b', node: 'n1', tenant_id: tenant, started_at: '2026-11-20 02:00:40.000', admitted: 1, seen_at: at(90) });
  await admit();
  await runCaps(knex, new Date(NOW.getTime() + 120_000), log);
  t.same(await day(), { calls: 3, spend: '0.0000', excess: 1 }, '02:02: C may be in flight: noted');
  await knex('live_calls').update({ seen_at: at(150) });
  await runCaps(knex, new Date(NOW.getTime() + 180_000), log);
  t.same(await day(), { calls: 2, spend: '0.0000', excess: 0 }, '02:03: C missing twice and nothing admitted since: taken off');
});

eachDb(t, 'spend and balance caps with live calls; reopening in New York by New York\'s midnight', async (t, { knex }) => {
  const ny = await addTenant(knex, { timezone: 'America/New_York', max_spend_day: '1.0000' });
  const prepaid = await addTenant(knex, { balance: '0.2000' });
  const sh = await addTenant(knex, { max_spend_day: '1.0000' });
  // 21:00 on Nov 19 in New York; 10:00 on Nov 20 in Shanghai.
  await addCdrs(knex, [
    { tenant_id: ny, started_at: '2026-11-20T01:00:00Z', cost: '1.0000' },
    { tenant_id: sh, started_at: '2026-11-20T01:00:00Z', cost: '0.9000' },
  ]);
  const seen = toDbTimestamp(NOW);
  await knex('live_calls').insert([
    { call_uuid: 'p-1', node: 'n1', tenant_id: prepaid, started_at: '2026-11-20 01:58:00.000', answered_at: '2026-11-20 01:58:30.000', per_minute: '0.1000', increment_s: 6, connect_fee: '0', seen_at: seen },
    { call_uuid: 's-1', node: 'n1', tenant_id: sh, started_at: '2026-11-20 01:58:00.000', answered_at: '2026-11-20 01:58:00.000', per_minute: '0.0500', increment_s: 60, connect_fee: '0', seen_at: seen },
  ]);
  await runCaps(knex, NOW, log);
  const capped = async (): Promise<string[]> => (await knex<{ tenant_id: number; reason: string }>('capped_tenants').orderBy(['tenant_id', 'reason']).select('tenant_id', 'reason')).map((r) => `${r.tenant_id}:${r.reason}`);
  // prepaid: 90 s at 0.10/min in 6 s steps = 0.15, balance 0.20 → still open; sh: 0.90 + 0.10 (2 min at 0.05) = 1.00 → capped.
  t.same(await capped(), [`${ny}:spend_day`, `${sh}:spend_day`]);
  await runCaps(knex, new Date(NOW.getTime() + 30_000), log); // prepaid call now 120 s = 0.20
  t.same(await capped(), [`${ny}:spend_day`, `${prepaid}:balance`, `${sh}:spend_day`]);
  // Midnight in New York is 05:00Z: the New York tenant reopens, Shanghai's day goes on.
  await knex('live_calls').where({ call_uuid: 'p-1' }).delete();
  await knex('live_calls').update({ seen_at: toDbTimestamp(new Date('2026-11-20T05:00:00.000Z')) });
  await knex('tenants').where({ id: prepaid }).update({ balance: 10 }); // a top-up
  await runCaps(knex, new Date('2026-11-20T05:00:10.000Z'), log);
  t.same(await capped(), [`${sh}:spend_day`], 'New York reopened at its midnight, the top-up reopened the prepaid tenant');
  await knex('live_calls').delete();
  await runCaps(knex, new Date('2026-11-20T16:00:10.000Z'), log);
  t.same(await capped(), [], 'Shanghai at its own midnight');
});

t.test('recountPieces: the CDRs cut once at every zone\'s day and month boundaries; each period a run of whole pieces', async (t) => {
  const at = (zone: string): Array<ReturnType<typeof periodOf>> => [periodOf('day', NOW, zone), periodOf('month', NOW, zone)];
  const spans = (zones: string[]): string[] => recountPieces(zones.flatMap(at)).map((p) => `${p.from.toISOString()}..${p.to.toISOString()}`);
  t.same(spans([]), [], 'no tenant: nothing to read');
  t.same(spans(['Asia/Shanghai']), [
    '2026-10-31T16:00:00.000Z..2026-11-19T16:00:00.000Z',
    '2026-11-19T16:00:00.000Z..2026-11-20T16:00:00.000Z',
    '2026-11-20T16:00:00.000Z..2026-11-30T16:00:00.000Z',
  ], 'the month before today, today, the rest of the month: the day is read once, not twice');
  t.same(spans(['Asia/Shanghai', 'Asia/Hong_Kong', 'Asia/Shanghai']), spans(['Asia/Shanghai']), 'Hong Kong\'s boundaries are Shanghai\'s: no piece more');
  t.equal(spans(['Asia/Shanghai', 'Asia/Tokyo', 'America/New_York']).length, 11, 'three zones: 12 boundaries, 11 pieces, each CDR read once');
  // Every period is exactly the union of the pieces inside it, with no gap and no overlap.
  for (const zones of [['Asia/Shanghai'], ['Asia/Shanghai', 'America/New_York', 'Asia/Kathmandu', 'Australia/Lord_Howe']]) {
    const periods = zones.flatMap(at);
    const pieces = recountPieces(periods);
    for (let i = 1; i < pieces.length; i++) t.equal(pieces[i].from.getTime(), pieces[i - 1].to.getTime(), 'contiguous');
    for (const p of periods) {
      const inside = pieces.filter((x) => x.from >= p.from && x.to <= p.to);
      const covered = inside.reduce((ms, x) => ms + (x.to.getTime() - x.from.getTime()), 0);
      t.equal(covered, p.to.getTime() - p.from.getTime(), `${p.zone} ${p.kind}: covered by whole pieces`);
      t.notOk(pieces.some((x) => x.from < p.to && x.to > p.from && !(x.from >= p.from && x.to <= p.to)), `${p.zone} ${p.kind}: no piece straddles it`);
    }
  }
});

eachDb(t, '32,768 tenants in two zones: every recount read covers them all, no list of ids (SQLite takes at most 32,766 bound variables)', async (t, { knex, db }) => {
  const reader = openSqliteReader(db.url);
  t.teardown(() => reader?.close());
  const ny = await addTenant(knex, { timezone: 'America/New_York' });
  const rows = Array.from({ length: 32_767 }, (_, i) => ({ name: `租户${i}`, status: 'active', timezone: 'Asia/Shanghai' }));
  for (let i = 0; i < rows.length; i += 400) await knex('tenants').insert(rows.slice(i, i + 400)); // SQLite: 500 SELECTs at most in one compound
  const last: { id: unknown } | undefined = await knex('tenants').where({ timezone: 'Asia/Shanghai' }).orderBy('id', 'desc').first('id');
  const shanghai = Number(last?.id);
  await addCdrs(knex, [
    { tenant_id: shanghai, started_at: '2026-11-20T01:00:00Z', cost: '0.1500' }, // Nov 20 in Shanghai
    { tenant_id: shanghai, started_at: '2026-11-19T15:00:00Z', cost: '0.2500' }, // Nov 19 in Shanghai: this month, not today
    { tenant_id: ny, started_at: '2026-11-19T15:00:00Z', cost: '0.3000' }, // Nov 19 10:00 in New York: today there
  ]);
  const r = await runCaps(knex, NOW, log, undefined, reader);
  t.equal(r.tenants, 32_768);
  t.same(await usage(knex, shanghai, 'day', '2026-11-20'), { calls: 1, spend: '0.1500', excess: 0 });
  t.same(await usage(knex, shanghai, 'month', '2026-11-01'), { calls: 2, spend: '0.4000', excess: 0 });
  t.same(await usage(knex, ny, 'day', '2026-11-19'), { calls: 1, spend: '0.3000', excess: 0 });
  t.same(await usage(knex, ny, 'month', '2026-11-01'), { calls: 1, spend: '0.3000', excess: 0 });
  t.equal(r.corrected, 4, 'the four rows with calls, and no other tenant\'s');
});

eachDb(t, 'published live calls read in pages (SQLite\'s default): each once, ended and stale ones left out, the event loop turning between pages', async (t, { knex, target }) => {
  const tenant = await addTenant(knex, {});
  const seen = toDbTimestamp(new Date(NOW.getTime() - 20_000));
  const n = 2 * LIVE_CALLS_PAGE_ROWS + 3;
  const rows = Array.from({ length: n }, (_, i) => ({ call_uuid: `live-${i}`, node: i % 2 ? 'n1' : 'n2', tenant_id: tenant, started_at: seen, admitted: 1, seen_at: seen }));
  rows.push({ call_uuid: 'stale', node: 'gone', tenant_id: tenant, started_at: seen, admitted: 1, seen_at: toDbTimestamp(new Date(NOW.getTime() - 4 * 60_000)) });
  for (let i = 0; i < rows.length; i += 200) await knex('live_calls').insert(rows.slice(i, i + 200));
  await addCdrs(knex, [{ tenant_id: tenant, started_at: NOW, call_uuid: 'live-7' }, { tenant_id: tenant, started_at: NOW, call_uuid: `live-${LIVE_CALLS_PAGE_ROWS + 1}` }]);
  const want = rows.map((r) => r.call_uuid).filter((u) => u !== 'stale' && u !== 'live-7' && u !== `live-${LIVE_CALLS_PAGE_ROWS + 1}`).sort();
  const { result: paged, turns } = await turnsDuring(() => publishedLiveCalls(knex, NOW, { paged: true }));
  t.same(paged.map((c) => c.uuid).sort(), want, `${want.length} calls, each once; the ended (a CDR) and the stale left out`);
  t.ok(turns >= 2, `the event loop turned between the pages (${turns} turns)`);
  const { result: once, turns: none } = await turnsDuring(() => publishedLiveCalls(knex, NOW, { paged: false }));
  t.same(once.map((c) => c.uuid).sort(), want, 'one statement: the same calls');
  if (target === 'sqlite') t.equal(none, 0, 'and no turn of the event loop on SQLite (what runCaps on knex\'s connection relies on)');
  t.same((await publishedLiveCalls(knex, NOW)).map((c) => c.uuid).sort(), want, `the default (${target === 'sqlite' ? 'pages' : 'one statement'}): the same calls`);
});

eachDb(t, 'every tenant and usage row read in pages, the event loop turning between them and through the tenants; the answers unchanged', async (t, { knex, db }) => {
  const reader = openSqliteReader(db.url);
  t.teardown(() => reader?.close());
  const rows = Array.from({ length: 2 * CAPS_PAGE_ROWS + 5 }, (_, i) => ({ name: `租户${i}`, status: 'active', timezone: 'Asia/Shanghai', max_calls_day: 3 }));
  for (let i = 0; i < rows.length; i += 400) await knex('tenants').insert(rows.slice(i, i + 400));
  const ids: number[] = (await knex('tenants').orderBy('id').select('id')).map((r: { id: number }) => r.id);
  const [first, middle, last] = [ids[0], ids[CAPS_PAGE_ROWS + 1], ids[ids.length - 1]];
  // Usage drifted for three tenants, one in each page; the last has reached its cap.
  await setUsage(knex, first, 'day', '2026-11-20', 9, '0');
  await setUsage(knex, middle, 'day', '2026-11-20', 1, '0');
  await addCdrs(knex, Array.from({ length: 3 }, () => ({ tenant_id: last, started_at: new Date('2026-11-20T01:00:00Z') })));
  const { result: r, turns } = await turnsDuring(() => runCaps(knex, NOW, log, undefined, reader));
  t.equal(r.tenants, rows.length);
  t.ok(turns >= 4, `the event loop turned (${turns} turns): between the pages of tenants, and through the tenants`);
  t.same(await usage(knex, first, 'day', '2026-11-20'), { calls: 9, spend: '0.0000', excess: 9 }, 'a count above the recount noted, not removed (first run)');
  t.same(await usage(knex, middle, 'day', '2026-11-20'), { calls: 1, spend: '0.0000', excess: 1 });
  t.same(await usage(knex, last, 'day', '2026-11-20'), { calls: 3, spend: '0.0000', excess: 0 }, 'the last page\'s tenant recounted');
  t.equal(r.capped, 2, 'the first (9 calls stand until a second run) and the last are capped');
});

eachDb(t, 'a month of 12,000 CDRs recounted: what one statement gives; on SQLite with a reader in slices, with the event loop turning between them', async (t, { knex, target, db }) => {
  const reader = openSqliteReader(db.url);
  t.teardown(() => reader?.close());
  t.equal(reader === null, target === 'mariadb', 'a reader for the SQLite file alone');
  const [a, b] = [await addTenant(knex, {}), await addTenant(knex, {})];
  const from = new Date('2026-11-30T16:00:00.000Z'); // December in Shanghai
  const to = new Date('2026-12-31T16:00:00.000Z');
  const specs: Parameters<typeof addCdrs>[1] = [];
  const want = new Map([[a, { calls: 0, units: 0 }], [b, { calls: 0, units: 0 }]]);
  const outcomes = ['answered', 'busy', 'capped', 'blocked', 'no_answer'] as const;
  const add = (tenant: number | null, at: Date, i: number, counted: boolean): void => {
    const outcome = outcomes[i % outcomes.length];
    const cost = `0.${String(i % 10_000).padStart(4, '0')}`;
    specs.push({ tenant_id: tenant, started_at: at, outcome, cost });
    const sum = tenant === null || !counted ? undefined : want.get(tenant);
    if (!sum) return;
    sum.units += i % 10_000;
    if (outcome !== 'capped' && outcome !== 'blocked') sum.calls++;
  };
  // More rows than a slice with the very same started_at (a replayed batch): one slice of their own.
  const same = new Date('2026-12-02T03:04:05.678Z');
  for (let i = 0; i < SQLITE_RECOUNT_SLICE_ROWS + 7; i++) add(i % 2 ? a : b, same, i, true);
  for (let i = 0; i < 7_000; i++) add([a, b, null][i % 3] ?? null, new Date(from.getTime() + Math.floor((i * (to.getTime() - from.getTime())) / 7_000)), i, true);
  add(a, new Date(from.getTime() - 1), 1, false); // before the range
  add(a, to, 2, false); // its end is not in it
  for (let i = 0; i < specs.length; i += 500) await addCdrs(knex, specs.slice(i, i + 500));

  // A read transaction, as runCaps holds one: the slices are one snapshot.
  reader?.exec('BEGIN');
  const { result: got, turns } = await turnsDuring(() => cdrTotals(knex, from, to, undefined, reader));
  for (const [tenant, sum] of want) t.same(got.get(tenant), { calls: sum.calls, spend: money(sum.units) }, `tenant ${tenant}: calls and spend`);
  t.equal(got.size, 2, 'no tenant but the two (rows without a tenant are no one\'s)');
  if (target === 'sqlite') t.ok(turns >= 2, `the event loop turned between the slices (${turns} turns)`);
  const only = await cdrTotals(knex, from, to, [b], reader);
  t.same([...only.keys()], [b], 'one tenant asked: that one alone');
  t.same(only.get(b), got.get(b));
  reader?.exec('COMMIT');
  t.same(await cdrTotals(knex, from, to), got, 'one statement on knex\'s connection gives the same');
  if (reader) await t.rejects(cdrTotals(knex, from, to, undefined, reader), /must be in a read transaction/, 'a reader outside a transaction is refused: its slices would be snapshots of their own');
});

eachDb(t, 'the recount and the live calls are one snapshot: a call whose CDR commits during the recount is counted once, not lost', async (t, { knex, db, target }) => {
  // SQLite: on a reader of its own, the CDRs in slices. MariaDB: a REPEATABLE READ transaction.
  const reader = openSqliteReader(db.url);
  t.teardown(() => reader?.close());
  const tenant = await addTenant(knex, {});
  // Today in Shanghai began at 2026-11-19T16:00Z. More CDRs than a slice, all after the call below.
  const first = Date.parse('2026-11-19T17:00:00.000Z');
  const specs = Array.from({ length: SQLITE_RECOUNT_SLICE_ROWS + 10 }, (_, i) => ({ tenant_id: tenant, started_at: new Date(first + i * 1000), cost: '0' }));
  for (let i = 0; i < specs.length; i += 500) await addCdrs(knex, specs.slice(i, i + 500));
  // A call admitted at 16:00:01, still live (published), which no one answers: it will cost nothing.
  const startedAt = '2026-11-19 16:00:01.000';
  await knex('live_calls').insert({ call_uuid: 'ends-mid-recount', node: 'n1', tenant_id: tenant, started_at: startedAt, admitted: 1, seen_at: toDbTimestamp(new Date(NOW.getTime() - 20_000)) });
  const calls = specs.length + 1;
  await setUsage(knex, tenant, 'day', '2026-11-20', calls, '0');
  await setUsage(knex, tenant, 'month', '2026-11-01', calls, '0');

  // At the recount's first turn, the call's CDR is written and its live row goes, in one
  // transaction, as a CDR batch does (src/cdr/batch.ts). On SQLite its started_at is in the slice
  // already read (knex and tarn on better-sqlite3 need no turn: BEGIN and that slice come first).
  let committedDuringRecount: boolean | null = null;
  const written = new Promise<void>((resolve, reject) => {
    setImmediate(() => {
      knex
        .transaction(async (trx) => {
          await addCdrs(trx, [{ tenant_id: tenant, started_at: new Date('2026-11-19T16:00:01.000Z'), call_uuid: 'ends-mid-recount', outcome: 'no_answer', admitted: 1, cost: '0' }]);
          await trx('live_calls').where({ call_uuid: 'ends-mid-recount' }).delete();
        })
        .then(() => {
          committedDuringRecount = reader?.inTransaction ?? null;
          resolve();
        }, reject);
    });
  });
  const r = await runCaps(knex, NOW, log, undefined, reader);
  await written;
  if (target === 'sqlite') t.equal(committedDuringRecount, true, 'committed while the recount\'s read transaction was open');
  t.same(await knex('cdrs').where({ call_uuid: 'ends-mid-recount' }).pluck('outcome'), ['no_answer'], 'it is in the database');
  t.same(await knex('live_calls').where({ call_uuid: 'ends-mid-recount' }).pluck('call_uuid'), [], 'and its live row is gone');
  t.same(await usage(knex, tenant, 'day', '2026-11-20'), { calls, spend: '0.0000', excess: 0 }, 'day: counted once (live, or by its CDR), nothing noted as missing');
  t.same(await usage(knex, tenant, 'month', '2026-11-01'), { calls, spend: '0.0000', excess: 0 }, 'month: the same');
  t.equal(r.corrected, 0, 'nothing to correct');
  t.notOk(reader?.inTransaction, 'the read transaction ended with the run');
});

/** A fresh SQLite test database and a reader of its file, both gone when `t` ends. */
async function sqliteWithReader(t: Test): Promise<{ db: TestDb; reader: SqliteReader }> {
  const db = await dbTargets().find((d) => d.name === 'sqlite')!.create();
  t.teardown(() => db.destroy());
  const reader = openSqliteReader(db.url);
  if (!reader) throw new Error('no reader for the SQLite file');
  t.teardown(() => reader.close());
  return { db, reader };
}

t.test('SQLite: the live calls\' pages on a reader in its read transaction are one snapshot: a CDR committed between two pages loses no call', async (t) => {
  const { db, reader } = await sqliteWithReader(t);
  const knex = db.knex;
  const tenant = await addTenant(knex, {});
  const seen = toDbTimestamp(new Date(NOW.getTime() - 20_000));
  const rows = Array.from({ length: 2 * LIVE_CALLS_PAGE_ROWS + 3 }, (_, i) => ({ call_uuid: `live-${i}`, node: 'n1', tenant_id: tenant, started_at: seen, admitted: 1, seen_at: seen }));
  for (let i = 0; i < rows.length; i += 200) await knex('live_calls').insert(rows.slice(i, i + 200));
  const all = rows.map((r) => r.call_uuid).sort();
  const [inTransaction, outside] = [`live-${LIVE_CALLS_PAGE_ROWS + 2}`, `live-${LIVE_CALLS_PAGE_ROWS + 3}`];

  const inSnapshot = await inReadTransaction(reader, () => publishedLiveCalls(knex, NOW, { reader: new BeforeSecondRead(reader, commitCallEnd(db.url, knex, tenant, inTransaction)), paged: true }));
  t.same(inSnapshot.map((c) => c.uuid).sort(), all, 'every call live when the first page was read, the one that ended before the second too');
  t.same(await knex('live_calls').where({ call_uuid: inTransaction }).pluck('call_uuid'), [], 'its live row was deleted between the pages');
  t.same(await knex('cdrs').where({ call_uuid: inTransaction }).pluck('call_uuid'), [inTransaction], 'and its CDR written');

  // What the snapshot prevents: the same pages outside a read transaction lose such a call.
  const pagesAlone = await publishedLiveCalls(knex, NOW, { reader: new BeforeSecondRead(reader, commitCallEnd(db.url, knex, tenant, outside)), paged: true });
  t.same(pagesAlone.map((c) => c.uuid).sort(), all.filter((u) => u !== inTransaction && u !== outside), 'without the transaction the call that ended between the pages is in neither');
});

/**
 * What a CDR batch commits when `uuid` ends (src/cdr/batch.ts: its CDR and the delete of its live
 * row, one transaction), committed at once on a connection of its own.
 */
function commitCallEnd(url: string, knex: Knex, tenant: number, uuid: string): () => void {
  return () => {
    const file = sqliteFile(url);
    if (file === null) throw new Error('not an SQLite file');
    const writer = new Database(file);
    try {
      const insert = knex('cdrs').insert(cdrRow({ tenant_id: tenant, started_at: NOW, call_uuid: uuid })).toSQL().toNative();
      const remove = knex('live_calls').where({ call_uuid: uuid }).delete().toSQL().toNative();
      writer.exec('BEGIN IMMEDIATE');
      writer.prepare(insert.sql).run(...insert.bindings);
      writer.prepare(remove.sql).run(...remove.bindings);
      writer.exec('COMMIT');
    } finally {
      writer.close();
    }
  };
}

/**
 * A reader that runs `beforeSecond` just before its second statement: a commit of another
 * connection between two pages, or a failure, with no race with the event loop (a class:
 * eslint.config.mjs, no accessors in literals).
 */
class BeforeSecondRead implements SqliteReader {
  private reads = 0;
  constructor(
    private readonly reader: SqliteReader,
    private readonly beforeSecond: () => void,
  ) {}
  all<T>(sql: string, bindings: readonly unknown[]): T[] {
    if (++this.reads === 2) this.beforeSecond();
    return this.reader.all<T>(sql, bindings);
  }
  exec(sql: string): void {
    this.reader.exec(sql);
  }
  get inTransaction(): boolean {
    return this.reader.inTransaction;
  }
  close(): void {
    this.reader.close();
  }
}

t.test('SQLite: a recount read that fails ends its read transaction and reports its own error', async (t) => {
  const { db, reader } = await sqliteWithReader(t);
  const tenant = await addTenant(db.knex, {});
  await t.rejects(runCaps(db.knex, NOW, log, undefined, new BeforeSecondRead(reader, () => {
    throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
  })), { code: 'SQLITE_IOERR', message: 'disk I/O error' }, 'the read\'s own error');
  t.notOk(reader.inTransaction, 'no read transaction left open to pin the WAL');
  t.equal(await usage(db.knex, tenant, 'day', '2026-11-20'), null, 'nothing corrected from a recount that did not finish');
});
