// The system prompt set: one text per contract name, rendered by `npm run prompts` (and through
// it freeswitch/sounds/generate.sh) with the TTS pipeline; existing files kept unless --force.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SYSTEM_PROMPTS } from '../../src/calls/prompts';
import { renderSystemPrompts } from '../../src/prompts/system-prompts';
import { SYSTEM_PROMPT_TEXTS } from '../../src/prompts/system-texts';
import { recordingSpawn, tempDir, wavStats } from './helpers';

const REPO = path.join(__dirname, '..', '..');

t.test('a text for every system prompt the flow uses, and no other', async (t) => {
  t.same(Object.keys(SYSTEM_PROMPT_TEXTS).sort(), [...SYSTEM_PROMPTS].sort());
  for (const name of ['not_in_service', 'blocked', 'capped', 'enter_pin', 'wrong_pin', 'after_hours', 'all_busy', 'leave_message'] as const) {
    t.match(SYSTEM_PROMPT_TEXTS[name], /[\u4e00-\u9fff].*[A-Za-z]/, `${name}: Chinese, then English`);
  }
});

t.test('renders into a directory; keeps existing files; --force renders again', async (t) => {
  const dir = tempDir(t);
  const recorded = path.join(dir, 'welcome.wav');
  fs.writeFileSync(recorded, 'a recorded announcement');
  const { spawn: counting, calls } = recordingSpawn();
  const names = ['welcome', 'capped', 'wrong_pin'] as const;
  const first = await renderSystemPrompts(dir, { voice: 'cmn', spawn: counting, names });
  t.same(first, { rendered: ['capped', 'wrong_pin'], kept: ['welcome'], failed: [] });
  t.equal(fs.readFileSync(recorded, 'utf8'), 'a recorded announcement', 'a recorded file is never overwritten');
  for (const name of ['capped', 'wrong_pin']) {
    const stats = wavStats(path.join(dir, `${name}.wav`));
    t.equal(stats.sampleRate, 8000);
    t.equal(stats.channels, 1);
    t.equal(stats.bitsPerSample, 16);
    t.ok(stats.frames > 8000, `${name}: more than a second`);
    t.ok(stats.peak > 10_000, `${name}: not silent`);
  }
  const espeakCalls = calls.filter((c) => c.command === 'espeak-ng' && c.args.includes('--stdin'));
  t.same(espeakCalls.map((c) => c.stdin), [SYSTEM_PROMPT_TEXTS.capped, SYSTEM_PROMPT_TEXTS.wrong_pin], 'the texts of the shared list, through stdin');

  const again = await renderSystemPrompts(dir, { voice: 'cmn', names });
  t.same(again, { rendered: [], kept: ['welcome', 'capped', 'wrong_pin'], failed: [] }, 'idempotent');
  const forced = await renderSystemPrompts(dir, { voice: 'cmn', names: ['welcome'], force: true });
  t.same(forced.rendered, ['welcome'], '--force replaces');
  t.equal(wavStats(recorded).sampleRate, 8000);
});

t.test('an unknown voice stops before anything is written', async (t) => {
  const dir = tempDir(t);
  await t.rejects(renderSystemPrompts(path.join(dir, 'out'), { voice: 'no-such-voice' }), { code: 'TTS_BAD_INPUT' });
  t.notOk(fs.existsSync(path.join(dir, 'out')));
});

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP') && !k.startsWith('_TAPJS')));
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, '-r', 'ts-node/register/transpile-only', path.join(REPO, 'src', 'cli', 'prompts.ts'), ...args], {
    env: { ...base, TS_NODE_PROJECT: path.join(REPO, 'tsconfig.json'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

t.test('npm run prompts (the CLI): the whole set into --out, or PROMPTS_DIR; usage errors exit 2', async (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'out');
  const run = await runCli(['--out', out], {});
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, new RegExp(`prompts: ${SYSTEM_PROMPTS.length} rendered, 0 kept, 0 failed, in ${out}`));
  t.same(fs.readdirSync(out).sort(), SYSTEM_PROMPTS.map((n) => `${n}.wav`).sort(), 'every contract file, nothing else');

  const viaEnv = path.join(dir, 'env');
  fs.mkdirSync(viaEnv);
  for (const n of SYSTEM_PROMPTS) fs.copyFileSync(path.join(out, `${n}.wav`), path.join(viaEnv, `${n}.wav`));
  const kept = await runCli([], { PROMPTS_DIR: viaEnv });
  t.equal(kept.code, 0);
  t.match(kept.stdout, `0 rendered, ${SYSTEM_PROMPTS.length} kept`, 'PROMPTS_DIR by default; existing kept');

  const bad = await runCli(['--bogus'], {});
  t.equal(bad.code, 2);
  t.match(bad.stderr, /usage: npm run prompts/);

  const badVoice = await runCli(['--out', path.join(dir, 'v')], { TTS_VOICE: 'no-such-voice' });
  t.equal(badVoice.code, 2);
  t.match(badVoice.stderr, /no voice "no-such-voice"/);
});
