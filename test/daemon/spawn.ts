/**
 * The real entry point (src/main.ts under ts-node) as a child process, as in production: node's
 * flags from package.json (as `npm start` passes them), its own environment only, JSON log lines on stdout, the exit code kept.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { intendedNodeFlags } from '../../src/node-flags';

const ROOT = path.join(__dirname, '..', '..');

export interface DaemonProcess {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** Resolves with the metrics port once the ESL listener is open; rejects if the process exits first. */
  listening: Promise<number>;
  /** Resolves with the outbound ESL listener's port (FreeSWITCH's calls); rejects if the process exits first. */
  eslPort: Promise<number>;
}

/** `nodeFlags`: node's flags, by default the production ones. No start-up warm-up unless `env` asks for one (WARM_UP_CALLS). */
export function startDaemonProcess(env: Record<string, string>, cwd: string = ROOT, nodeFlags: readonly string[] = intendedNodeFlags()): DaemonProcess {
  // A plain environment: tap's own NODE_OPTIONS loaders must not leak into the daemon.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP') && !k.startsWith('_TAPJS')));
  const register = require.resolve('ts-node/register/transpile-only');
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, ...nodeFlags, '-r', register, path.join(ROOT, 'src', 'main.ts')], {
    cwd,
    env: { ...base, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json'), ESL_LISTEN_PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'info', CRON_ENABLED: 'false', WARM_UP_CALLS: '0', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  // 'close', not 'exit': the daemon writes its last log lines as it exits, and 'exit' can come
  // before they have been read from the pipe.
  const exited = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const listening = new Promise<number>((resolve, reject) => {
    const check = (): void => {
      const m = /"port":(\d+),"msg":"metrics listening on \/metrics"/.exec(out);
      if (m && out.includes('outbound event socket listening')) resolve(Number(m[1]));
    };
    child.stdout.on('data', check);
    void exited.then((code) => reject(new Error(`the daemon exited (${code}) before listening:\n${out}\n${err}`)));
  });
  const eslPort = listening.then(() => Number(/"port":(\d+),"msg":"outbound event socket listening"/.exec(out)![1]));
  listening.catch(() => undefined);
  eslPort.catch(() => undefined);
  return { child, stdout: () => out, stderr: () => err, exited, listening, eslPort };
}

/** GET /healthz: the HTTP status and the parsed body. */
export async function healthz(port: number): Promise<{ code: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { code: res.status, body: (await res.json()) as Record<string, unknown> };
}
