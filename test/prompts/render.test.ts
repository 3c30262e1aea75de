// renderWav with the real espeak-ng and sox: Chinese and English texts become 8000 Hz mono
// 16-bit WAV files with sound in them; text never reaches a command line; timeouts and failures
// are reported as TtsError and leave nothing behind.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { checkVoice, renderWav, TtsError } from '../../src/prompts/render';
import { recordingSpawn, tempDir, wavStats } from './helpers';

const VOICE = 'cmn';

/** The canonical 44-byte header sox writes for PCM: checked byte by byte, not through our parser. */
function checkHeaderBytes(t: Test, file: string): void {
  const b = fs.readFileSync(file);
  t.equal(b.toString('latin1', 0, 4), 'RIFF', 'RIFF');
  t.equal(b.readUInt32LE(4), b.length - 8, 'RIFF size = file size - 8');
  t.equal(b.toString('latin1', 8, 12), 'WAVE', 'WAVE');
  t.equal(b.toString('latin1', 12, 16), 'fmt ', 'fmt chunk first');
  t.equal(b.readUInt16LE(20), 1, 'audio format 1 = PCM');
  t.equal(b.readUInt16LE(22), 1, 'one channel');
  t.equal(b.readUInt32LE(24), 8000, '8000 Hz');
  t.equal(b.readUInt32LE(28), 16000, 'byte rate 8000 * 2');
  t.equal(b.readUInt16LE(32), 2, 'block align 2');
  t.equal(b.readUInt16LE(34), 16, '16 bits per sample');
}

