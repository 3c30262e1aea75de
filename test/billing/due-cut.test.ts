/**
 * The money is read again just before a call is cut (src/billing/due-cut.ts), by both guards, on
 * SQLite and MariaDB: a top-up that arrives between the decision and the cut saves the call (it
 * is planned again from the new money, and cut when that runs out); a database that fails the
 * re-read does not (the cut goes ahead as planned). Fake clocks drive every timer.
 */
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { FreeSwitchInbound } from '../../src/billing/freeswitch-inbound';
import type { LiveCall } from '../../src/billing/live-calls';
import { LiveCallGuard, type GuardTimerApi } from '../../src/billing/live-guard';
import { readSpendLeft } from '../../src/billing/usage';
import { SpendGuard } from '../../src/calls/spend-guard';
import { createKnex } from '../../src/db/connect';
import { parseMoney, money } from '../../src/domain/money';
import { createLogger } from '../../src/log';
import { FakeInboundFreeSwitch } from '../peer/fake-inbound-freeswitch';
import { sleep } from '../helpers/db';
import { FakeTimers } from '../helpers/fake-timers';
import { addTenant, eachDb } from './helpers';

const log = createLogger('silent');
const NOW = Date.parse('2026-11-21T02:00:00.000Z');

// 0.60/min in 6 s increments: 0.0700 pays 6 s; cut 2 s before: at 4 s, warned at once.
const RATE = { perMinute: parseMoney('0.6000'), incrementS: 6, connectFee: money(0) };

function sessionGuard(knex: Knex, tenant: number, timers: FakeTimers, events: string[]): SpendGuard {
  return new SpendGuard({
    rate: RATE,
    readLeft: () => timers.track(readSpendLeft(knex, tenant, new Date(NOW))),
    warn: async () => void events.push(`warn@${timers.t}`),
    cut: async () => void events.push(`cut@${timers.t}`),
    log,
    timers,
    cutCheckTimeoutMs: 5000,
  });
}

eachDb(t, 'session guard: a top-up between the decision and the cut saves the call until it runs out', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '0.0700' });
  const timers = new FakeTimers();
  const events: string[] = [];
  const guard = sessionGuard(knex, tenant, timers, events);
  t.teardown(() => guard.stop());
  t.same(await guard.answered(), { warnAfterS: 0, cutAfterS: 4 }, 'the decision: cut 4 s after the answer');
  await timers.advanceSettling(0);
  // The top-up lands after the decision: 0.0700 + 0.0500 = 0.1200 pays 12 s → cut at 10 s, warned at 0 (past).
  await knex('tenants').where({ id: tenant }).update({ balance: '0.1200' });
  await timers.advanceSettling(4000);
  t.same(events, ['warn@0'], 'not cut at 4 s: the money read again at the cut says it was topped up');
  await timers.advanceSettling(5999);
  t.same(events, ['warn@0'], 'the warning already heard is not played again');
  await timers.advanceSettling(1);
  t.same(events, ['warn@0', 'cut@10000'], 'cut when the topped-up money runs out');
});

eachDb(t, 'session guard: a database that fails the re-read does not save the call', async (t, { db }) => {
  const tenant = await addTenant(db.knex, { balance: '0.0700' });
  const own = createKnex(db.url);
  const timers = new FakeTimers();
  const events: string[] = [];
  const guard = sessionGuard(own, tenant, timers, events);
  t.teardown(() => guard.stop());
  t.same(await guard.answered(), { warnAfterS: 0, cutAfterS: 4 });
  await db.knex('tenants').where({ id: tenant }).update({ balance: '100.0000' }); // a top-up it cannot see
  await own.destroy(); // the database goes away for this daemon
  await timers.advanceSettling(4000);
  t.same(events, ['warn@0', 'cut@4000'], 'cut as planned, at 4 s');
});

