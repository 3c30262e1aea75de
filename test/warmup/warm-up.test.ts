/**
 * The start-up warm-up (src/warmup/warm-up.ts): synthetic calls through the real call flow on a
 * listener of their own, before the daemon listens. What is checked: every call completes; none
 * reaches the database, the daemon's metrics, its CDRs or its log beyond one line; a bound on its
 * time holds; and a warm-up that cannot run or whose calls fail never keeps the daemon from
 * starting. Assumes about FreeSWITCH only what the emulator replays: the captured traffic of
 * test/fixtures/esl (src/warmup/freeswitch-call.ts says which behaviours).
 */
import fs from 'node:fs';
import pino from 'pino';
import t, { type Test } from 'tap';
import os from 'node:os';
import path from 'node:path';
import { loadSettings } from '../../src/config';
import { createKnex } from '../../src/db/connect';
import { Metrics } from '../../src/metrics';
import { PromptResolver, TtsRenderer } from '../../src/prompts';
import { loadTemplates, Template, type Templates } from '../../src/warmup/templates';
import { FIXTURE_DIR, fixtureDirFrom, PACKAGED_CAPTURE_DIR, packagedCaptureDirFrom } from '../../src/warmup/captures';
import { removeWarmUpFoldersSync, warmUpFolderPrefix } from '../../src/warmup/folders';
import { packageCaptures } from '../../src/warmup/package-captures';
import { warmUp, warmUpLogged, warmUpSnapshot, WARM_UP_NUMBER } from '../../src/warmup/warm-up';
import { startDaemonProcess } from '../daemon/spawn';
import { startCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';
import { capturingLogger } from '../helpers/log';
import { until } from '../helpers/wait';
import { endedPid, leftLongAgo } from './abandoned';

const silent = pino({ level: 'silent' });

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

t.test('its folder is named after this process; the folders of warm-ups whose process was killed are removed first, and logged', async (t) => {
  const { settings, knex, prompts } = setup(t);
  const tmpDir = t.testdir();
  // A process that has ended: its pid, and a folder named as its warm-up would have named it.
  const deadPid = endedPid();
  const abandoned = fs.mkdtempSync(warmUpFolderPrefix(tmpDir, deadPid));
  fs.writeFileSync(path.join(abandoned, 'segment-1.jsonl'), '{}\n');
  // Left unchanged for over an hour (a younger one could be a live warm-up of another pid namespace).
  leftLongAgo(path.join(abandoned, 'segment-1.jsonl'), abandoned);
  const running = path.basename(fs.mkdtempSync(warmUpFolderPrefix(tmpDir, process.ppid)));
  // What the folder holds while the calls run (at the emulator's first event).
  const t0 = loadTemplates(WARM_UP_NUMBER);
  let during: string[] | null = null;
  const templates = (): Templates => ({
    ...t0,
    event: (format, name, phase) => {
      during ??= fs.readdirSync(tmpDir);
      return t0.event(format, name, phase);
    },
  });
  const { log, lines } = capturingLogger();
  const r = await warmUp({ settings, knex, prompts, log, calls: 20, maxMs: 60_000, tmpDir, templates });
  t.match(r, { calls: 20, failed: 0 });
  const own = (during ?? []).filter((n) => n !== running);
  t.match(own, [new RegExp(`^hotline-warm-up-${process.pid}-`)], 'while it ran: its own folder, named after this process; the killed one\'s was gone');
  t.same(fs.readdirSync(tmpDir), [running], 'after it: its own removed, the running process\'s left alone');
  t.same(lines.filter((l) => l.msg === 'warm-up: removed the folders of warm-ups whose process was killed').map((l) => l.folders), [[abandoned]], 'the removal logged');
});

t.test('a deployment without test/: the build\'s copy of the captures (dist/captures/esl) gives the same calls', async (t) => {
  // Not t.testdir(): each call of it empties the test's one folder (setup() below makes one).
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-packaged-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const packaged = path.join(root, 'captures', 'esl');
  const files = packageCaptures(FIXTURE_DIR, packaged);
  t.same(fs.readdirSync(packaged).sort(), [...files].sort(), 'the warm-up\'s captures and their README, nothing else');
  t.ok(files.length < fs.readdirSync(FIXTURE_DIR).length, 'not the whole fixture folder');
  const fromTests = loadTemplates(WARM_UP_NUMBER);
  const fromCopy = loadTemplates(WARM_UP_NUMBER, packaged);
  t.same(fromCopy.channelData, fromTests.channelData, 'the same CHANNEL_DATA');
  for (const [format, name, phase] of [['plain', 'CHANNEL_EXECUTE_COMPLETE', 'answered'], ['json', 'CHANNEL_HANGUP', 'hangup'], ['plain', 'CHANNEL_PROGRESS_MEDIA', 'ringing']] as const) {
    t.same(fromCopy.event(format, name, phase), fromTests.event(format, name, phase), `the same ${format} ${name}`);
  }
  const { settings, knex, prompts, queries } = setup(t);
  const r = await warmUp({ settings, knex, prompts, log: silent, calls: 200, maxMs: 60_000, tmpDir: t.testdir(), templates: () => loadTemplates(WARM_UP_NUMBER, packaged) });
  t.match(r, { calls: 200, failed: 0, errors: {} }, 'every call of the copy completes');
  t.equal(queries(), 0);
  t.throws(() => packageCaptures(path.join(root, 'captures'), path.join(root, 'out')), /ENOENT/, 'a capture missing: the build fails, not the daemon later');
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { scripts: { build: string } };
  t.match(pkg.scripts.build, /&& node dist\/src\/warmup\/package-captures\.js$/, 'npm run build copies them after tsc');
  // The folder the compiled module finds, in the three layouts (a temporary tree of each).
  const tree = (dirs: string[]): string => {
    const top = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-layout-'));
    t.teardown(() => fs.rmSync(top, { recursive: true, force: true }));
    for (const d of ['dist/src/warmup', ...dirs]) fs.mkdirSync(path.join(top, d), { recursive: true });
    return top;
  };
  const checkout = tree(['test/fixtures/esl', 'dist/captures/esl']);
  t.equal(fixtureDirFrom(path.join(checkout, 'dist/src/warmup')), path.join(checkout, 'test/fixtures/esl'), 'a checkout: the fixtures, the truth, before the copy');
  const deployed = tree(['dist/captures/esl']);
  t.equal(fixtureDirFrom(path.join(deployed, 'dist/src/warmup')), path.join(deployed, 'dist/captures/esl'), 'dist/ alone: the build\'s copy');
  t.equal(packagedCaptureDirFrom(path.join(deployed, 'dist/src/warmup')), path.join(deployed, 'dist/captures/esl'), 'where the build puts it');
  const bare = tree([]);
  t.equal(fixtureDirFrom(path.join(bare, 'dist/src/warmup')), path.join(bare, 'dist/test/fixtures/esl'), 'neither: a folder that is not there (the warm-up says it could not run)');
  t.equal(FIXTURE_DIR, fixtureDirFrom(path.join(__dirname, '..', '..', 'src', 'warmup')));
  t.equal(PACKAGED_CAPTURE_DIR, packagedCaptureDirFrom(path.join(__dirname, '..', '..', 'src', 'warmup')));
});

t.test('0 calls: nothing runs', async (t) => {
  const { settings, knex, prompts } = setup(t);
  t.equal(await warmUp({ settings, knex, prompts, log: silent, calls: 0, maxMs: 1000 }), null);
});

t.test('out of time: no call starts after maxMs, those in flight end', async (t) => {
  const { settings, knex, prompts } = setup(t);
  const r = await warmUp({ settings, knex, prompts, log: silent, calls: 10_000_000, maxMs: 200 });
  t.ok(r !== null && r.outOfTime, 'stopped by its bound');
  t.ok(r !== null && r.calls > 0 && r.calls < 10_000_000, `ran ${r?.calls} calls`);
  // The calls in flight then finish within the second of grace; one that did not (a machine under
  // heavy load) is ended and counted for that reason, never for another.
  t.same(Object.keys(r?.errors ?? {}).filter((e) => e !== 'warm-up out of time'), [], 'no other failure');
  t.ok(r !== null && r.cdrs >= r.calls - r.failed, 'every call that completed has its CDR');
});

t.test('captures that cannot be read: a warning, no warm-up, no throw', async (t) => {
  const { settings, knex, prompts } = setup(t);
  const { log, lines } = capturingLogger();
  const templates = () => {
    throw new Error('ENOENT: no such file or directory, open \'test/fixtures/esl/outbound-plain-hunt-busy-noanswer-answer.log\'');
  };
  t.equal(await warmUpLogged({ settings, knex, prompts, log, calls: 100, maxMs: 1000, templates }), null);
  t.equal(lines.length, 2);
  t.match(lines, [{ level: 30, msg: /^warm-up: running/ }, { level: 40, msg: /warm-up could not run; taking calls without it/, err: { message: /ENOENT/ } }]);
});

t.test('calls that fail (every frame refused): a warning with the reasons, the daemon goes on', async (t) => {
  const base = setup(t);
  // FreeSWITCH's 5-12 KB events are larger than this: every call's stream is refused (each still gets its failed CDR).
  const settings = { ...base.settings, esl: { ...base.settings.esl, maxFrameBytes: 1024 } };
  const { log, lines } = capturingLogger();
  const r = await warmUpLogged({ ...base, settings, log, calls: 20, maxMs: 30_000 });
  t.match(r, { calls: 20, failed: 20 });
  t.ok(r !== null && Object.keys(r.errors).length > 0, 'the reasons are given');
  t.equal(lines.length, 2);
  t.match(lines, [{ level: 30, msg: /^warm-up: running/ }, { level: 40, msg: /some synthetic calls failed/, calls: 20, failed: 20 }]);
});

t.test('in the daemon: two log lines, and nothing of the warm-up in its metrics, CDRs or calls', async (t) => {
  const { log, lines } = capturingLogger();
  // A bound far above what 200 calls take even on a loaded machine: the count is checked exactly.
  const d = await startTestDaemon(tempSqliteUrl(), { api: { enabled: false }, calls: { warmUpCalls: 200, warmUpMaxS: 120 } }, {}, log);
  t.teardown(() => d.stop());
  const warm = lines.filter((l) => /warm-up/.test(String(l.msg)));
  t.equal(warm.length, 2, 'two lines: as it starts, as it ends');
  t.match(warm, [{ level: 30, msg: /^warm-up: running/, calls: 200 }, { level: 30, msg: /^warm-up: done/, calls: 200, failed: 0, out_of_time: false }]);
  t.equal(lines.filter((l) => l.msg === 'outbound event socket listening').length, 1, 'the warm-up\'s own listener logs nothing');
  t.same(lines.filter((l) => l.call_uuid !== undefined), [], 'nothing of its calls is logged');
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

/** The captured traffic with every event's Unique-ID changed: the daemon ignores them as another channel's, and each call waits. */
function foreignEvents(): Templates {
  const t = loadTemplates(WARM_UP_NUMBER);
  return {
    ...t,
    event: (format, name, phase) => {
      const e = t.event(format, name, phase);
      return { ...e, body: new Template(e.body.parts.map((p) => p.split('\nUnique-ID: ').join('\nUnique-ID: f')), e.body.slots) };
    },
  };
}

t.test('calls that hang: ended one second after maxMs, counted failed, the folder removed', async (t) => {
  const base = setup(t);
  // Long ESL timeouts: without the bound each call would wait for its first prompt's completion
  // (reply timeout and application margin, a minute here), and the server's stop for its kill.
  const settings = { ...base.settings, esl: { ...base.settings.esl, replyTimeoutMs: 30_000, appTimeoutMarginMs: 30_000 } };
  const { knex, prompts } = base;
  const tmpDir = t.testdir();
  const r = await warmUp({ settings, knex, prompts, log: silent, calls: 50, maxMs: 300, tmpDir, templates: foreignEvents });
  // 0.3 s, one second of grace, at most two for the server's stop: the rest is the machine's load.
  t.ok(r !== null && r.seconds < 8, `returned after ${r?.seconds.toFixed(2)} s`);
  t.match(r, { outOfTime: true, errors: { 'warm-up out of time': Number } });
  t.ok(r !== null && r.failed > 0);
  t.same(fs.readdirSync(tmpDir), []);
});

t.test('the daemon stopping (its signal aborted): the calls end at once, nothing left behind', async (t) => {
  const { settings, knex, prompts } = setup(t);
  const tmpDir = t.testdir();
  const stopping = new AbortController();
  const { log, lines } = capturingLogger();
  // The stop comes while calls run: at the emulator's 2,000th event.
  const t0 = loadTemplates(WARM_UP_NUMBER);
  let events = 0;
  const templates = (): Templates => ({
    ...t0,
    event: (format, name, phase) => {
      if (++events === 2000) stopping.abort();
      return t0.event(format, name, phase);
    },
  });
  const r = await warmUpLogged({ settings, knex, prompts, log, calls: 10_000_000, maxMs: 600_000, tmpDir, signal: stopping.signal, templates });
  t.ok(r !== null && r.calls > 0 && r.calls < 10_000_000, `ran ${r?.calls} calls`);
  t.match(r, { outOfTime: false, stopped: true });
  t.match(lines, [{ msg: /^warm-up: running/ }, { level: 30, msg: 'warm-up: cut short, the daemon is stopping' }]);
  t.same(fs.readdirSync(tmpDir), []);
  t.equal(await warmUp({ settings, knex, prompts, log: silent, calls: 100, maxMs: 1000, tmpDir, signal: stopping.signal }), null, 'aborted before it began: nothing runs');
});

t.test('a process ending by a signal mid-warm-up (endBySignal) removes the warm-up\'s folder first', async (t) => {
  const { settings, knex, prompts } = setup(t);
  const tmpDir = t.testdir();
  const stopping = new AbortController();
  // What endBySignal does before the signal's default action ends the process (src/exit-codes.ts),
  // at the emulator's 2,000th event, while calls run and write into the folder.
  const t0 = loadTemplates(WARM_UP_NUMBER);
  let events = 0;
  const seen: string[][] = [];
  const templates = (): Templates => ({
    ...t0,
    event: (format, name, phase) => {
      if (++events === 2000) {
        seen.push(fs.readdirSync(tmpDir));
        removeWarmUpFoldersSync();
        seen.push(fs.readdirSync(tmpDir));
        stopping.abort();
      }
      return t0.event(format, name, phase);
    },
  });
  await warmUpLogged({ settings, knex, prompts, log: silent, calls: 10_000_000, maxMs: 600_000, tmpDir, signal: stopping.signal, templates });
  t.equal(seen.length, 2, 'removed while the calls ran');
  t.match(seen[0], [/^hotline-warm-up-/], 'the running warm-up\'s folder was there');
  t.same(seen[1], [], 'and is gone');
  t.same(fs.readdirSync(tmpDir), []);
  removeWarmUpFoldersSync();
  t.same(fs.readdirSync(tmpDir), [], 'nothing tracked once the warm-up ended');
});

t.test('a throw in the emulator fails its call; it does not escape into the daemon', async (t) => {
  const { settings, knex, prompts } = setup(t);
  const base = loadTemplates(WARM_UP_NUMBER);
  const throwing = (): Templates => ({
    ...base,
    event: () => {
      throw new Error('no template for CHANNEL_EXECUTE');
    },
  });
  const r = await warmUp({ settings, knex, prompts, log: silent, calls: 20, maxMs: 30_000, templates: throwing });
  t.match(r, { calls: 20, failed: 20, errors: { 'emulator error: no template for CHANNEL_EXECUTE': 20 } });
});

t.test('two warm-ups at once in one process: each runs its own calls', async (t) => {
  const { settings, knex, prompts } = setup(t);
  const [a, b] = await Promise.all([1, 2].map(() => warmUp({ settings, knex, prompts, log: silent, calls: 200, maxMs: 120_000 })));
  t.match(a, { calls: 200, failed: 0, cdrs: 200 });
  t.match(b, { calls: 200, failed: 0, cdrs: 200 });
});

t.test('the warm-up\'s metrics registry starts no process collectors', async (t) => {
  t.notMatch(await new Metrics({ processMetrics: false }).registry.metrics(), /^nodejs_|^process_/m);
  t.match(await new Metrics().registry.metrics(), /^nodejs_eventloop_lag_seconds /m, 'the daemon\'s own has them');
});

t.test('SIGTERM during the warm-up: the warm-up ends, the daemon stops cleanly (exit 0), its folder removed', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-warm-sigterm-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  const d = startDaemonProcess({
    DATABASE_URL: `sqlite:${path.join(dir, 'calls.db')}`, CDR_SPOOL_DIR: path.join(dir, 'spool'), TTS_CACHE_DIR: path.join(dir, 'tts'), REPORTS_DIR: path.join(dir, 'reports'),
    WARM_UP_CALLS: '100000000', WARM_UP_MAX_S: '600', TMPDIR: tmp,
  });
  t.teardown(() => d.child.kill('SIGKILL'));
  await until('the warm-up running', () => /warm-up: running/.test(d.stdout()) && fs.readdirSync(tmp).some((n) => n.startsWith('hotline-warm-up-')), 120_000);
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0, 'clean exit');
  t.match(d.stdout(), /"msg":"warm-up: cut short, the daemon is stopping"/);
  t.match(d.stdout(), /"msg":"stop asked for during start-up: neither \/metrics nor the outbound socket opened"/);
  t.notMatch(d.stdout(), /outbound event socket listening|metrics listening/, 'no listener opened: no call taken');
  t.match(d.stdout(), /"msg":"stopped"/);
  t.same(fs.readdirSync(tmp).filter((n) => n.startsWith('hotline-warm-up-')), [], 'the warm-up\'s folder removed');
});
