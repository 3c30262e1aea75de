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
