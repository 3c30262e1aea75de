/**
 * Renders the system prompt set (SYSTEM_PROMPTS, texts in system-texts.ts) into a directory with
 * the TTS pipeline. Existing files are kept unless `force`: recorded announcements dropped in
 * there are never overwritten, and running it twice gives the same result. Throws (TtsError)
 * before rendering anything when espeak-ng lacks the voice.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { SYSTEM_PROMPTS, type SystemPromptName } from './names';
import { checkVoice, renderWav, type RenderOptions } from './render';
import { SYSTEM_PROMPT_TEXTS } from './system-texts';

export interface SystemPromptsReport {
  readonly rendered: SystemPromptName[];
  readonly kept: SystemPromptName[];
  readonly failed: Array<{ name: SystemPromptName; error: string }>;
}

/** Placeholders shorter than this are suspicious (a voice that produced almost nothing). */
const MIN_FRAMES = 8000 + 1; // more than 1 s at 8 kHz

export async function renderSystemPrompts(
  outDir: string,
  opts: RenderOptions & { force?: boolean; names?: readonly SystemPromptName[] },
): Promise<SystemPromptsReport> {
  await checkVoice(opts.voice, opts);
  await fsp.mkdir(outDir, { recursive: true });
  const report: SystemPromptsReport = { rendered: [], kept: [], failed: [] };
  for (const name of opts.names ?? SYSTEM_PROMPTS) {
    const target = path.join(outDir, `${name}.wav`);
    if (!opts.force && fs.existsSync(target)) {
      report.kept.push(name);
      continue;
    }
    try {
      await renderWav(SYSTEM_PROMPT_TEXTS[name], target, { minFrames: MIN_FRAMES, ...opts });
      report.rendered.push(name);
    } catch (err) {
      report.failed.push({ name, error: (err as Error).message });
    }
  }
  return report;
}
