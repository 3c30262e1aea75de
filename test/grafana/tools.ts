/**
 * The Prometheus tools the grafana/ tests run (Debian package `prometheus`: /usr/bin/promtool and
 * /usr/bin/prometheus; .ci/run installs it). A missing tool is a test failure with the fix in the
 * message, never a skip.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(__dirname, '..', '..');
export const GRAFANA_DIR = path.join(REPO, 'grafana');

export type Tool = 'promtool' | 'prometheus';

/** The tool's path, or throws an error that says how to install it. */
export function requireTool(tool: Tool): string {
  const found = spawnSync(tool, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (found.error || found.status !== 0) {
    throw new Error(
      `${tool} is not installed or does not run (${found.error?.message ?? `exit ${String(found.status)}`}): ` +
        'apt-get install prometheus (the Debian package ships promtool and prometheus; .ci/run installs it)',
    );
  }
  return tool;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded) and returns its exit code and output. */
export function run(command: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    // Generous: promtool's rule tests take 7 s of CPU and 40 s of wall time on a loaded 2-vCPU
    // machine; the bound is there to end a hung tool, not to time it (tap's own limit is 180 s).
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 150_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** runs `promtool <args>`; the output is both streams, for assertion messages. */
export async function promtool(args: readonly string[], cwd?: string): Promise<RunResult & { output: string }> {
  const tool = requireTool('promtool');
  const r = await run(tool, args, cwd ? { cwd } : {});
  return { ...r, output: `${r.stdout}${r.stderr}`.trim() };
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A TCP port free on loopback right now. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'nothing yet';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
