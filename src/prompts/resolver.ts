/**
 * Maps a prompt (a `prompts` row, or a system prompt name) to the application the call session
 * runs: `playback <file>` or, with TTS_ENGINE=freeswitch, `speak <engine>|<voice>|<text>`.
 *
 * Pure given the cache index: it never renders and never touches the disk, so it is safe on a
 * call's path. A TTS prompt not (yet) rendered, a file that fails the guards, or a text with
 * nothing speakable left resolves to the caller's fallback system prompt; `fallback` says why so
 * the session can log it.
 */
import path from 'node:path';
import { SYSTEM_PROMPTS, type SystemPromptName } from './names';
import type { Settings } from '../config';
import { mediaPath } from '../esl/safe';
import type { Prompt } from '../snapshot/types';
import { normalizeTtsText, sanitizeSpeakText, ttsCacheKey } from './text';
import type { TtsCacheIndex } from './tts-renderer';

export interface PlayInstruction {
  readonly app: 'playback' | 'speak';
  readonly arg: string;
  /** Set when a fallback system prompt replaced the one asked for: the reason, for the log. */
  readonly fallback?: string;
}

/** `engine|voice` of TTS_FREESWITCH_ENGINE: module and voice names, nothing FreeSWITCH expands. */
const ENGINE_VOICE = /^[A-Za-z0-9_.-]{1,64}\|[A-Za-z0-9_.-]{1,64}$/;

export class PromptResolver {
  private readonly engine: Settings['tts']['engine'];
  private readonly voice: string;
  private readonly cacheDir: string;
  private readonly speakPrefix: string;
  /** Each system prompt's file, joined once. */
  private readonly systemFiles: ReadonlyMap<string, string>;
  /**
   * A TTS prompt row's cache key and file (a sha256 of voice and text), made once per row: a row
   * object lives as long as its configuration snapshot, and a reload makes new ones.
   */
  private readonly ttsFiles = new WeakMap<Prompt, { key: string; file: string }>();

  /**
   * Throws when the settings cannot give playable paths (a cache or prompts directory with
   * spaces or FreeSWITCH syntax, a malformed TTS_FREESWITCH_ENGINE): better at start-up than
   * on every call.
   */
  constructor(
    settings: Pick<Settings, 'tts'> & { readonly prompts: Pick<Settings['prompts'], 'systemDir'> },
    private readonly cache: TtsCacheIndex,
  ) {
    this.engine = settings.tts.engine;
    this.voice = settings.tts.voice;
    const systemDir = mediaPath('PROMPTS_DIR', settings.prompts.systemDir);
    this.systemFiles = new Map(SYSTEM_PROMPTS.map((name) => [name, path.posix.join(systemDir, `${name}.wav`)]));
    this.cacheDir = this.engine === 'espeak' ? mediaPath('TTS_CACHE_DIR', path.resolve(settings.tts.cacheDir)) : '';
    if (this.engine === 'freeswitch' && !ENGINE_VOICE.test(settings.tts.freeswitchEngine)) {
      throw new Error(`TTS_FREESWITCH_ENGINE must be "engine|voice" (letters, digits, _ . -), not ${JSON.stringify(settings.tts.freeswitchEngine)}`);
    }
    this.speakPrefix = `${settings.tts.freeswitchEngine}|`;
  }

  /** A system prompt: always a file in PROMPTS_DIR (rendered by `npm run prompts` or recorded). */
  system(name: SystemPromptName): PlayInstruction {
    const file = this.systemFiles.get(name);
    if (file === undefined) throw new Error(`unknown system prompt ${String(name)}`);
    return { app: 'playback', arg: file };
  }

  /**
   * A prompt row (file wins over tts_text, as the table says), or `fallback` when there is no row
   * or it cannot be played now.
   */
  resolve(prompt: Prompt | null | undefined, fallback: SystemPromptName): PlayInstruction {
    if (!prompt) return this.system(fallback);
    if (prompt.file !== null) {
      try {
        return { app: 'playback', arg: mediaPath('prompt file', prompt.file) };
      } catch (err) {
        return this.fallback(fallback, `prompt ${prompt.id}: ${(err as Error).message}`);
      }
    }
    if (prompt.ttsText === null || normalizeTtsText(prompt.ttsText) === '') {
      return this.fallback(fallback, `prompt ${prompt.id} has neither a file nor a tts_text`);
    }
    if (this.engine === 'freeswitch') {
      const text = sanitizeSpeakText(prompt.ttsText);
      if (text === null) return this.fallback(fallback, `prompt ${prompt.id}: nothing speakable left in tts_text`);
      return { app: 'speak', arg: this.speakPrefix + text };
    }
    let tts = this.ttsFiles.get(prompt);
    if (tts === undefined) {
      const key = ttsCacheKey(this.voice, prompt.ttsText);
      tts = { key, file: path.posix.join(this.cacheDir, `${key}.wav`) };
      this.ttsFiles.set(prompt, tts);
    }
    if (!this.cache.has(tts.key)) return this.fallback(fallback, `prompt ${prompt.id}: tts_text not rendered (yet, or rendering failed)`);
    return { app: 'playback', arg: tts.file };
  }

  /** resolve() by prompt id (tenants.welcome_prompt_id, routing_rules.target_id …); null = fallback. */
  resolveId(prompts: ReadonlyMap<number, Prompt>, id: number | null | undefined, fallback: SystemPromptName): PlayInstruction {
    if (id === null || id === undefined) return this.system(fallback);
    const prompt = prompts.get(id);
    return prompt ? this.resolve(prompt, fallback) : this.fallback(fallback, `prompt ${id} not in the configuration`);
  }

  private fallback(name: SystemPromptName, reason: string): PlayInstruction {
    return { ...this.system(name), fallback: reason };
  }
}
