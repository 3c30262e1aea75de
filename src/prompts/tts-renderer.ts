/**
 * The TTS cache: `prompts.tts_text` rendered ahead of time into `<cacheDir>/<sha256>.wav`.
 *
 * Rendering never happens on a call's path. `prepare()` runs in the background after each
 * snapshot load and renders what is missing, a few at a time; `has()` (the PromptResolver's
 * cache index) is synchronous and only reads an in-memory set. A text is rendered once: the set,
 * a look at the directory (another daemon sharing it may have rendered it) and one in-flight
 * promise per key keep it so. A failed rendering is logged and reported; until a later prepare()
 * succeeds, the resolver plays the caller's fallback system prompt instead.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Prompt } from '../snapshot/types';
import { checkVoice, renderWav, type RenderOptions } from './render';
import { normalizeTtsText, ttsCacheKey } from './text';

/** What the resolver needs to know about the cache: is this key's WAV there. */
export interface TtsCacheIndex {
  has(key: string): boolean;
}

export interface TtsRendererOptions extends RenderOptions {
  /** settings.tts.cacheDir; made absolute (FreeSWITCH needs absolute paths). */
  cacheDir: string;
  /** Renderings at once (each is an espeak-ng and a sox process). Default 2. */
  concurrency?: number;
  log?: Logger;
}

export interface PrepareFailure {
  readonly promptId: number;
  readonly key: string;
  readonly error: string;
}

export interface PrepareReport {
  /** Texts rendered by this call. */
  readonly rendered: number;
  /** Texts already in the cache. */
  readonly cached: number;
  /** Prompts whose text could not be rendered (they fall back to a system prompt). */
  readonly failed: readonly PrepareFailure[];
}

const CACHED_FILE = /^([0-9a-f]{64})\.wav$/;
/** Temporary files of renderings that died with their process (ours or another daemon's). */
const STALE_TMP_MS = 60 * 60 * 1000;

export class TtsRenderer implements TtsCacheIndex {
  readonly cacheDir: string;
  private readonly ready = new Set<string>();
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private readonly errors = new Map<string, string>();
  private opened: Promise<void> | null = null;
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly options: TtsRendererOptions) {
    this.cacheDir = path.resolve(options.cacheDir);
  }

  /**
   * Checks that espeak-ng has the voice, creates the cache directory and indexes what it holds.
   * Idempotent (retried after a failure); prepare() calls it.
   */
  open(): Promise<void> {
    this.opened ??= this.scan().catch((err: unknown) => {
      this.opened = null; // let the next prepare() try again
      throw err;
    });
    return this.opened;
  }

  has(key: string): boolean {
    return this.ready.has(key);
  }

  /** The cached file of a key (whether or not it exists yet). */
  fileFor(key: string): string {
    return path.join(this.cacheDir, `${key}.wav`);
  }

  keyFor(text: string): string {
    return ttsCacheKey(this.options.voice, text);
  }

  /** The error of the last failed rendering of a key, if it has not been rendered since. */
  lastError(key: string): string | undefined {
    return this.errors.get(key);
  }

  /**
   * Renders every TTS prompt (tts_text without a file) not yet cached. Never rejects: failures
   * are logged and reported. Call it without awaiting after each snapshot load.
   */
  async prepare(prompts: Iterable<Prompt>): Promise<PrepareReport> {
    const byKey = new Map<string, { text: string; ids: number[] }>();
    for (const prompt of prompts) {
      if (prompt.file !== null || prompt.ttsText === null || normalizeTtsText(prompt.ttsText) === '') continue;
      const key = this.keyFor(prompt.ttsText);
      const entry = byKey.get(key) ?? { text: prompt.ttsText, ids: [] };
      entry.ids.push(prompt.id);
      byKey.set(key, entry);
    }
    let rendered = 0;
    let cached = 0;
    const failed: PrepareFailure[] = [];
    try {
      await this.open();
    } catch (err) {
      const error = `TTS cache ${this.cacheDir}: ${(err as Error).message}`;
      for (const [key, { ids }] of byKey) for (const promptId of ids) failed.push({ promptId, key, error });
      this.reportFailures(failed);
      return { rendered, cached, failed };
    }
    await Promise.all(
      [...byKey].map(async ([key, { text, ids }]) => {
        if (this.ready.has(key)) {
          cached++;
          return;
        }
        try {
          if (await this.ensure(key, text)) rendered++;
          else cached++;
        } catch (err) {
          for (const promptId of ids) failed.push({ promptId, key, error: (err as Error).message });
        }
      }),
    );
    this.reportFailures(failed);
    if (rendered > 0) this.options.log?.info({ rendered, cached, cache_dir: this.cacheDir }, 'TTS prompts rendered');
    return { rendered, cached, failed };
  }

  /** Renders one text into the cache unless it is there; resolves with its file. */
  async render(text: string): Promise<string> {
    await this.open();
    const key = this.keyFor(text);
    if (!this.ready.has(key)) await this.ensure(key, text);
    return this.fileFor(key);
  }

  /** True when this call rendered it, false when it was there already (or another call rendered it). */
  private async ensure(key: string, text: string): Promise<boolean> {
    const running = this.inFlight.get(key);
    if (running) {
      await running;
      return false;
    }
    const job = this.limited(async () => {
      if (this.ready.has(key)) return false;
      if (fs.existsSync(this.fileFor(key))) {
        this.ready.add(key); // rendered by another daemon sharing the directory
        return false;
      }
      await renderWav(normalizeTtsText(text), this.fileFor(key), this.options);
      this.ready.add(key);
      return true;
    }).then(
      (rendered) => {
        this.errors.delete(key);
        return rendered;
      },
      (err: unknown) => {
        this.errors.set(key, (err as Error).message);
        throw err;
      },
    );
    this.inFlight.set(key, job);
    try {
      return await job;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    const max = Math.max(1, this.options.concurrency ?? 2);
    if (this.active >= max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  private reportFailures(failed: readonly PrepareFailure[]): void {
    for (const f of failed) {
      this.options.log?.warn({ prompt_id: f.promptId, tts_key: f.key, err: f.error }, 'TTS prompt could not be rendered; callers hear the system prompt instead');
    }
  }

  private async scan(): Promise<void> {
    await checkVoice(this.options.voice, this.options);
    await fsp.mkdir(this.cacheDir, { recursive: true });
    const now = Date.now();
    for (const name of await fsp.readdir(this.cacheDir)) {
      const cached = CACHED_FILE.exec(name);
      if (cached) {
        this.ready.add(cached[1]);
      } else if (name.startsWith('.') && name.endsWith('.tmp')) {
        const file = path.join(this.cacheDir, name);
        const stat = await fsp.stat(file).catch(() => null);
        if (stat && now - stat.mtimeMs > STALE_TMP_MS) await fsp.rm(file, { force: true });
      }
    }
  }
}
