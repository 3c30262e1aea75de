/**
 * The start-up warm-up (src/warmup/warm-up.ts): synthetic calls through the real call flow on a
 * listener of their own, before the daemon listens. What is checked: every call completes; none
 * reaches the database, the daemon's metrics, its CDRs or its log beyond one line; a bound on its
 * time holds; and a warm-up that cannot run or whose calls fail never keeps the daemon from
 * starting. Assumes about FreeSWITCH only what the emulator replays: the captured traffic of
 * test/fixtures/esl (src/warmup/freeswitch-call.ts says which behaviours).
 */
import fs from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import t, { type Test } from 'tap';
import { loadSettings } from '../../src/config';
import { createKnex } from '../../src/db/connect';
import { PromptResolver, TtsRenderer } from '../../src/prompts';
import { warmUp, warmUpLogged, warmUpSnapshot, WARM_UP_NUMBER } from '../../src/warmup/warm-up';
import { startCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

const silent = pino({ level: 'silent' });

function capturingLogger(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done(); } }));
  return { log, lines };
}

function setup(t: Test) {
  const settings = loadSettings({ env: {}, overrides: { database: { url: 'sqlite::memory:' }, log: { level: 'silent' } } });
  const knex = createKnex(settings.database.url, { poolMax: 1 });
  t.teardown(() => knex.destroy());
  let queries = 0;
  knex.on('query', () => queries++);
  const prompts = new PromptResolver(settings, new TtsRenderer({ cacheDir: t.testdir(), voice: settings.tts.voice, log: silent }));
  return { settings, knex, prompts, queries: () => queries };
}

t.test('the warm-up tenant is built from valid rows, on its own number', async (t) => {
  const snapshot = warmUpSnapshot();
  t.same(snapshot.rejected, []);
  t.ok(snapshot.accessNumbers.get(WARM_UP_NUMBER), 'its access number is in the snapshot');
  t.equal(snapshot.tenants.get(1)?.callerMemoryHours, 0, 'caller memory off: no lookup reads the database');
});

t.test('every synthetic call completes with a CDR, and not one statement reaches the database', async (t) => {
  const { settings, knex, prompts, queries } = setup(t);
  const tmpDir = t.testdir();
  const r = await warmUp({ settings, knex, prompts, log: silent, calls: 300, maxMs: 60_000, tmpDir });
  t.match(r, { calls: 300, failed: 0, errors: {}, cdrs: 300, outOfTime: false });
  t.equal(queries(), 0, 'no query on the daemon\'s database');
  t.same(fs.readdirSync(tmpDir), [], 'its spool and journal folder removed');
});

t.test('0 calls: nothing runs', async (t) => {
  const { settings, knex, prompts } = setup(t);
  t.equal(await warmUp({ settings, knex, prompts, log: silent, calls: 0, maxMs: 1000 }), null);
});

t.test('out of time: no call starts after maxMs, those in flight finish', async (t) => {
  const { settings, knex, prompts } = setup(t);
  const r = await warmUp({ settings, knex, prompts, log: silent, calls: 10_000_000, maxMs: 200 });
  t.ok(r !== null && r.outOfTime, 'stopped by its bound');
  t.ok(r !== null && r.calls > 0 && r.calls < 10_000_000, `ran ${r?.calls} calls`);
  t.equal(r?.failed, 0, 'the calls in flight when it stopped finished');
  t.equal(r?.cdrs, r?.calls, 'one CDR each');
});

t.test('captures that cannot be read: a warning, no warm-up, no throw', async (t) => {
  const { settings, knex, prompts } = setup(t);
  const { log, lines } = capturingLogger();
  const templates = () => {
    throw new Error('ENOENT: no such file or directory, open \'test/fixtures/esl/outbound-plain-hunt-busy-noanswer-answer.log\'');
  };
  t.equal(await warmUpLogged({ settings, knex, prompts, log, calls: 100, maxMs: 1000, templates }), null);
  t.match(lines, [{ level: 40, msg: /warm-up could not run; taking calls without it/, err: { message: /ENOENT/ } }]);
});

t.test('calls that fail (every frame refused): a warning with the reasons, the daemon goes on', async (t) => {
  const base = setup(t);
  // FreeSWITCH's 5-12 KB events are larger than this: every call's stream is refused (each still gets its failed CDR).
  const settings = { ...base.settings, esl: { ...base.settings.esl, maxFrameBytes: 1024 } };
  const { log, lines } = capturingLogger();
  const r = await warmUpLogged({ ...base, settings, log, calls: 20, maxMs: 30_000 });
  t.match(r, { calls: 20, failed: 20 });
  t.ok(r !== null && Object.keys(r.errors).length > 0, 'the reasons are given');
  t.match(lines, [{ level: 40, msg: /some synthetic calls failed/, calls: 20, failed: 20 }]);
});

t.test('in the daemon: one log line, and nothing of the warm-up in its metrics, CDRs or calls', async (t) => {
  const { log, lines } = capturingLogger();
  const d = await startTestDaemon(tempSqliteUrl(), { api: { enabled: false }, calls: { warmUpCalls: 200 } }, {}, log);
  t.teardown(() => d.stop());
  const warm = lines.filter((l) => /warm-up/.test(String(l.msg)));
  t.match(warm, [{ level: 30, msg: /synthetic calls run through the call flow before listening/, calls: 200, failed: 0, out_of_time: false }]);
  t.equal(lines.filter((l) => l.msg === 'outbound event socket listening').length, 1, 'the warm-up\'s own listener logs nothing');
  t.equal(lines.filter((l) => l.component === 'warm-up').length, 0, 'nothing of its calls is logged');
  const metrics = await d.daemon.metrics.registry.metrics();
  t.notMatch(metrics, /^hotline_calls_started_total\{[^}]*\} [1-9]/m, 'no call counted');
  t.notMatch(metrics, /^hotline_esl_connections_total [1-9]/m, 'no connection counted');
  t.equal(Number((await d.knex('cdrs').count({ n: '*' }))[0].n), 0, 'no CDR written');
  t.same(fs.readdirSync(d.spoolDir).filter((n) => n.startsWith('segment-')).flatMap((n) => fs.readFileSync(`${d.spoolDir}/${n}`, 'utf8').split('\n').filter(Boolean)), [], 'none in the daemon\'s spool');
  // The daemon then serves a real call as usual, counted once.
  const call = startCall(d.port, { caller: '13912345678', destination: '4001012345', legs: { '13800000001': { result: 'answer', talkMs: 10 } } });
  const done = await call.done;
  t.ok(await d.cdr(done.uuid), 'the real call\'s CDR');
  t.match(await d.daemon.metrics.registry.metrics(), /^hotline_esl_connections_total 1$/m);
});
