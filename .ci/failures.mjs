// Reads node-tap's TAP output (the file named on the command line) and prints every failed
// assertion in a few lines: the test file, the chain of subtests, the assertion's name, where it
// failed and what it compared. CI's log is often read from its tail only, so .ci/run prints this
// just above its closing "N passed, N failed" line: a failure that happens once in twenty runs
// has to be named by the run it happened in.
import { readFileSync } from 'node:fs';
import { argv, stdout } from 'node:process';

const MAX_LINES = Number(argv[3] ?? 80);
// Keys of an assertion's YAML block worth seeing; `source` and `stack` repeat what `at` says.
const KEEP = new Set(['at', 'compare', 'found', 'wanted', 'doesNotHave', 'pattern', 'message', 'code',
  'signal', 'exitCode', 'diff', 'timeout', 'expired', 'test', 'error']);
const SKIP_IN_AT = new Set(['columnNumber', 'typeName', 'methodName', 'functionName']);

const lines = readFileSync(argv[2], 'utf8').split('\n');
const out = [];
const path = []; // subtest names by depth: path[d] is the subtest whose assertions sit at depth d + 1
for (let i = 0; i < lines.length; i++) {
  const line = lines[i];
  const indent = line.length - line.trimStart().length;
  const depth = indent / 4;
  const text = line.trim();
  const subtest = /^# Subtest: (.*)$/.exec(text);
  if (subtest) {
    path.length = depth;
    path[depth] = subtest[1];
    continue;
  }
  const failed = /^not ok \d+ - (.*?)(?: # time=[\d.]+m?s)?$/.exec(text);
  if (!failed) continue;
  // A subtest that failed because something inside it did is reported by that inner line.
  const isSubtestSummary = path[depth] !== undefined && path[depth] === failed[1] && hasFailureInside(i, depth);
  if (isSubtestSummary) continue;
  out.push(`not ok: ${[...path.slice(0, depth), failed[1]].join(' > ')}`);
  if (lines[i + 1]?.trim() === '---') {
    const base = lines[i + 1].length - lines[i + 1].trimStart().length;
    let keeping = false;
    for (let j = i + 2; j < lines.length && lines[j].trim() !== '...'; j++) {
      const field = lines[j].trim();
      const at = lines[j].length - field.length;
      const key = /^([\w-]+):/.exec(field)?.[1];
      if (at === base && key !== undefined) keeping = KEEP.has(key);
      else if (key !== undefined && SKIP_IN_AT.has(key)) continue;
      if (keeping && field !== '') out.push(`    ${field}`);
    }
  }
}

function hasFailureInside(summaryIndex, depth) {
  for (let j = summaryIndex - 1; j >= 0; j--) {
    const line = lines[j];
    const indent = line.length - line.trimStart().length;
    if (indent / 4 <= depth && /^# Subtest: /.test(line.trim())) return false;
    if (indent / 4 > depth && /^not ok /.test(line.trim())) return true;
  }
  return false;
}

if (out.length > 0) {
  const shown = out.slice(0, MAX_LINES);
  if (out.length > MAX_LINES) shown.push(`... and ${out.length - MAX_LINES} more lines`);
  stdout.write(`== failed assertions\n${shown.join('\n')}\n`);
}
