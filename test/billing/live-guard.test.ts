// The node-local guard: publishes this daemon's live calls, and when a tenant's balance or spend
// cap runs out mid-call, warns (uuid_broadcast) and cuts (uuid_kill) its calls through a
// FreeSWITCH inbound event socket (the stand-in checked against real traffic).
import t, { type Test } from 'tap';
import { FreeSwitchInbound } from '../../src/billing/freeswitch-inbound';
import type { LiveCall } from '../../src/billing/live-calls';
import { LiveCallGuard, PUBLISH_ROWS } from '../../src/billing/live-guard';
import { toDbTimestamp } from '../../src/db/connect';
import { parseMoney } from '../../src/domain/money';
import type { Knex } from 'knex';
import { createLogger } from '../../src/log';
import { FakeInboundFreeSwitch } from '../peer/fake-inbound-freeswitch';
import { dbTargets, sleep } from '../helpers/db';
import { turnsDuring } from '../helpers/wait';
import { addTenant, eachDb, setUsage } from './helpers';

const log = createLogger('silent');
const RATE = { perMinute: parseMoney('0.15'), incrementS: 60, connectFee: parseMoney('0') };
// The guard's clock. Calls are answered relative to it, so what a check decides does not depend on
// how long the setup took (a call "answered 117 s ago" must not be 119 s old on a loaded machine).
// 2026-11-21T02:00Z is 10:00 on 2026-11-21 in Shanghai.
const NOW = Date.parse('2026-11-21T02:00:00.000Z');

async function setup(t: Test, knex: Knex, calls: LiveCall[], opts: { password?: boolean } = {}) {
  const fs = new FakeInboundFreeSwitch({ channels: calls.map((c) => c.uuid), password: 'pw' });
  const port = await fs.listen();
  t.teardown(() => fs.close());
  const live = [...calls];
  const guard = new LiveCallGuard({
    knex,
    node: 'node-a',
    source: { liveCalls: () => live },
    connectInbound: opts.password === false ? null : () => FreeSwitchInbound.connect({ host: '127.0.0.1', port, password: 'pw', timeoutMs: 2000 }),
    warningFile: () => '/sounds/hotline/capped.wav',
    log,
    clock: () => new Date(NOW),
  });
  t.teardown(() => guard.stop());
  return { fs, guard, live };
}

const call = (uuid: string, tenantId: number, answeredSecondsAgo: number | null, extra: Partial<LiveCall> = {}): LiveCall => ({
  uuid,
  tenantId,
  startedAt: new Date(NOW - (answeredSecondsAgo ?? 0) * 1000 - 5000),
  answeredAt: answeredSecondsAgo === null ? null : new Date(NOW - answeredSecondsAgo * 1000),
  callType: 'mobile',
  rate: RATE,
  ...extra,
});

eachDb(t, 'balance runs out mid-call: warned now, cut to the second', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '0.3000' });
  // Two minutes paid (0.30); answered 117 s ago: with the 2 s guard the cut is due in ~2 s.
  const { fs, guard } = await setup(t, knex, [call('call-1', tenant, 117), call('call-ringing', tenant, null)]);
  const r = await guard.check();
  t.same({ warned: r.warned, cut: r.cut, scheduled: r.scheduled, published: r.published }, { warned: 1, cut: 0, scheduled: 1, published: 2 });
  t.same(fs.broadcasts, [{ uuid: 'call-1', file: '/sounds/hotline/capped.wav', legs: 'both' }], 'warning played to both legs');
  t.same(fs.kills, [], 'not cut yet');
  // The cut is a timer of 1-2 s (two minutes paid, 117 s talked, a 2 s guard): wait for it, with
  // room for a loaded machine; how long it took is printed, not asserted.
  const started = Date.now();
  while (fs.kills.length === 0 && Date.now() - started < 30_000) await sleep(20);
  t.same(fs.kills, [{ uuid: 'call-1', cause: 'OUTGOING_CALL_BARRED' }], 'cut when the money runs out');
  t.comment(`cut ${Date.now() - started} ms after the check (due in 1-2 s)`);
  const commands = fs.commands.map((c) => c.line.replace(/ .*/, ''));
  t.same(commands.filter((c) => c === 'api'), ['api', 'api'], 'one broadcast, one kill');
});

eachDb(t, 'already out of money: warned and cut at once; calls of others untouched', async (t, { knex }) => {
  const poor = await addTenant(knex, { balance: '0.1000' });
  const rich = await addTenant(knex, { balance: '100' });
  const postpaid = await addTenant(knex, { balance: null });
  const { fs, guard } = await setup(t, knex, [call('poor-1', poor, 30), call('poor-2', poor, 5), call('rich-1', rich, 600), call('post-1', postpaid, 6000)]);
  const r = await guard.check();
  t.equal(r.cut, 2);
  t.same(fs.kills.map((k) => k.uuid).sort(), ['poor-1', 'poor-2']);
  t.same(fs.broadcasts.map((b) => b.uuid).sort(), ['poor-1', 'poor-2'], 'each warned first');
});

