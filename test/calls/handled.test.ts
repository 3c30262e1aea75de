/**
 * The handled flag (freeswitch/dialplan/hotline_after_socket.xml): the daemon sets
 * hotline_handled=true right after `connect`, in the same burst as myevents/linger/nixevent and
 * before anything the caller hears; when it lets go of a call on purpose — a connection that
 * arrives while it drains, or before any configuration is loaded — it sets nothing and plays
 * nothing: it subscribes, runs `unset hotline_handled` and waits for its completion (the park has
 * started, call-channel.ts release), then closes the socket without hanging up, so FreeSWITCH's fallback
 * (second daemon, backup, announcement) takes the caller. A daemon killed mid-call leaves the
 * flag set: the fallback hangs up instead of offering a served caller to someone else
 * (test/calls/process.test.ts kills a real daemon process).
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import t from 'tap';
import { CallServer } from '../../src/calls/call-server';
import { CdrSpool } from '../../src/cdr/spool';
import { CdrWriter } from '../../src/cdr/writer';
import { loadSettings } from '../../src/config';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { PromptResolver } from '../../src/prompts';
import { ConfigStore } from '../../src/snapshot/store';
import { dbTargets } from '../helpers/db';
import { placeCall, type CallRecord, type CallScript } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl, type TestDaemon } from '../helpers/daemon';
import { allApps, CLAIM_APP, demoVisitorLeg, servedClaimApp } from './helpers';

t.test('every call is claimed first: hotline_handled=true (with the bridging variables and, for a served call, its ringback) right behind the subscription, before any prompt', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  const c = await placeCall(d.port, { caller: '13912345678', destination: '4001012345', legs: { '13800000001': { result: 'answer' } } });
  t.same(c.commands.slice(0, 5).map((x) => x.line.split(' ')[0]), ['connect', 'myevents', 'linger', 'nixevent', 'sendmsg']);
  t.equal(allApps(c)[0], servedClaimApp(), 'the first application');
  t.same([c.variables.continue_on_fail, c.variables.hangup_after_bridge], ['true', 'true'], 'set with it: a failed leg does not hang the caller up');
  t.equal(c.variables.hotline_handled, 'true');
  const unknown = await placeCall(d.port, { caller: '13912345678', destination: '4009999999' });
  t.equal(allApps(unknown)[0], CLAIM_APP, 'also for a number not in service: the daemon answers it');
  t.equal(c.releasedWith, null, 'hung up by the daemon, never handed back');
});

/**
 * Places a call whose `connect` reply is held until the daemon has started draining (it accepted
 * the connection and sent `connect` first); resolves once the call and the drain are over.
 */
async function arriveWhileDraining(d: TestDaemon, script: Omit<CallScript, 'holdConnectReply'>): Promise<CallRecord> {
  let reply!: () => void;
  const held = new Promise<void>((r) => (reply = r));
  const call = placeCall(d.port, { ...script, holdConnectReply: held });
  const deadline = Date.now() + 5000;
  while (d.daemon.calls.activeCalls === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const stopping = d.daemon.stop();
  reply();
  const c = await call;
  await stopping;
  return c;
}

t.test('a call that arrives while the daemon drains is handed back untouched', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  const c = await arriveWhileDraining(d, { caller: '13912345678', destination: '4001012345' });
  // The subscription and `unset hotline_handled`, whose completion shows the park has started
  // before the socket closes (call-channel.ts release): no handled flag, no prompt, no hangup.
  t.same(c.commands.map((x) => x.line.split(' ')[0]), ['connect', 'myevents', 'linger', 'nixevent', 'sendmsg'], 'connect, the subscription, one application');
  t.same(allApps(c), ['unset hotline_handled'], 'the one application takes nothing on: it unsets the flag the dialplan reads');
  t.equal(c.stuckInPark, false, 'closed after the park started (test/peer A8): not held in silence');
  t.same(c.releasedWith, { handled: undefined }, 'the caller is still up and hotline_handled is unset: the dialplan falls back');
  t.equal(c.closedBy, 'daemon');
  t.equal(c.hangupCause, null, 'not hung up');
  t.match(await d.daemon.metrics.registry.getSingleMetricAsString('hotline_calls_released_total'), /hotline_calls_released_total\{reason="draining"\} 1/);
});

t.test('a click-to-call leg that arrives while the daemon drains is served: it has no dialplan to fall back to', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  const visitor = '13912345678';
  const c = await arriveWhileDraining(d, {
    caller: visitor,
    destination: visitor,
    legs: { '13800000001': { result: 'answer', ringMs: 20, talkMs: 100 } },
    originated: demoVisitorLeg(visitor),
  });
  t.equal(allApps(c)[0], servedClaimApp(), 'claimed');
  t.equal(c.releasedWith, null, 'not handed back: FreeSWITCH would just hang the visitor up');
  t.equal(c.bridges[0]?.number, '13800000001', 'connected to the tenant');
  t.match(await d.daemon.metrics.registry.getSingleMetricAsString('hotline_calls_released_total'), /reason="draining"\} 0/);
});

t.test('a call that arrives before any configuration was loaded is handed back untouched', async (t) => {
  const db = await dbTargets()[0].create();
  const spool = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-spool-'));
  t.teardown(async () => {
    await server.stop(0);
    await db.destroy();
    fs.rmSync(spool, { recursive: true, force: true });
  });
  const settings = loadSettings({ env: {}, overrides: { database: { url: db.url }, esl: { listenPort: 0 }, prompts: { sameFilesystem: 'no' }, log: { level: 'silent' } } });
  const log = createLogger('silent');
  const metrics = new Metrics();
  // A store that never loaded. The daemon never listens like this (it starts from the database or
  // the cache, or exits: snapshot/store.ts); a CallServer on its own still must not serve blind.
  const store = new ConfigStore(db.knex, settings.configCache, log, metrics);
  const server = new CallServer({
    settings,
    store,
    cdrs: new CdrWriter(db.knex, new CdrSpool(spool), settings.cdr, log, metrics),
    metrics,
    log,
    knex: db.knex,
    prompts: new PromptResolver(settings, { has: () => false }),
  });
  const { port } = await server.listen();
  const c = await placeCall(port, { caller: '13912345678', destination: '4001012345' });
  t.same(allApps(c), ['unset hotline_handled'], 'only the unset whose completion shows the park started');
  t.equal(c.stuckInPark, false);
  t.same(c.releasedWith, { handled: undefined });
  t.match(await metrics.registry.getSingleMetricAsString('hotline_calls_released_total'), /reason="no_configuration"\} 1/);
});
