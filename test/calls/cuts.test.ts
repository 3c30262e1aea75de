/**
 * Cuts land on time whatever plays: the capture daemon-spend-cut-during-warning-broadcast, run
 * again at real scale against the whole daemon on SQLite and MariaDB. Prepaid tenant with 0.0700
 * left, 0.60/min in 6 s increments (the plan allows 6 s: warn at once, cut 2 s early, at 4 s);
 * the phone answers and would talk 30 s; the warning (capped.wav, 10.4 s as FreeSWITCH played
 * it) is broadcast over the call. The first release cut 10.4 s after answer (a `sendmsg` hangup
 * waited for the broadcast) and left the balance at -0.0500. Now `api uuid_kill` ends it at 4 s.
 * Also: the SIGTERM drain cuts a call mid-prompt at once; a call that ended counts in the next
 * call's plan while its CDR cannot reach the database, on the daemon it ended on and on the next
 * one to start over its spool.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { cutTiming, placeCall, startCall, type CallRecord } from '../peer/fake-freeswitch';
import { until } from '../helpers/wait';
import { dbTargets, type DbTarget } from '../helpers/db';
import { startTestDaemon, tempSqliteUrl, type TestDaemon } from '../helpers/daemon';

type RecordedCommand = CallRecord['commands'][number];

// FreeSWITCH time is real time here (timeScale 1): the daemon's own timers cut the call.
const CAPPED_MS = { '/sounds/hotline/capped.wav': 10_380 };

/** The daemon on `target`, cron off, its demo tenant prepaid with `balance` at 0.60/min in 6 s increments (mobile callers). */
async function prepaidDaemon(t: Test, target: DbTarget, balance: string, overrides: Record<string, unknown> = {}): Promise<TestDaemon> {
  const db = await target.create({ migrate: false });
  const d = await startTestDaemon(db.url, { cron: { enabled: false }, ...overrides });
  t.teardown(async () => {
    await d.stop();
    await db.destroy();
  });
  await d.knex('rates').insert({ tenant_id: 1, call_type: 'mobile', per_minute: '0.6000', increment_s: 6, connect_fee: '0.0000' });
  await d.knex('tenants').where({ id: 1 }).update({ balance, caller_memory_hours: 0 });
  await d.daemon.store.poll();
  return d;
}

for (const target of dbTargets()) {
  t.test(`${target.name}: the prepaid call is cut 4 s after answer, mid-warning; the balance stays above zero`, async (t) => {
    const d = await prepaidDaemon(t, target, '0.0700');
    const c = await placeCall(d.port, {
      caller: '13910009004',
      destination: '4001012345',
      timeScale: 1,
      promptMs: CAPPED_MS,
      legs: { '13800000001': { result: 'answer', ringMs: 200, talkMs: 30_000 } },
    });
    t.equal(c.hangupCause, 'OUTGOING_CALL_BARRED');
    // Measured on the stand-in's own records: when it answered, when the cut command reached it,
    // when the channel went.
    const cut = cutTiming(c);
    t.ok(cut.late >= -50, `cut command ${(cut.late / 1000).toFixed(2)} s after the plan (answer + 4 s): never early`);
    // Within the 2 s guard, so still inside what the balance pays for; a loaded machine's stall
    // can add most of a second to the daemon's own timer, which 1 s left no room for.
    t.ok(cut.late <= 1900, `cut command ${(cut.late / 1000).toFixed(2)} s after the plan (answer + 4 s): inside the 2 s guard`);
    t.ok(cut.landed <= 50, `the channel went ${cut.landed.toFixed(0)} ms after the command reached it, mid-warning`);
    t.match(c.bgapi, [new RegExp(`^uuid_broadcast ${c.uuid} /sounds/hotline/capped\\.wav both$`)], 'warned with uuid_broadcast');
    t.same(c.api, [`uuid_kill ${c.uuid} OUTGOING_CALL_BARRED`], 'cut with api uuid_kill on the call\'s own socket');
    t.notOk(c.commands.some((x) => x.headers['call-command'] === 'hangup'), 'not with a sendmsg hangup (it waits for the broadcast)');
    const cdr = await d.cdr(c.uuid);
    t.ok(Number(cdr.billsec) <= 6, `billsec ${String(cdr.billsec)}: within the first 6 s increment`);
    t.equal(Number(cdr.cost).toFixed(4), '0.0600', 'one 6 s increment, as the plan allowed');
    await d.daemon.cdrs.flush();
    const row: { balance: unknown } | undefined = await d.knex('tenants').where({ id: 1 }).first('balance');
    t.equal(Number(row?.balance).toFixed(4), '0.0100', 'balance 0.0100: never below zero, never more than the plan allowed');
  });
}

