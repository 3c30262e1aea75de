/**
 * Callers answered recently, in memory (src/calls/answered-callers.ts) and kept up to date from
 * `cdrs` (answered-callers-feed.ts): "nobody answered" is never said of a caller the table has an
 * answer for within the window, whoever wrote the row and however late its transaction
 * committed; it is not said at all while the copy is not current or for a window it does not
 * cover. The feed runs against real SQLite and MariaDB.
 */
import t from 'tap';
import pino from 'pino';
import { AnsweredCallers } from '../../src/calls/answered-callers';
import { ANCHOR, ANCHOR_SQLITE, ANSWER_MARGIN_MS, AnsweredCallersFeed, mergeHoles } from '../../src/calls/answered-callers-feed';
import { lastAnsweredBy } from '../../src/calls/call-state';
import { rawRows, toDbTimestamp } from '../../src/db/connect';
import { withDatabases } from '../helpers/db';

const HOUR = 3_600_000;
const NOW = Date.parse('2026-12-02T06:30:00Z');
const log = pino({ level: 'silent' });

t.test('the filters: no "nobody" for a caller added within the window; windows they cannot answer', async (t) => {
  const index = new AnsweredCallers({ hours: 25, bitsPerHour: 1 << 20 });
  t.notOk(index.answeredNone(1, '13900000000', NOW - HOUR, NOW), 'before the first load: cannot tell');
  index.coverFrom(NOW - 25 * HOUR);
  // A deterministic spread of 20,000 answers over the 25 hours, 4 tenants.
  const added: Array<[number, string, number]> = [];
  let seed = 7;
  const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 20_000; i++) {
    const entry: [number, string, number] = [1 + (i % 4), `139${String(Math.floor(rand() * 1e8)).padStart(8, '0')}`, NOW - Math.floor(rand() * 25 * HOUR)];
    added.push(entry);
    index.add(...entry);
  }
  let wrong = 0;
  for (const [tenant, caller, at] of added) {
    if (index.answeredNone(tenant, caller, at - 1, NOW)) wrong++;
    if (index.answeredNone(tenant, caller, at - HOUR + 1, NOW)) wrong++;
  }
  t.equal(wrong, 0, 'never "nobody" for an answer at or after the window start');
  let maybe = 0;
  for (let i = 0; i < 10_000; i++) if (!index.answeredNone(9, `13${i}`, NOW - 24 * HOUR, NOW)) maybe++;
  t.ok(maybe < 200, `callers never added: ${maybe} of 10,000 "perhaps" (the database is asked for them)`);

  const [tenant, caller] = added[0];
  t.notOk(index.answeredNone(tenant, caller, NOW - 26 * HOUR, NOW), 'a window longer than the hours kept: cannot tell');

  const pruned = new AnsweredCallers({ hours: 2, bitsPerHour: 1024 });
  pruned.add(1, 'a', NOW - 5 * HOUR);
  pruned.add(1, 'b', NOW - HOUR);
  pruned.coverFrom(NOW - 2 * HOUR);
  pruned.prune(NOW);
  t.equal(pruned.hoursHeld, 1, 'hours older than the window are dropped');
  t.notOk(pruned.answeredNone(1, 'b', NOW - HOUR - 1, NOW), 'the hour kept still answers');
  t.throws(() => new AnsweredCallers({ hours: 0, bitsPerHour: 1024 }), RangeError);
});