eachDb(t, 'a spend cap and another daemon\'s calls share the money', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '100', max_spend_day: '1.0000' });
  await setUsage(knex, tenant, 'day', '2026-11-21', 3, '0.5000');
  // Elsewhere: a call answered 150 s ago (0.45 so far).
  await knex('live_calls').insert({
    call_uuid: 'other-1', node: 'node-b', tenant_id: tenant, started_at: toDbTimestamp(new Date(NOW - 160_000)), answered_at: toDbTimestamp(new Date(NOW - 150_000)),
    admitted: 1, per_minute: '0.1500', increment_s: 60, connect_fee: '0', seen_at: toDbTimestamp(new Date(NOW)),
  });
  // Here: a call answered 10 s ago (0.15). 0.50 + 0.45 + 0.15 = 1.10 > 1.00: over.
  const { fs, guard } = await setup(t, knex, [call('mine-1', tenant, 10)]);
  const r = await guard.check();
  t.equal(r.cut, 1);
  t.same(fs.kills, [{ uuid: 'mine-1', cause: 'OUTGOING_CALL_BARRED' }], 'this daemon cuts its own call; node-b cuts its own');
  const rows: Array<{ call_uuid: string; node: string }> = await knex('live_calls').orderBy('call_uuid').select('call_uuid', 'node');
  t.same(rows, [{ call_uuid: 'mine-1', node: 'node-a' }, { call_uuid: 'other-1', node: 'node-b' }], 'published next to the other daemon\'s');
});

eachDb(t, 'another daemon\'s calls count for their own tenant only, with several tenants here and there', async (t, { knex }) => {
  const rich = await addTenant(knex, { balance: '100', max_spend_day: '1.0000' });
  const poor = await addTenant(knex, { balance: '100', max_spend_day: '1.0000' });
  await setUsage(knex, rich, 'day', '2026-11-21', 3, '0.5000');
  await setUsage(knex, poor, 'day', '2026-11-21', 3, '0.5000');
  const elsewhere = (uuid: string, tenantId: number, answeredSecondsAgo: number) => ({
    call_uuid: uuid, node: 'node-b', tenant_id: tenantId, started_at: toDbTimestamp(new Date(NOW - answeredSecondsAgo * 1000 - 10_000)),
    answered_at: toDbTimestamp(new Date(NOW - answeredSecondsAgo * 1000)), admitted: 1, per_minute: '0.1500', increment_s: 60, connect_fee: '0', seen_at: toDbTimestamp(new Date(NOW)),
  });
  // Elsewhere the poor tenant's call has cost 0.45 (150 s); the rich one's nothing there. Here each
  // has one call of 10 s (0.15): 0.50 + 0.45 + 0.15 = 1.10 > 1.00 for the poor tenant only. Were the
  // poor tenant's call counted for the rich one too, both would be cut.
  await knex('live_calls').insert([elsewhere('other-poor', poor, 150)]);
  const { fs, guard } = await setup(t, knex, [call('mine-rich', rich, 10), call('mine-poor', poor, 10)]);
  const r = await guard.check();
  t.equal(r.cut, 1, 'one call cut');
  t.same(fs.kills, [{ uuid: 'mine-poor', cause: 'OUTGOING_CALL_BARRED' }], 'the poor tenant\'s call here, not the rich one\'s');
});

eachDb(t, 'publishing replaces this daemon\'s rows; a call gone from FreeSWITCH; no password', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '0.0100' });
  const { fs, guard, live } = await setup(t, knex, [call('a', tenant, null), call('b', tenant, null)], { password: false });
  await guard.check();
  t.equal((await knex('live_calls').where({ node: 'node-a' })).length, 2);
  live.splice(0, 1);
  live.push(call('c', tenant, 100));
  const r = await guard.check();
  t.same((await knex<{ node: string; call_uuid: string }>('live_calls').where({ node: 'node-a' }).orderBy('call_uuid').select('call_uuid')).map((x) => x.call_uuid), ['b', 'c']);
  t.equal(r.cut, 0, 'without FS_ESL_PASSWORD nothing can be cut (logged once)');
  t.equal(fs.connections, 0);
  live.splice(0);
  t.equal((await guard.check()).published, 0);
  t.equal((await knex('live_calls').where({ node: 'node-a' })).length, 0, 'no calls: no rows');
});

eachDb(t, 'publishing many calls: a few hundred rows a statement with the event loop turning between them; ended calls removed, another daemon\'s rows kept', async (t, { knex }) => {
  const tenant = await addTenant(knex, {});
  const many = Array.from({ length: 3 * PUBLISH_ROWS + 17 }, (_, i) => call(`many-${String(i).padStart(4, '0')}`, tenant, null));
  const { guard, live } = await setup(t, knex, many, { password: false });
  await knex('live_calls').insert({ call_uuid: 'other-1', node: 'node-b', tenant_id: tenant, started_at: toDbTimestamp(new Date(NOW)), seen_at: toDbTimestamp(new Date(NOW)) });
  const { result, turns } = await turnsDuring(() => guard.check());
  t.equal(result.published, many.length);
  t.equal((await knex('live_calls').where({ node: 'node-a' })).length, many.length, 'every call published');
  t.ok(turns >= 3, `the event loop turned between the statements (${turns} turns)`);
  // Half the calls end; the clock has not moved (two runs can stamp the same time).
  live.splice(0, Math.floor(many.length / 2));
  await guard.check();
  const left: string[] = (await knex('live_calls').where({ node: 'node-a' }).orderBy('call_uuid').select('call_uuid')).map((r: { call_uuid: string }) => r.call_uuid);
  t.same(left, live.map((c) => c.uuid), 'the ended calls\' rows are gone, the others kept');
  t.equal((await knex('live_calls').where({ node: 'node-b' })).length, 1, 'another daemon\'s row is not this daemon\'s to remove');
});