for (const target of dbTargets()) {
  t.test(`${target.name}: five calls of one prepaid tenant answered together share its money; the balance ends at zero, not below`, async (t) => {
    // 0.3000 pays five 6 s increments at 0.60/min. Planned one by one, each call took the whole
    // 0.3000 (28 s) and, talking 10 s, was charged 0.12: -0.3000 in all. Planned together, the
    // five can pay one increment each: a sixth would start in the first call's 7th second, so
    // all are cut 2 s before its 6th ends (about 4 s after the first answer), 0.06 each.
    const d = await prepaidDaemon(t, target, '0.3000');
    const calls = await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        placeCall(d.port, {
          caller: `1391000900${n}`,
          destination: '4001012345',
          timeScale: 1,
          promptMs: CAPPED_MS,
          legs: { '13800000001': { result: 'answer', ringMs: 200, talkMs: 10_000 } },
        }),
      ),
    );
    t.same(calls.map((c) => c.hangupCause), Array(5).fill('OUTGOING_CALL_BARRED'), 'all five cut, none talked its 10 s');
    await d.daemon.cdrs.flush();
    const costs = await Promise.all(calls.map(async (c) => Number((await d.cdr(c.uuid)).cost)));
    // One increment each when the five answer within 4 s of the first (always, unless the machine
    // stalls): a later one is cut at its answer, for nothing. Never more than the balance held.
    const charged = costs.reduce((a, b) => a + b, 0);
    t.ok(costs.every((c) => c <= 0.06), `charged ${costs.map((c) => c.toFixed(2)).join(' + ')}: at most one increment each`);
    t.ok(charged <= 0.3, `charged ${charged.toFixed(4)} in all: not more than the 0.3000 the balance held`);
    const row: { balance: unknown } | undefined = await d.knex('tenants').where({ id: 1 }).first('balance');
    t.equal(Number(row?.balance).toFixed(4), (0.3 - charged).toFixed(4), 'the balance is what is left of it: never below zero');
  });
}

t.test('drain time over: a call in the middle of a long prompt is cut at once (api uuid_kill SYSTEM_SHUTDOWN)', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { calls: { drainTimeoutS: 0 } });
  const [menu] = await d.knex('ivr_menus').insert({ tenant_id: 1, name: 'main', digits: 1, timeout_s: 5, max_retries: 2 });
  await d.knex('routing_rules').insert({ tenant_id: 1, priority: 1, percent: 100, action: 'ivr', target_id: menu, enabled: 1 });
  await d.daemon.store.poll();
  // timeScale 1: the greeting and menu prompt play for a real 60 s.
  const call = startCall(d.port, { caller: '13912345678', destination: '4001012345', timeScale: 1, playbackMs: 60_000 });
  // Stopped once a prompt plays (the stand-in got its command), not after a sleep.
  const prompt = (): RecordedCommand | undefined => call.live.commands.find((x) => ['playback', 'play_and_get_digits'].includes(x.headers['execute-app-name'] ?? ''));
  await until('a prompt playing', () => prompt() !== undefined);
  const stopAtFs = call.fsNow();
  const stopping = d.daemon.stop();
  const record = await call.done;
  await stopping;
  t.equal(record.hangupCause, 'SYSTEM_SHUTDOWN');
  t.same(record.api, [`uuid_kill ${record.uuid} SYSTEM_SHUTDOWN`]);
  const kill = record.commands.find((x) => x.line.startsWith('api uuid_kill'));
  const killAt = kill?.atFs ?? Infinity;
  t.ok(killAt - stopAtFs < 1000, `cut command ${(killAt - stopAtFs).toFixed(0)} ms after the drain ended (the stand-in's clock)`);
  t.ok(killAt < (prompt()?.atFs ?? 0) + 60_000, 'mid-prompt: the 60 s prompt was still playing');
  t.ok((record.hungUpAtFs ?? Infinity) - killAt <= 50, 'the channel went as the command reached it');
});

