/**
 * Runs a .ts script of the tests in a Node.js process of its own and parses what it prints as JSON.
 * For what cannot be seen from inside the test's process: a peer that reads its socket while the
 * daemon works (test/calls/place-call-child.ts), collections run with --expose-gc
 * (test/esl/young-gc-child.ts).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';

export function runTsChild<T>(script: string, args: readonly string[] = [], nodeFlags: readonly string[] = []): Promise<T> {
  const register = require.resolve('ts-node/register/transpile-only');
  return new Promise((resolve, reject) => {
    // tap's processinfo puts its loader into NODE_OPTIONS of every child: a plain environment (as test/helpers/strace.ts).
    execFile('sh', ['-c', 'unset NODE_OPTIONS; exec "$0" "$@"', process.execPath, ...nodeFlags, '-r', register, script, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      cwd: path.join(__dirname, '..', '..'),
      timeout: 60_000,
    }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as T)));
  });
}