eachDb(t, 'a call that ended before the kill: -ERR No such channel! is fine', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '0.0100' });
  const { fs, guard } = await setup(t, knex, [call('gone-1', tenant, 30)]);
  fs.channels.delete('gone-1');
  const r = await guard.check();
  t.equal(r.cut, 0);
  t.match(fs.commands.map((c) => c.line), [/^auth /, /^api uuid_broadcast gone-1 /, /^api uuid_kill gone-1 OUTGOING_CALL_BARRED$/]);
});

void t.test('one tenant whose limits cannot be read does not stop the guard for the others', async (t) => {
  // A usage row on the embedded SQLite whose spend is not an amount (SQLite keeps whatever is
  // written into a DECIMAL column): that tenant's limits cannot be read, but the tenant listed
  // after it is out of money and must still be cut.
  const db = await dbTargets().find((x) => x.name === 'sqlite')!.create();
  t.teardown(() => db.destroy());
  const knex = db.knex;
  const odd = await addTenant(knex, { balance: '10', max_spend_day: '100' });
  await setUsage(knex, odd, 'day', '2026-11-21', 1, 'one yuan');
  const poor = await addTenant(knex, { balance: '0.1000' });
  const { fs, guard } = await setup(t, knex, [call('odd-1', odd, 30), call('poor-1', poor, 30)]);
  const r = await guard.check().catch((err: unknown) => ({ error: (err as Error).message }));
  t.match(r, { cut: 1 }, 'the check went on past the unreadable tenant');
  t.same(fs.kills, [{ uuid: 'poor-1', cause: 'OUTGOING_CALL_BARRED' }], 'the tenant out of money was cut');
});

eachDb(t, 'a run that cannot read the limits keeps the cut the run before scheduled', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '0.3000' });
  // As in the first test: the cut is due ~2 s after the check.
  const { fs, guard } = await setup(t, knex, [call('call-1', tenant, 117)]);
  t.equal((await guard.check()).scheduled, 1);
  // The next run meets a database error reading the usage rows (here: the table is away).
  await knex.schema.renameTable('tenant_usage', 'tenant_usage_away');
  try {
    await guard.check();
  } finally {
    await knex.schema.renameTable('tenant_usage_away', 'tenant_usage');
  }
  const started = Date.now();
  while (fs.kills.length === 0 && Date.now() - started < 10_000) await sleep(20);
  t.same(fs.kills, [{ uuid: 'call-1', cause: 'OUTGOING_CALL_BARRED' }], 'still cut when the money runs out');
});

eachDb(t, 'a call in an event-locked prompt is warned with uuid_displace (heard over it); a refused displace falls back to the broadcast', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: '0.1000' });
  const calls = [call('locked-ok', tenant, 30, { promptLocked: true }), call('locked-refused', tenant, 30, { promptLocked: true }), call('free', tenant, 30)];
  const fs = new FakeInboundFreeSwitch({
    channels: calls.map((c) => c.uuid),
    password: 'pw',
    onDisplace: (uuid) => (uuid === 'locked-refused' ? '-ERR Cannot displace session!\n' : '+OK Success\n'),
  });
  const port = await fs.listen();
  t.teardown(() => fs.close());
  const guard = new LiveCallGuard({
    knex, node: 'node-a', source: { liveCalls: () => calls },
    connectInbound: () => FreeSwitchInbound.connect({ host: '127.0.0.1', port, password: 'pw', timeoutMs: 2000 }),
    warningFile: () => '/sounds/hotline/capped.wav', log, clock: () => new Date(NOW),
  });
  t.teardown(() => guard.stop());
  const r = await guard.check();
  t.equal(r.warned, 3, 'each warned once');
  t.same(fs.displaces.map((x) => `${x.uuid} ${x.file} ${x.reply.trim()}`), [
    'locked-ok /sounds/hotline/capped.wav +OK Success',
    'locked-refused /sounds/hotline/capped.wav -ERR Cannot displace session!',
  ]);
  t.same(fs.broadcasts.map((b) => b.uuid).sort(), ['free', 'locked-refused'], 'broadcast where not locked, and where the displace was refused');
  t.same(fs.kills.map((k) => k.uuid).sort(), ['free', 'locked-ok', 'locked-refused']);
  t.ok(fs.commands.some((c) => c.line === 'api uuid_displace locked-ok start /sounds/hotline/capped.wav 0 mux'), 'the command as FreeSWITCH parses it');
});
