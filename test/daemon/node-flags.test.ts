/**
 * The daemon's Node.js flags (src/node-flags.ts): which of package.json `config.nodeFlags` a
 * process lacks, and the warning the real entry point logs at start-up when node was started
 * without them (a process manager that runs `node dist/src/main.js` by hand).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { intendedNodeFlags, missingNodeFlags } from '../../src/node-flags';
import { startDaemonProcess } from './spawn';

const WARNING = 'node was started without the flags npm start passes';

t.test('missing flags: by name and value, node\'s _ and - alike', async (t) => {
  const intended = ['--initial-old-space-size=128'];
  t.same(missingNodeFlags([], intended), intended);
  t.same(missingNodeFlags(['--initial-old-space-size=128'], intended), []);
  t.same(missingNodeFlags(['--initial_old_space_size=128', '--cpu-prof'], intended), [], 'the underscore spelling is the same flag');
  t.same(missingNodeFlags(['--initial-old-space-size=64'], intended), intended, 'another value is not the intended flag');
  t.same(missingNodeFlags(['--max-old-space-size=4096'], []), [], 'nothing intended, nothing missing');
});

t.test('the intended flags come from package.json; an unreadable one means none', async (t) => {
  t.ok(intendedNodeFlags().includes('--initial-old-space-size=128'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-flags-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.same(intendedNodeFlags(dir), [], 'no package.json');
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "config": { "nodeFlags": 128 } }');
  t.same(intendedNodeFlags(dir), [], 'not a string');
  fs.writeFileSync(path.join(dir, 'package.json'), '{ not json');
  t.same(intendedNodeFlags(dir), [], 'not JSON');
});

t.test('the daemon warns at start-up when node was started without them, and not when with them', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-flags-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = (name: string): Record<string, string> => ({
    DATABASE_URL: `sqlite:${path.join(dir, `${name}.db`)}`, CDR_SPOOL_DIR: path.join(dir, name, 'spool'), TTS_CACHE_DIR: path.join(dir, name, 'tts'), REPORTS_DIR: path.join(dir, name, 'reports'),
  });
  for (const [name, flags] of [['bare', []], ['flagged', intendedNodeFlags()]] as const) {
    const daemon = startDaemonProcess(env(name), undefined, flags);
    t.teardown(() => void daemon.child.kill('SIGKILL'));
    await daemon.listening;
    daemon.child.kill('SIGTERM');
    t.equal(await daemon.exited, 0, `${name}: stops cleanly`);
    const warned = daemon.stdout().split('\n').filter((line) => line.includes(WARNING));
    if (name === 'bare') {
      t.equal(warned.length, 1, 'bare: one warning');
      t.match(warned[0], /"level":40/, 'at warn');
      t.ok(warned[0].includes(`"missing":${JSON.stringify(intendedNodeFlags())}`), `naming every intended flag: ${warned[0]}`);
    } else {
      t.equal(warned.length, 0, 'started as npm start starts it: no warning');
    }
  }
});
