/**
 * The real entry point as a process: invalid configuration exits 2 naming the key; a started
 * daemon answers /metrics, and SIGTERM drains and exits 0.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

const MAIN = path.join(__dirname, '..', '..', 'src', 'main.ts');

function run(env: Record<string, string>) {
  // A plain environment: tap's own NODE_OPTIONS loaders must not leak into the daemon.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP') && !k.startsWith('_TAPJS')));
  // tap's process-info plugin injects its ESM loader into spawned node processes through
  // NODE_OPTIONS; `env -u` keeps the daemon a plain CommonJS process, as in production.
  return spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, '-r', 'ts-node/register/transpile-only', MAIN], {
    env: { ...base, TS_NODE_PROJECT: path.join(__dirname, '..', '..', 'tsconfig.json'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

t.test('invalid configuration: exit 2, the key and the reason on stderr', async (t) => {
  const child = run({ ESL_LISTEN_PORT: 'eighty' });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  t.equal(code, 2);
  t.match(stderr, /esl\.listenPort/);
  t.match(stderr, /whole number/);
});

t.test('start, serve /metrics, SIGTERM: exit 0', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-proc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const child = run({
    DATABASE_URL: `sqlite:${path.join(dir, 'calls.db')}`,
    CDR_SPOOL_DIR: path.join(dir, 'spool'),
    ESL_LISTEN_PORT: '0',
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
  });
  let stdout = '';
  const listening = new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const m = /"port":(\d+),"msg":"metrics listening on \/metrics"/.exec(stdout);
      if (m && stdout.includes('outbound event socket listening')) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${stdout}`)));
  });
  const port = await listening;
  const body = await new Promise<string>((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}/metrics`, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  t.match(body, /hotline_active_calls 0/);
  t.match(stdout, /seeded the demo tenant/);
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  t.equal(code, 0, 'clean exit on SIGTERM');
  t.match(stdout, /"msg":"stopped"/);
  for (const line of stdout.trim().split("\n")) t.doesNotThrow(() => { JSON.parse(line); }, "every log line is JSON");
});

t.test('kill -9 while a call rings and while it talks: hotline_handled=true is left behind, so the dialplan hangs up', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-proc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const child = run({
    DATABASE_URL: `sqlite:${path.join(dir, 'calls.db')}`,
    CDR_SPOOL_DIR: path.join(dir, 'spool'),
    ESL_LISTEN_PORT: '0',
    METRICS_PORT: '0',
    CRON_ENABLED: 'false',
    LOG_LEVEL: 'info',
  });
  let stdout = '';
  const eslPort = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const m = /"port":(\d+),"msg":"outbound event socket listening"/.exec(stdout);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${stdout}`)));
  });
  const { placeCall } = await import('../peer/fake-freeswitch');
  // timeScale 1: the first phone rings for a real minute; the second answers and talks a minute.
  const ringing = placeCall(eslPort, { caller: '13912345678', destination: '4001012345', timeScale: 1, legs: { '13800000001': { result: 'answer', ringMs: 60_000 } } });
  const talking = placeCall(eslPort, { caller: '13912345679', destination: '4001012345', timeScale: 1, legs: { '13800000001': { result: 'answer', ringMs: 50, talkMs: 60_000 } } });
  await new Promise((r) => setTimeout(r, 1500));
  child.kill('SIGKILL');
  const [r, k] = await Promise.all([ringing, talking]);
  for (const [what, c] of [['ringing', r], ['talking', k]] as const) {
    t.notOk(c.commands.some((x) => /hangup|uuid_kill/.test(`${x.line} ${x.headers['call-command'] ?? ''} ${x.headers['execute-app-name'] ?? ''}`)), `${what}: the daemon never hung up`);
    t.equal(c.hangupCause, null, `${what}: the caller was still up when the socket went`);
    t.same(c.releasedWith, { handled: 'true' }, `${what}: socket gone, caller up, hotline_handled=true → hotline_after_socket.xml hangs up, no announcement`);
  }
  t.ok(k.answered, 'the second call was talking');
});
