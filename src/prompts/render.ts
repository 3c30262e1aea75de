/**
 * Renders one text to an 8 kHz mono 16-bit WAV file with espeak-ng piped through sox, the same
 * pipeline for tenant TTS prompts (tts-renderer.ts) and the system prompts (`npm run prompts`).
 *
 * The text never reaches a command line: espeak-ng reads it from stdin (`--stdin`, no SSML `-m`,
 * so `<`, `${…}` and CR/LF are just text to speak), and both programs are started with argument
 * arrays, never through a shell. The file appears atomically: sox writes a temporary file in the
 * target's directory, which is checked (RIFF header, 8000 Hz, mono, 16-bit, not empty), synced
 * and renamed over the target, so FreeSWITCH never plays a half-written prompt.
 */
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { readWavInfo, telephonyFormatProblem, type WavInfo } from './wav';

export type SpawnFn = (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

export interface RenderOptions {
  /** espeak-ng voice, e.g. `cmn` (Mandarin; reads Latin text as English). */
  voice: string;
  /** Whole pipeline, espeak-ng and sox together; both are killed when it runs out. Default 30 s. */
  timeoutMs?: number;
  /** Speech rate in words per minute; 150 is a calm announcement pace. */
  wordsPerMinute?: number;
  /** Fewest sample frames the result must have (the system prompts ask for more than 1 s). */
  minFrames?: number;
  /** child_process.spawn, or a stand-in that counts or fakes spawns (tests). */
  spawn?: SpawnFn;
  espeakCommand?: string;
  soxCommand?: string;
}

export type TtsErrorCode = 'TTS_BAD_INPUT' | 'TTS_TIMEOUT' | 'TTS_FAILED' | 'TTS_BAD_OUTPUT';

export class TtsError extends Error {
  override readonly name = 'TtsError';
  constructor(
    readonly code: TtsErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** espeak-ng voices: `cmn`, `en-us`, `sit/cmn`, `mb-cn1`, `en+f3`; never an option (`-…`). */
const VOICE = /^[A-Za-z0-9][A-Za-z0-9_.+/-]{0,63}$/;
const STDERR_KEEP = 2000;

/** The sox arguments after the input: what FreeSWITCH plays on a G.711 call without resampling. */
export const SOX_OUTPUT_FORMAT = ['-t', 'wav', '-r', '8000', '-c', '1', '-b', '16', '-e', 'signed-integer'] as const;
/** Normalise to -3 dBFS; 300 ms of silence at both ends so the first syllable is not clipped. */
export const SOX_EFFECTS = ['norm', '-3', 'pad', '0.3', '0.3'] as const;

/** Renders `text` into `target` (replaced atomically); resolves with the header of the result. */
export async function renderWav(text: string, target: string, opts: RenderOptions): Promise<WavInfo> {
  if (text.trim() === '') throw new TtsError('TTS_BAD_INPUT', 'empty text');
  if (!VOICE.test(opts.voice)) throw new TtsError('TTS_BAD_INPUT', `not an espeak-ng voice name: ${JSON.stringify(opts.voice.slice(0, 70))}`);
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  try {
    await runPipeline(text, tmp, opts);
    const info = await checkOutput(tmp, opts.minFrames ?? 1);
    const handle = await fsp.open(tmp, 'r');
    try {
      await handle.sync(); // the rename must not outlive the data on a crash
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, target);
    return info;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

async function checkOutput(file: string, minFrames: number): Promise<WavInfo> {
  let info: WavInfo;
  try {
    info = readWavInfo(await fsp.readFile(file));
  } catch (err) {
    throw new TtsError('TTS_BAD_OUTPUT', `sox wrote no usable WAV: ${(err as Error).message}`);
  }
  const problem = telephonyFormatProblem(info);
  if (problem) throw new TtsError('TTS_BAD_OUTPUT', `rendered WAV: ${problem}`);
  if (info.frames < minFrames) throw new TtsError('TTS_BAD_OUTPUT', `rendered WAV has ${info.frames} samples, fewer than ${minFrames}`);
  return info;
}

/** espeak-ng (text on stdin, WAV on stdout) | sox (WAV on stdin, 8 kHz WAV to `out`). */
function runPipeline(text: string, out: string, opts: RenderOptions): Promise<void> {
  const spawn = opts.spawn ?? nodeSpawn;
  const espeakCmd = opts.espeakCommand ?? 'espeak-ng';
  const soxCmd = opts.soxCommand ?? 'sox';
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // -b 1: the input is UTF-8 whatever the locale (CI often runs with LANG=C).
  const espeakArgs = ['-v', opts.voice, '-s', String(opts.wordsPerMinute ?? 150), '-b', '1', '--stdin', '--stdout'];
  const soxArgs = ['-q', '-t', 'wav', '-', ...SOX_OUTPUT_FORMAT, out, ...SOX_EFFECTS];

  return new Promise<void>((resolve, reject) => {
    const children: ChildProcess[] = [];
    const stderr = new Map<string, string>();
    let settled = false;
    let exited = 0;

    const finish = (err: TtsError | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => finish(new TtsError('TTS_TIMEOUT', `espeak-ng | sox took longer than ${timeoutMs} ms`)), timeoutMs);

    const start = (name: string, cmd: string, args: string[]): ChildProcess => {
      const child = spawn(cmd, args, { stdio: ['pipe', name === 'sox' ? 'ignore' : 'pipe', 'pipe'] });
      children.push(child);
      stderr.set(name, '');
      child.stderr?.on('data', (chunk: Buffer) => {
        const before = stderr.get(name) ?? '';
        if (before.length < STDERR_KEEP) stderr.set(name, (before + chunk.toString('utf8')).slice(0, STDERR_KEEP));
      });
      // A child that dies early closes its stdin: EPIPE on our side is reported by its exit code.
      child.stdin?.on('error', () => undefined);
      child.on('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'ENOENT' ? ` (is ${cmd} installed? Debian: apt-get install espeak-ng sox)` : '';
        finish(new TtsError('TTS_FAILED', `${cmd}: ${err.message}${hint}`));
      });
      child.on('close', (code, signal) => {
        if (code !== 0) {
          const why = signal ? `killed by ${signal}` : `exit code ${code}`;
          const detail = (stderr.get(name) ?? '').trim().split('\n').slice(-3).join(' | ');
          finish(new TtsError('TTS_FAILED', `${cmd} failed (${why})${detail ? `: ${detail}` : ''}`));
          return;
        }
        if (++exited === 2) finish(null);
      });
      return child;
    };

    const espeak = start('espeak', espeakCmd, espeakArgs);
    const sox = start('sox', soxCmd, soxArgs);
    if (espeak.stdout && sox.stdin) espeak.stdout.pipe(sox.stdin);
    else if (sox.stdin) sox.stdin.end();
    espeak.stdin?.end(text, 'utf8');
  });
}

/**
 * Fails unless espeak-ng knows `voice` (by language, voice name or voice file, as `-v` takes it;
 * a `+variant` suffix is allowed). Needed because espeak-ng given an unknown voice exits 0 and
 * speaks with its default English voice: a typo in TTS_VOICE would turn every Chinese prompt
 * into English letter names without an error.
 */
export async function checkVoice(voice: string, opts: Pick<RenderOptions, 'spawn' | 'espeakCommand' | 'timeoutMs'> = {}): Promise<void> {
  if (!VOICE.test(voice)) throw new TtsError('TTS_BAD_INPUT', `not an espeak-ng voice name: ${JSON.stringify(voice.slice(0, 70))}`);
  const listing = await collect(opts.espeakCommand ?? 'espeak-ng', ['--voices'], opts);
  const wanted = voice.split('+')[0].toLowerCase();
  for (const line of listing.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const file = (cols[4] ?? '').toLowerCase();
    const names = [cols[1], cols[3], file, file.split('/').pop()].map((c) => (c ?? '').toLowerCase());
    if (names.includes(wanted)) return;
  }
  throw new TtsError('TTS_BAD_INPUT', `espeak-ng has no voice "${voice}" (\`espeak-ng --voices\` lists them; cmn = Mandarin)`);
}

/** Runs a program without a shell and resolves with its stdout (exit 0), within the timeout. */
function collect(cmd: string, args: string[], opts: Pick<RenderOptions, 'spawn' | 'timeoutMs'>): Promise<string> {
  const spawn = opts.spawn ?? nodeSpawn;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise<string>((resolve, reject) => {
    let out = '';
    let settled = false;
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const finish = (err: TtsError | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        reject(err);
      } else {
        resolve(out);
      }
    };
    const timer = setTimeout(() => finish(new TtsError('TTS_TIMEOUT', `${cmd} ${args.join(' ')} took longer than ${timeoutMs} ms`)), timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.on('error', (err) => finish(new TtsError('TTS_FAILED', `${cmd}: ${err.message}`)));
    child.on('close', (code, signal) => finish(code === 0 ? null : new TtsError('TTS_FAILED', `${cmd} ${args.join(' ')} failed (${signal ?? `exit code ${code}`})`)));
  });
}
