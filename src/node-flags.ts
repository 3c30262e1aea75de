/**
 * The Node.js flags the daemon is meant to run with: package.json `config.nodeFlags`, which
 * `npm start` passes to node (README "Node.js flags": today `--initial-old-space-size`, without
 * which V8 runs a full collection after nearly every scavenge, and `--no-allocation-site-pretenuring`,
 * without which a burst of calls leaves every later call's objects kept by the young generation's
 * collections until a full one). The benchmark and the tests start
 * the daemon with them; the daemon warns at start-up when it runs without them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { INSTALL_DIR } from './config';

/** The flags of package.json `config.nodeFlags`, split as the start script's shell splits them; none when unreadable. */
export function intendedNodeFlags(installDir: string = INSTALL_DIR): string[] {
  let flags: unknown;
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(installDir, 'package.json'), 'utf8')) as { config?: { nodeFlags?: unknown } };
    flags = pkg.config?.nodeFlags;
  } catch {
    return [];
  }
  return typeof flags === 'string' ? flags.split(/\s+/).filter((f) => f !== '') : [];
}

/** The intended flags a process started with `execArgv` lacks (node reads `_` and `-` in a flag's name alike). */
export function missingNodeFlags(execArgv: readonly string[], intended: readonly string[]): string[] {
  const spelling = (flag: string): string => {
    const eq = flag.indexOf('=');
    return eq < 0 ? flag.replace(/_/g, '-') : `${flag.slice(0, eq).replace(/_/g, '-')}${flag.slice(eq)}`;
  };
  const have = new Set(execArgv.map(spelling));
  return intended.filter((f) => !have.has(spelling(f)));
}
