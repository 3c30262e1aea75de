/**
 * Caller memory with the answered callers in memory, through a real daemon on MariaDB and on
 * SQLite: a first caller rings in the normal order without asking the database (counted answered_from="memory"),
 * a caller who calls straight back rings the phone that answered, before that CDR's batch is even
 * read back, and a caller another daemon's CDR remembers rings that phone once the feed has read
 * it. With CALLER_MEMORY_INDEX_HOURS=0 every lookup asks the database.
 * Assumes of FreeSWITCH only what the fake peer plays: a bridge's first leg rings first.
 */
import t from 'tap';
import { placeCall } from '../peer/fake-freeswitch';
import { dbTargets } from '../helpers/db';
import { fetchMetrics, startTestDaemon, type TestDaemon } from '../helpers/daemon';
import { toDbTimestamp } from '../../src/db/connect';
import { until } from '../helpers/wait';

async function lookups(d: TestDaemon): Promise<Record<string, number>> {
  const text = await fetchMetrics(d);
  const out: Record<string, number> = { memory: 0, database: 0 };
  for (const m of text.matchAll(/^hotline_caller_memory_lookups_total\{answered_from="([a-z]+)"\} (\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

async function readAgeSeconds(d: TestDaemon): Promise<number> {
  const text = await fetchMetrics(d);
  const m = /^hotline_caller_memory_index_read_age_seconds ([0-9.e+-]+)$/m.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

const BUSY_THEN_SECOND = { '13800000001': { result: 'busy' as const }, '13800000002': { result: 'answer' as const, talkMs: 20 } };

for (const target of dbTargets()) {
  t.test(target.name, async (t) => {
    const db = await target.create({ migrate: false });
    // The feed reads once at start and then only when the test says (readNow): what it knows
    // between reads is what the daemon itself added.
    // The database's lookups get 30 s, not the 1 s calls have: a lookup given up on a loaded
    // machine rings in the normal order, and the order is what this test reads.
    const d = await startTestDaemon(db.url, { callerMemory: { indexPollMs: 600_000 }, admission: { queryTimeoutMs: 30_000 } });
    t.teardown(async () => {
      await d.stop();
      await db.destroy();
    });
    const feed = d.daemon.calls.answeredCallers;
    if (!feed) throw new Error('the answered callers are not kept in memory');
    await until('the copy is loaded', () => feed.current());
    // No read since the load (pollMs 600 s): its age grows, and /metrics says so.
    await until('a second without a read', () => (feed.readAgeMs() ?? 0) >= 1000);
    const age = await readAgeSeconds(d);
    t.ok(age >= 1 && age < 60, `the index's read age is exported (${age} s)`);

    const first = await placeCall(d.port, { caller: '13912340001', destination: '4001012345', legs: BUSY_THEN_SECOND });
    t.equal(first.bridges[0].number, '13800000001', 'a first caller rings in the normal order');
    t.same(await lookups(d), { memory: 1, database: 0 }, 'asked of memory, not of the database');

    // Straight back: the CDR is in the table, but the feed has not read it (it added it itself).
    await d.cdr(first.uuid);
    const again = await placeCall(d.port, { caller: '13912340001', destination: '4001012345', defaultLeg: { result: 'answer', talkMs: 20 } });
    t.equal(again.bridges[0].number, '13800000002', 'the phone that answered last time rings first');
    t.same(await lookups(d), { memory: 1, database: 1 }, 'a caller answered recently is asked of the database');

    // Another daemon's CDR (written straight into the table).
    const at = new Date(Date.now() - 60_000);
    await d.knex('cdrs').insert({
      call_uuid: 'elsewhere-1', started_at: toDbTimestamp(at), outcome: 'answered', tenant_id: 1, caller: '13912340002',
      answered_at: toDbTimestamp(at), answered_by: '13800000002', node: 'other-node',
    });
    // Nobody answers this one, so its own CDR remembers nothing.
    const before = await placeCall(d.port, { caller: '13912340002', destination: '4001012345', defaultLeg: { result: 'busy' } });
    t.equal(before.bridges[0].number, '13800000001', 'until the feed reads the table, that caller is not known (caller memory lags the table by a read)');
    await feed.readNow();
    const elsewhere = await placeCall(d.port, { caller: '13912340002', destination: '4001012345', defaultLeg: { result: 'answer', talkMs: 20 } });
    t.equal(elsewhere.bridges[0].number, '13800000002', 'a caller another daemon\'s phone answered rings that phone');
  });
}

t.test('CALLER_MEMORY_INDEX_HOURS=0: every lookup asks the database', async (t) => {
  const db = await dbTargets()[1].create({ migrate: false });
  const d = await startTestDaemon(db.url, { callerMemory: { indexHours: 0 } });
  t.teardown(async () => {
    await d.stop();
    await db.destroy();
  });
  t.equal(d.daemon.calls.answeredCallers, null, 'no copy in memory');
  const call = await placeCall(d.port, { caller: '13912340003', destination: '4001012345', defaultLeg: { result: 'answer', talkMs: 20 } });
  t.equal(call.bridges[0].number, '13800000001');
  t.same(await lookups(d), { memory: 0, database: 1 });
});