/**
 * The cdrs table renamed back: A's and B's CDRs in the spool are written; A charged one or two
 * increments, B what A left of the 0.1800, and the balance ends at zero.
 */
async function tableBack(t: Test, d: TestDaemon, a: string, b: string): Promise<void> {
  await d.knex.schema.renameTable('cdrs_away', 'cdrs');
  await until('the spooled CDRs written once the table is back', () => d.daemon.cdrs.spoolDepth === 0, 20_000);
  const costs = [Number((await d.cdr(a)).cost), Number((await d.cdr(b)).cost)];
  t.ok(costs[0] >= 0.06 && costs[0] <= 0.12, `A charged ${costs[0].toFixed(4)}`);
  t.equal((costs[0] + costs[1]).toFixed(4), '0.1800', `B charged ${costs[1].toFixed(4)}: what A left of the 0.1800, no more`);
  const row: { balance: unknown } | undefined = await d.knex('tenants').where({ id: 1 }).first('balance');
  t.equal(Number(row?.balance).toFixed(4), '0.0000', 'the balance ends at zero, not below');
}

for (const target of dbTargets()) {
  t.test(`${target.name}: with CDRs not reaching the database, a call that ended 6 s before still counts in the next call's plan`, async (t) => {
    // 0.1800 pays three 6 s increments at 0.60/min. A talks 4 s while the cdrs table is away, so
    // its CDR stays in the spool and the balance still reads 0.1800 when B answers 6 s later.
    // Counting A (its welcome and ring billed too: 0.12), B may spend 0.06 and is cut in its first
    // increment. Before, an ended call counted for 5 s only: B planned from 0.1800, talked its
    // 14 s (0.18) and the balance ended at -0.1200 once A's CDR was written.
    const d = await prepaidDaemon(t, target, '0.1800');
    await d.knex.schema.renameTable('cdrs', 'cdrs_away');
    const call = (caller: string, talkMs: number): ReturnType<typeof placeCall> =>
      placeCall(d.port, { caller, destination: '4001012345', timeScale: 1, promptMs: CAPPED_MS, legs: { '13800000001': { result: 'answer', ringMs: 200, talkMs } } });
    const a = await call('13910009011', 4_000);
    t.equal(a.hangupCause, 'NORMAL_CLEARING', 'A talked its 4 s');
    await new Promise((r) => setTimeout(r, 6_000));
    t.ok(d.daemon.cdrs.spoolDepth >= 1, 'A\'s CDR is still in the spool, not charged');
    const b = await call('13910009012', 14_000);
    t.equal(b.hangupCause, 'OUTGOING_CALL_BARRED', 'B was cut: A\'s cost counted though the balance read did not show it');
    await tableBack(t, d, a.uuid, b.uuid);
  });
}