withDatabases(t, async (t, knex, target) => {
  let now = NOW;
  const clock = (): number => now;
  let n = 0;
  const cdr = (tenant: number, caller: string, answeredAgoMs: number | null, extra: Record<string, unknown> = {}): Record<string, unknown> => {
    n++;
    const at = new Date(NOW - (answeredAgoMs ?? HOUR));
    return {
      call_uuid: `ac-${target}-${n}`, started_at: toDbTimestamp(new Date(at.getTime() - 60_000)), outcome: answeredAgoMs === null ? 'no_answer' : 'answered',
      tenant_id: tenant, caller, answered_at: answeredAgoMs === null ? null : toDbTimestamp(at), answered_by: answeredAgoMs === null ? null : '13800000001', ...extra,
    };
  };
  // Answered long after it arrived (a queue), inside the load's margin; its id is the lowest, so
  // only the margin brings it into the load.
  await knex('cdrs').insert(cdr(1, '13900000005', 3 * HOUR, { started_at: toDbTimestamp(new Date(NOW - 3 * HOUR - ANSWER_MARGIN_MS + 60_000)) }));
  // Older rows first: ids follow the inserts, as in production.
  await knex('cdrs').insert(cdr(1, '13900000040', 40 * HOUR));
  await knex('cdrs').insert([cdr(1, '13900000002', 2 * HOUR), cdr(1, '13900000003', null), cdr(2, '13900000020', 20 * HOUR)]);

  const feed = new AnsweredCallersFeed(knex, { hours: 25, bitsPerHour: 1 << 16, pollMs: 1000, recheckMs: 5000, lookbackMs: 60_000, pageRows: 2, holesPerRead: 1 }, log, clock);
  const since = new Date(NOW - 24 * HOUR);
  t.notOk(feed.answeredNone(1, '13900000099', since), 'before the load: ask the database');
  t.equal(feed.readAgeMs(), null, 'not started: no read age');
  await feed.readNow();
  t.ok(feed.current(), 'loaded');
  t.equal(feed.readAgeMs(), 0, 'just loaded: read age 0');
  t.equal(feed.loadedRows, 3, 'the load added the three answers within the hours, each once (the 40-hour one is outside)');
  const none = async (tenant: number, caller: string): Promise<boolean> => {
    const said = feed.answeredNone(tenant, caller, since);
    // Never "nobody" where the database has an answer.
    if (said) t.equal(await lastAnsweredBy(knex, tenant, caller, since), null, `the database agrees for ${tenant}/${caller}`);
    return said;
  };
  t.notOk(await none(1, '13900000002'), 'answered 2 h ago: remembered (ask the database)');
  t.notOk(await none(2, '13900000020'), 'answered 20 h ago');
  t.notOk(await none(1, '13900000005'), 'answered 3 h ago, arrived a day before (within the margin)');
  t.ok(await none(1, '13900000003'), 'not answered: nobody');
  t.ok(await none(1, '13900000040'), 'answered 40 h ago: outside the window');
  t.ok(await none(1, '13900000099'), 'never called: nobody');
  t.ok(await none(1, '13900000020'), 'another tenant\'s answer is not this one\'s');

  // An answer whose time cannot be read: "perhaps" (ask the database), never "nobody".
  feed.noteCdr({ tenant_id: 4, caller: '13900000500', answered_at: 'not a time', answered_by: '13800000001' });
  t.notOk(feed.answeredNone(4, '13900000500', since), 'an unreadable answer time: ask the database');
  feed.noteCdr({ tenant_id: 4, caller: '13900000501', answered_at: new Date(Number.NaN), answered_by: '13800000001' });
  t.notOk(feed.answeredNone(4, '13900000501', since), 'a zero date (an invalid Date): ask the database');

  // Another daemon writes: unseen until the next read.
  await knex('cdrs').insert(cdr(1, '13900000006', 10 * 60_000));
  now += 1000;
  await feed.readNow();
  t.notOk(await none(1, '13900000006'), 'a row another daemon wrote is read');

  // A transaction that committed after a later one: its id is below the highest read.
  const [{ max }] = await knex('cdrs').max({ max: 'id' });
  await knex('cdrs').insert({ ...cdr(1, '13900000007', 5 * 60_000), id: Number(max) + 50 });
  now += 1000;
  await feed.readNow();
  t.notOk(await none(1, '13900000007'), 'read');
  await knex('cdrs').insert({ ...cdr(1, '13900000008', 60_000), id: Number(max) + 10 });
  now += 1000;
  await feed.readNow();
  t.ok(feed.answeredNone(1, '13900000008', since), 'a late commit below the highest id is not in the next read…');
  now += 5000;
  await feed.readNow();
  t.notOk(await none(1, '13900000008'), '…but in the look-back that follows');
  t.ok(feed.stats.rechecks >= 2, `look-backs: ${feed.stats.rechecks}`);

  // The holes of one read beyond holesPerRead (1) are merged: rows committed late into any of them are still found.
  const [{ max: top }] = await knex('cdrs').max({ max: 'id' });
  for (const k of [10, 20, 30, 40]) await knex('cdrs').insert({ ...cdr(3, `1390000010${k / 10}`, null), id: Number(top) + k });
  now += 1000;
  await feed.readNow();
  for (const k of [5, 15, 25, 35]) await knex('cdrs').insert({ ...cdr(3, `1390000020${k}`, 60_000), id: Number(top) + k });
  now += 5000;
  await feed.readNow();
  for (const k of [5, 15, 25, 35]) t.notOk(await none(3, `1390000020${k}`), `late row ${k} in a merged hole: read`);

  // A hole older than the look-back is forgotten: a row committed into it later is not read.
  now += 61_000;
  await feed.readNow();
  await knex('cdrs').insert({ ...cdr(3, '13900000300', 60_000), id: Number(top) + 1 });
  now += 5000;
  await feed.readNow();
  t.ok(feed.answeredNone(3, '13900000300', since), 'a commit later than the look-back is missed (as documented)');

  // A database down for longer than the look-back: the holes stay open until it answers.
  const [{ max: top2 }] = await knex('cdrs').max({ max: 'id' });
  await knex('cdrs').insert({ ...cdr(3, '13900000400', null), id: Number(top2) + 5 });
  now += 1000;
  await feed.readNow();
  const moved = target === 'sqlite' ? 'ALTER TABLE cdrs RENAME TO cdrs_away' : 'RENAME TABLE cdrs TO cdrs_away';
  const back = target === 'sqlite' ? 'ALTER TABLE cdrs_away RENAME TO cdrs' : 'RENAME TABLE cdrs_away TO cdrs';
  await knex.raw(moved);
  const failures = feed.stats.failures;
  for (let i = 0; i < 4; i++) {
    now += 30_000;
    await feed.readNow();
  }
  t.equal(feed.stats.failures, failures + 4, 'reads fail while the table is away');
  t.notOk(feed.current(), 'not current meanwhile');
  t.equal(feed.readAgeMs(), 120_000, 'the read age counts from the last read that succeeded');
  await knex('cdrs_away').insert({ ...cdr(3, '13900000401', 60_000), id: Number(top2) + 2 });
  await knex.raw(back);
  now += 1000;
  await feed.readNow();
  t.ok(feed.current(), 'current again');
  t.equal(feed.readAgeMs(), 0, 'read age back to 0');
  t.notOk(await none(3, '13900000401'), 'a late commit into a hole seen before the outage is read after it');

  // A copy whose reads stopped is not trusted; until then it is.
  now += 3 * 1000 + 1000;
  t.ok(feed.current(), 'a read 3 × poll + 1 s ago: still current');
  now += 1;
  t.notOk(feed.current(), 'no read for 3 × poll + 1 s: not current');
  t.notOk(feed.answeredNone(1, '13900000099', since), 'not current: ask the database');
  now += 1;
  await feed.readNow();
  t.ok(feed.current(), 'current again after a read');
});

