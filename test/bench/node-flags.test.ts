/**
 * The Node.js flags the daemon runs with (package.json `config.nodeFlags`): `npm start` passes
 * them, this node accepts them (a flag it refused would stop the daemon from starting at all),
 * the benchmark starts the daemon with the same ones, and the README names them.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { GENERATOR_NODE_FLAGS, generatorForkOptions } from '../../bench/lib';
import { intendedNodeFlags } from '../../src/node-flags';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; config: { nodeFlags: string } };

t.test('npm start passes config.nodeFlags to the daemon', async (t) => {
  t.match(pkg.scripts.start, /node \$npm_package_config_nodeFlags dist\/src\/main\.js$/);
  t.ok(pkg.config.nodeFlags.trim().length > 0, 'flags are set');
});

t.test('as the start script\'s shell splits them, node accepts the flags; the bench uses the same', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-flags-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'argv.js');
  fs.writeFileSync(script, 'process.stdout.write(JSON.stringify(process.execArgv));\n');
  // What npm does for `node $npm_package_config_nodeFlags …`: the variable, split by sh.
  const out = execFileSync('sh', ['-c', `"${process.execPath}" $npm_package_config_nodeFlags "${script}"`], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, npm_package_config_nodeFlags: pkg.config.nodeFlags },
  });
  t.same(JSON.parse(out), intendedNodeFlags(), 'node runs with exactly the flags the bench and the daemon read (src/node-flags.ts)');
});

t.test('the README shows the command npm start runs', async (t) => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  t.ok(readme.includes(`\`node ${pkg.config.nodeFlags} dist/src/main.js\``), 'README "Node.js flags" names them');
});

t.test('the load generator is forked with its own flags, which node accepts, whatever node the bench runs under', async (t) => {
  // The bench's own process runs without them (npm run bench: node dist/bench/run.js), and fork()
  // would hand the generator the bench's flags: a generator without its own would mark its old
  // generation every ~300 ms once it had warmed up a daemon and add its pauses to every controller's setup
  // tail (bench/lib.ts GENERATOR_NODE_FLAGS).
  t.same(generatorForkOptions().execArgv, [...GENERATOR_NODE_FLAGS]);
  t.ok(GENERATOR_NODE_FLAGS.length > 0);
  const out = execFileSync(process.execPath, [...GENERATOR_NODE_FLAGS, '-e', 'process.stdout.write(JSON.stringify(process.execArgv))'], { encoding: 'utf8' });
  t.same((JSON.parse(out) as string[]).slice(0, GENERATOR_NODE_FLAGS.length), [...GENERATOR_NODE_FLAGS], 'node starts with them');
});