/** The live-call guard's timers, fired by hand. */
class HandTimers implements GuardTimerApi {
  pending: Array<{ fn: () => void; ms: number; id: number }> = [];
  private seq = 0;
  private waiter: (() => void) | null = null;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.push({ fn, ms, id });
    this.waiter?.();
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((p) => p.id !== handle);
  }
  /** Resolves when the next timer is set. */
  nextSet(): Promise<void> {
    return new Promise((r) => (this.waiter = r));
  }
  fireAll(): void {
    for (const p of this.pending.splice(0)) p.fn();
  }
}

const PER_MIN = { perMinute: parseMoney('0.15'), incrementS: 60, connectFee: parseMoney('0') };
const call = (uuid: string, tenantId: number, answeredSecondsAgo: number): LiveCall => ({
  uuid, tenantId, startedAt: new Date(NOW - answeredSecondsAgo * 1000 - 5000), answeredAt: new Date(NOW - answeredSecondsAgo * 1000), callType: 'mobile', rate: PER_MIN,
});

async function liveSetup(t: Test, knex: Knex, calls: LiveCall[]): Promise<{ fs: FakeInboundFreeSwitch; guard: LiveCallGuard; timers: HandTimers }> {
  const fs = new FakeInboundFreeSwitch({ channels: calls.map((c) => c.uuid), password: 'pw' });
  const port = await fs.listen();
  t.teardown(() => fs.close());
  const timers = new HandTimers();
  const guard = new LiveCallGuard({
    knex, node: 'node-a', source: { liveCalls: () => calls },
    connectInbound: () => FreeSwitchInbound.connect({ host: '127.0.0.1', port, password: 'pw', timeoutMs: 2000 }),
    warningFile: () => '/sounds/hotline/capped.wav', log, clock: () => new Date(NOW), timers, cutCheckTimeoutMs: 5000,
  });
  t.teardown(() => guard.stop());
  return { fs, guard, timers };
}

async function killed(fs: FakeInboundFreeSwitch): Promise<void> {
  for (let i = 0; i < 1500 && fs.kills.length === 0; i++) await sleep(20);
}

eachDb(t, 'live-call guard: a top-up between the decision and the cut; cut when the new money runs out', async (t, { knex }) => {
  // Two minutes paid (0.30), answered 117 s ago: the cut is due in about 1 s (2 s guard).
  const tenant = await addTenant(knex, { balance: '0.3000' });
  const { fs, guard, timers } = await liveSetup(t, knex, [call('call-1', tenant, 117)]);
  const r = await guard.check();
  t.match(r, { warned: 1, cut: 0, scheduled: 1 });
  t.equal(timers.pending.length, 1, 'the cut is scheduled');
  await knex('tenants').where({ id: tenant }).update({ balance: '0.4500' }); // a third minute paid
  const replanned = timers.nextSet();
  timers.fireAll();
  await replanned;
  t.same(fs.kills, [], 'not cut: the money read again at the cut had grown');
  // 0.45 pays three minutes: cut 2 s before the 180th second ends (178 s, as the session's guard
  // plans a lone call), 117 s talked → cut in 61 s, warned 30 s before.
  t.same(timers.pending.map((p) => p.ms).sort((a, b) => a - b), [31_000, 61_000], 'planned again from the new money: a warning and a cut');
  t.equal(fs.broadcasts.length, 1, 'warned once only');
  timers.fireAll(); // the money has not changed since: the cut goes ahead
  await killed(fs);
  t.same(fs.kills, [{ uuid: 'call-1', cause: 'OUTGOING_CALL_BARRED' }]);
});

eachDb(t, 'live-call guard: a database that fails the re-read does not save the call', async (t, { db }) => {
  const tenant = await addTenant(db.knex, { balance: '0.3000' });
  const own = createKnex(db.url);
  const { fs, guard, timers } = await liveSetup(t, own, [call('call-1', tenant, 117)]);
  t.match(await guard.check(), { scheduled: 1 });
  await db.knex('tenants').where({ id: tenant }).update({ balance: '100.0000' }); // a top-up it cannot see
  await own.destroy();
  timers.fireAll();
  await killed(fs);
  t.same(fs.kills, [{ uuid: 'call-1', cause: 'OUTGOING_CALL_BARRED' }], 'cut as planned');
});