for (const target of dbTargets()) {
  t.test(`${target.name}: a call whose CDR a stopped daemon left in the spool counts in the plan of the daemon started over it`, async (t) => {
    // As above, with a restart between A and B: the new process's spend groups never saw A end,
    // and the balance still reads 0.1800 while the cdrs table is away. Before, B planned from all
    // of it, talked its 14 s (0.18) and the balance ended at -0.1200 once A's CDR was written.
    const db = await target.create({ migrate: false });
    const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-restart-spool-'));
    let running: TestDaemon | null = null;
    t.teardown(async () => {
      await running?.stop();
      await db.destroy();
      fs.rmSync(spoolDir, { recursive: true, force: true });
    });
    const start = async (): Promise<TestDaemon> => (running = await startTestDaemon(db.url, { cron: { enabled: false }, cdr: { spoolDir } }));
    const first = await start();
    await first.knex('rates').insert({ tenant_id: 1, call_type: 'mobile', per_minute: '0.6000', increment_s: 6, connect_fee: '0.0000' });
    await first.knex('tenants').where({ id: 1 }).update({ balance: '0.1800', caller_memory_hours: 0 });
    await first.daemon.store.poll();
    await first.knex.schema.renameTable('cdrs', 'cdrs_away');
    const call = (d: TestDaemon, caller: string, talkMs: number): ReturnType<typeof placeCall> =>
      placeCall(d.port, { caller, destination: '4001012345', timeScale: 1, promptMs: CAPPED_MS, legs: { '13800000001': { result: 'answer', ringMs: 200, talkMs } } });
    const a = await call(first, '13910009021', 4_000);
    t.equal(a.hangupCause, 'NORMAL_CLEARING', 'A talked its 4 s');
    await first.stop();
    running = null;
    const second = await start();
    t.equal(second.daemon.cdrs.spoolDepth, 1, 'A\'s CDR is in the spool the new daemon replays, not charged');
    const b = await call(second, '13910009022', 14_000);
    t.equal(b.hangupCause, 'OUTGOING_CALL_BARRED', 'B was cut: A\'s cost counted though no group of this daemon saw A end');
    await tableBack(t, second, a.uuid, b.uuid);
  });
}

for (const target of dbTargets()) {
  t.test(`${target.name}: a call whose hang-up FreeSWITCH completes 9 s late still counts in the plan of a call answered meanwhile`, async (t) => {
    // Assumed of FreeSWITCH: a busy one may send CHANNEL_HANGUP_COMPLETE seconds after
    // CHANNEL_HANGUP (its hang-up time and billsec are the hang-up's); the daemon waits for it up
    // to ESL_REPLY_TIMEOUT_MS (12 s here) before it builds the CDR. 0.1800 at 0.60/min; the
    // warning plays 300 ms, so that it does not hold A's bridge: A talks 4 s (0.06) and hangs up
    // about 4.3 s in, its hang-up completed 9 s later; B answers about 12.3 s in, 8 s after A hung
    // up, and reads 0.1800. Counting A, B may spend 0.12 and is cut 2 s before its 12 s end. Before, an
    // ended call counted 5 s from its hang-up: B planned from all of it, talked its 14 s (0.18) and
    // the balance ended at -0.0600.
    const d = await prepaidDaemon(t, target, '0.1800', { esl: { replyTimeoutMs: 12_000 } });
    const call = (caller: string, talkMs: number, hangupCompleteDelayMs = 0): ReturnType<typeof placeCall> =>
      placeCall(d.port, { caller, destination: '4001012345', timeScale: 1, promptMs: { '/sounds/hotline/capped.wav': 300 }, hangupCompleteDelayMs, legs: { '13800000001': { result: 'answer', ringMs: 200, talkMs } } });
    const aCall = call('13910009031', 4_000, 9_000);
    await new Promise((r) => setTimeout(r, 12_000));
    const b = await call('13910009032', 14_000);
    const a = await aCall;
    t.equal(a.hangupCause, 'NORMAL_CLEARING', 'A talked its 4 s');
    t.ok((a.hungUpAtFs ?? Infinity) - (a.answeredAtFs ?? 0) < 6_000, 'A hung up within its first increment, long before B answered');
    t.equal(b.hangupCause, 'OUTGOING_CALL_BARRED', 'B was cut: A counted though it hung up 8 s before B answered');
    const costs = [Number((await d.cdr(a.uuid)).cost), Number((await d.cdr(b.uuid)).cost)];
    await d.daemon.cdrs.flush();
    t.equal(costs[0].toFixed(4), '0.0600', 'A charged one increment');
    t.equal(costs[1].toFixed(4), '0.1200', 'B charged what A left of the 0.1800, no more');
    const row: { balance: unknown } | undefined = await d.knex('tenants').where({ id: 1 }).first('balance');
    t.equal(Number(row?.balance).toFixed(4), '0.0000', 'the balance ends at zero, not below');
  });
}
