// .ci/failures.mjs names failed assertions above CI's closing line. It reads tap's own output, so
// this test runs tap on a file that fails on purpose and checks what the script prints from it.
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');
const script = join(root, '.ci', 'failures.mjs');

// Inside the checkout, so that the sample's `import 'tap'` resolves to this project's tap.
function sampleDir(t: Test): string {
  mkdirSync(join(root, 'var'), { recursive: true });
  const dir = mkdtempSync(join(root, 'var', 'ci-failures-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Runs tap on `source`. `timeoutS`: tap's per-file timeout; short only for the sample that hangs
 * on purpose. A sample that should pass got 5 s once too, and on a loaded CI machine tap's start
 * alone took longer: the passing sample was "killed by the timeout" and this test failed by chance.
 */
function runTap(dir: string, source: string, timeoutS = 120): string {
  const file = join(dir, 'sample.test.mjs');
  writeFileSync(file, source);
  const tap = join(root, 'node_modules', '.bin', 'tap');
  const run = spawnSync(tap, ['--disable-coverage', '--reporter=tap', `--timeout=${timeoutS}`, file], { cwd: dir, encoding: 'utf8' });
  const out = join(dir, 'tap.out');
  writeFileSync(out, run.stdout + run.stderr);
  return out;
}

function failures(out: string, max?: number): string {
  return execFileSync(process.execPath, [script, out, ...(max === undefined ? [] : [String(max)])], { encoding: 'utf8' });
}

t.test('a nested failure is named by its file, its subtests and its assertion, with the comparison', async (t) => {
  const dir = sampleDir(t);
  const out = runTap(dir, `import t from 'tap';
t.test('outer', async (t) => {
  t.test('inner', async (t) => { t.equal(1, 2, 'one is two'); t.ok(true, 'fine'); });
  t.ok(true, 'outer fine');
});
t.ok(true, 'top fine');
`);
  const text = failures(out);
  t.match(text, /^== failed assertions\n/);
  t.match(text, /not ok: .*sample\.test\.mjs > outer > inner > one is two\n/);
  t.match(text, /compare: ===/);
  t.match(text, /lineNumber: 3/);
  t.match(text, /\n {4}-2\n {4}\+1\n/, 'the diff');
  t.notMatch(text, /fine/, 'passing assertions are not listed');
  t.notMatch(text, /> outer\n|> inner\n/, 'a subtest that failed only because of its child is not listed again');
  t.notMatch(text, /source:|stack:/, 'source and stack are left out');
});

t.test('a file killed by the timeout is named', async (t) => {
  const dir = sampleDir(t);
  const out = runTap(dir, `import t from 'tap';
t.test('hangs', () => new Promise(() => { setInterval(() => {}, 1000); }));
`, 5);
  const text = failures(out);
  t.match(text, /not ok: .*sample\.test\.mjs/);
  t.match(text, /signal: SIGTERM|timeout/);
});

t.test('nothing is printed when everything passed, and long lists are cut', async (t) => {
  const dir = sampleDir(t);
  t.equal(failures(runTap(dir, `import t from 'tap';\nt.ok(true);\n`)), '');
  const many = runTap(dir, `import t from 'tap';\nfor (let i = 0; i < 30; i++) t.equal(i, -1, 'n' + i);\n`);
  const text = failures(many, 10);
  t.match(text, /\.\.\. and \d+ more lines\n$/);
  t.equal(text.trimEnd().split('\n').length, 12, 'the heading, 10 lines and the count of the rest');
});