t.test('the load\'s first statement: on SQLite a range of the started_at index, not a walk over every older row', async (t) => {
  withDatabases(t, async (t, knex, target) => {
    if (target !== 'sqlite') return;
    const plan = async (sql: string): Promise<string> =>
      (await rawRows<{ detail: string }>(knex, `EXPLAIN QUERY PLAN ${sql}`, ['2026-12-02 00:00:00.000'])).map((r) => r.detail).join(' | ');
    t.match(await plan(ANCHOR_SQLITE), /USING COVERING INDEX \S+ \(started_at>\?\)/, 'the index on started_at');
    t.notMatch(await plan(ANCHOR), /started_at/, 'what MIN(id) is planned as (why the SQLite text differs)');
    // The same answer either way.
    const at = (ms: number): string => toDbTimestamp(new Date(NOW - ms));
    await knex('cdrs').insert([HOUR * 30, HOUR * 20, HOUR * 10].map((ago, i) => ({ call_uuid: `anchor-${i}`, started_at: at(ago), outcome: 'answered', tenant_id: 1, caller: '1390000000' + i })));
    for (const sql of [ANCHOR, ANCHOR_SQLITE]) {
      const [{ anchor }] = await rawRows<{ anchor: number }>(knex, sql, [at(HOUR * 25)]);
      const [{ id }] = await rawRows<{ id: number }>(knex, 'SELECT id FROM cdrs WHERE call_uuid = ?', ['anchor-1']);
      t.equal(Number(anchor), Number(id), sql);
    }
  });
});

t.test('mergeHoles: at most max, every id of every hole still covered, the younger time kept', async (t) => {
  const holes = Array.from({ length: 9 }, (_, i) => ({ lo: i * 10 + 1, hi: i * 10 + 3, seenAt: i }));
  const merged = mergeHoles(holes, 4);
  t.ok(merged.length <= 4, `${merged.length} holes`);
  for (const h of holes) t.ok(merged.some((m) => m.lo <= h.lo && m.hi >= h.hi && m.seenAt >= h.seenAt), `hole ${h.lo}-${h.hi} covered`);
  t.same(mergeHoles(holes.slice(0, 2), 4), holes.slice(0, 2), 'under the bound: unchanged');
});

t.test('a feed whose database is gone keeps trying and is never trusted; stop() ends it', async (t) => {
  const { createKnex } = await import('../../src/db/connect');
  const dead = createKnex('mysql://root@127.0.0.1:1/none', { poolMax: 1, acquireTimeoutMs: 500 });
  t.teardown(() => dead.destroy());
  // The read age by a hand clock: a real timer counts from the loop's cached time, before start().
  let now = Date.now();
  const feed = new AnsweredCallersFeed(dead, { hours: 25, bitsPerHour: 1024, pollMs: 50 }, log, () => now);
  await feed.readNow();
  await feed.readNow();
  t.equal(feed.stats.failures, 2, 'each read fails, none throws');
  t.notOk(feed.current(), 'not current');
  t.notOk(feed.answeredNone(1, '13900000099', new Date(Date.now() - HOUR)), 'asks the database');
  t.equal(feed.readAgeMs(), null, 'not started: no read age');
  const failuresBefore = feed.stats.failures;
  feed.start();
  now += 150;
  const deadline = Date.now() + 10_000;
  while (feed.stats.failures === failuresBefore && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.ok(feed.stats.failures > failuresBefore, 'started: it tried to load again');
  t.equal(feed.readAgeMs(), 150, 'never loaded, its reads failing: the read age counts from start()');
  await feed.stop();
  t.pass('start() then stop() ends');
  t.equal(feed.readAgeMs(), null, 'stopped: no read age (a draining daemon stopped reading on purpose)');
});
