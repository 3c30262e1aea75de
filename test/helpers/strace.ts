/**
 * Runs a TypeScript child script under strace (which .ci/run installs) and returns the traced
 * system calls, for tests that prove what reaches the disk before what: a synchronized write
 * before a delete, a sync at commit.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';

export interface Traced {
  /** The trace, one system call a line (`-y`: descriptors shown with their paths). */
  lines: string[];
  /** How the child ended, for a failing assertion's diagnostics. */
  diagnostics: { error: string; status: number | null; stderr: string };
}

/**
 * `child` (a .ts file) run with `dir` as its argument and the given system calls traced into
 * `dir`/strace.txt; no lines when there is no trace.
 */
export function traceChild(child: string, dir: string, syscalls: readonly string[]): Traced {
  const trace = path.join(dir, 'strace.txt');
  const register = require.resolve('ts-node/register/transpile-only');
  // tap's processinfo puts its loader into NODE_OPTIONS of every child: a plain environment.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const run = spawnSync('sh', ['-c', `unset NODE_OPTIONS; exec strace -f -qq -y -o "${trace}" -e trace=${syscalls.join(',')} "${process.execPath}" -r "${register}" "${child}" "${dir}"`], {
    encoding: 'utf8',
    timeout: 60_000,
    env,
    cwd: path.join(__dirname, '..', '..'),
  });
  return {
    lines: fs.existsSync(trace) ? fs.readFileSync(trace, 'utf8').split('\n') : [],
    diagnostics: { error: String(run.error ?? ''), status: run.status, stderr: (run.stderr ?? '').slice(0, 500) },
  };
}

/**
 * traceChild for a child that writes `marker-before` and then `marker-after` (holding what it
 * did) into `dir` around the work under test: asserts that it ran to its last marker, that
 * `marker-after` holds `written`, and that both markers are in the trace, and returns the traced
 * lines between them; null when any of that failed (the assertions say why).
 */
export function traceBetweenMarkers(t: Test, child: string, dir: string, syscalls: readonly string[], written: string): string[] | null {
  const { lines, diagnostics } = traceChild(child, dir, syscalls);
  const after = path.join(dir, 'marker-after');
  if (!t.ok(fs.existsSync(after) && lines.length > 0, 'the child ran under strace to its last marker', diagnostics)) return null;
  t.equal(fs.readFileSync(after, 'utf8'), written, 'the child did its work');
  const from = lines.findIndex((l) => l.includes('marker-before'));
  const to = lines.findIndex((l) => l.includes('marker-after'));
  if (!t.ok(from >= 0 && to > from, 'both markers traced')) return null;
  return lines.slice(from + 1, to);
}