t.test('a Chinese and an English text, rendered for real', async (t) => {
  const dir = tempDir(t);
  for (const [name, text] of [
    ['zh', '您好，欢迎致电北京某某科技有限公司，请稍候。'],
    ['en', 'Thank you for calling. Please hold the line.'],
  ] as const) {
    await t.test(name, async (t) => {
      const file = path.join(dir, `${name}.wav`);
      const started = Date.now();
      const info = await renderWav(text, file, { voice: VOICE });
      t.comment(`${name}: ${info.frames} samples (${(info.frames / 8000).toFixed(2)} s) in ${Date.now() - started} ms`);
      checkHeaderBytes(t, file);
      const stats = wavStats(file);
      t.equal(stats.frames, info.frames, 'the header it returned is the file\'s');
      t.ok(stats.frames > 8000, 'longer than a second');
      t.ok(stats.peak > 10_000, `not silent: peak ${stats.peak} (normalised to -3 dBFS ≈ 23197)`);
      t.ok(stats.rms > 500, `not silent: rms ${stats.rms.toFixed(0)}`);
      t.same(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
    });
  }
});

t.test('the text goes to stdin, never to a command line; argument arrays, no shell', async (t) => {
  const dir = tempDir(t);
  const text = '请稍候 ${system(id)}\r\nhangup\r\n\r\n$(touch /tmp/pwned) `id` | rm -rf / ; <speak>';
  const { spawn, calls } = recordingSpawn();
  await renderWav(text, path.join(dir, 'x.wav'), { voice: VOICE, spawn });
  t.same(calls.map((c) => c.command), ['espeak-ng', 'sox'], 'espeak-ng and sox, nothing else (no sh -c)');
  for (const c of calls) {
    for (const arg of c.args) {
      t.notMatch(arg, /[$\r\n`|;<]/, `${c.command} argument ${JSON.stringify(arg)} carries nothing of the text`);
    }
  }
  t.ok(calls[0]?.args.includes('--stdin'), 'espeak-ng reads the text from stdin');
  t.notOk(calls[0]?.args.includes('-m'), 'no SSML interpretation');
  t.equal(calls[0]?.stdin, text, 'the exact text went to espeak-ng\'s stdin');
  t.ok(wavStats(path.join(dir, 'x.wav')).peak > 10_000, 'and it was spoken');
});

t.test('a voice name that could be an option is refused before anything runs', async (t) => {
  const dir = tempDir(t);
  const { spawn, calls } = recordingSpawn();
  for (const voice of ['--stdout', '-w/etc/passwd', 'cmn x', '', 'a'.repeat(65)]) {
    await t.rejects(renderWav('你好', path.join(dir, 'x.wav'), { voice, spawn }), { code: 'TTS_BAD_INPUT' }, JSON.stringify(voice));
  }
  await t.rejects(renderWav('  \n ', path.join(dir, 'x.wav'), { voice: VOICE, spawn }), { code: 'TTS_BAD_INPUT' }, 'empty text');
  t.equal(calls.length, 0, 'nothing spawned');
});

t.test('a pipeline that hangs is killed at the timeout and reported', async (t) => {
  const dir = tempDir(t);
  // espeak-ng replaced by a process that never ends; sox waits for its input for ever.
  const { spawn, calls } = recordingSpawn((command) => (command === 'espeak-ng' ? ['sleep', ['30']] : null));
  const started = Date.now();
  const err = await renderWav('你好', path.join(dir, 'x.wav'), { voice: VOICE, spawn, timeoutMs: 300 }).catch((e: unknown) => e);
  const took = Date.now() - started;
  t.ok(err instanceof TtsError, 'a TtsError');
  t.equal((err as TtsError).code, 'TTS_TIMEOUT');
  t.match((err as Error).message, /longer than 300 ms/);
  t.ok(took < 3000, `gave up after ${took} ms`);
  t.equal(calls.length, 2);
  t.same(fs.readdirSync(dir), [], 'no file, no temporary file');
});

t.test('failures are reported with the reason and leave nothing behind', async (t) => {
  const dir = tempDir(t);
  const target = path.join(dir, 'x.wav');

  // espeak-ng itself exits 0 and speaks English for an unknown voice: checkVoice catches it.
  await t.rejects(checkVoice('no-such-voice'), { code: 'TTS_BAD_INPUT', message: /espeak-ng has no voice "no-such-voice"/ }, 'unknown voice');
  for (const voice of ['cmn', 'CMN', 'sit/cmn', 'en-us', 'en+f3', 'yue']) {
    await t.resolves(checkVoice(voice), `voice ${voice} is known`);
  }
  await t.rejects(checkVoice('cmn', { espeakCommand: 'espeak-ng-not-installed' }), { code: 'TTS_FAILED' }, 'voice check without espeak-ng');

  const missing = await renderWav('你好', target, { voice: VOICE, espeakCommand: 'espeak-ng-not-installed' }).catch((e: unknown) => e);
  t.equal((missing as TtsError).code, 'TTS_FAILED', 'missing program');
  t.match((missing as Error).message, /ENOENT.*apt-get install espeak-ng sox/);

  // sox producing something that is not 8 kHz mono 16-bit (here: a stand-in writing garbage).
  const script = path.join(dir, 'fake-sox.sh');
  fs.writeFileSync(
    script,
    '#!/bin/sh\ncat >/dev/null\nprev=""\nfor a in "$@"; do\n  if [ "$a" = norm ]; then echo garbage > "$prev"; exit 0; fi\n  prev="$a"\ndone\nexit 1\n',
    { mode: 0o755 },
  );
  const badOutput = await renderWav('你好', target, { voice: VOICE, soxCommand: script }).catch((e: unknown) => e);
  t.equal((badOutput as TtsError).code, 'TTS_BAD_OUTPUT', 'output checked before it is renamed into place');

  const short = await renderWav('你', target, { voice: VOICE, minFrames: 10 * 8000 }).catch((e: unknown) => e);
  t.equal((short as TtsError).code, 'TTS_BAD_OUTPUT', 'too short for minFrames');

  t.same(fs.readdirSync(dir).filter((f) => f !== 'fake-sox.sh'), [], 'no file, no temporary file');
});

t.test('an existing file is replaced atomically, never truncated in place', async (t) => {
  const dir = tempDir(t);
  const target = path.join(dir, 'x.wav');
  await renderWav('第一', target, { voice: VOICE });
  const inode = fs.statSync(target).ino;
  await renderWav('第二个提示', target, { voice: VOICE });
  t.not(fs.statSync(target).ino, inode, 'a new file renamed over the old one');
});
