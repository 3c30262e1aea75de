/**
 * Which prompt files the daemon may ask FreeSWITCH to play are not there. FreeSWITCH says nothing
 * useful when one is missing: `play_and_get_digits` returns at once with no digits and
 * `Application-Response: _none_`, `playback` answers FILE NOT FOUND (captures
 * daemon-pin-prompt-file-missing, outbound-plain-missing-file-…): a PIN tenant's callers were
 * rejected within a second without hearing anything. So the files are checked at start-up and
 * after every configuration load, when the daemon sees FreeSWITCH's filesystem
 * (PROMPTS_SAME_FILESYSTEM), and calls replace a known-missing file by a system prompt or a tone.
 */
import fs from 'node:fs/promises';
import type { SystemPromptName } from './names';
import { SYSTEM_PROMPTS } from './names';
import type { Settings } from '../config';
import type { ConfigSnapshot } from '../snapshot/types';
import path from 'node:path/posix';

export interface PromptFileUse {
  path: string;
  /** Who plays it: `system prompt welcome`, `prompts id 7 (tenant 3)` (for log lines). */
  usedBy: string;
  /** The same as a finding names it: a prompts row (by id, with its tenant) or a system prompt (by name). */
  owner: { table: 'prompts'; id: number; tenantId: number | null } | { table: 'system prompts'; id: SystemPromptName; tenantId: null };
}

export interface PromptFileProblem extends PromptFileUse {
  problem: 'missing' | 'unreadable' | 'not a file' | 'empty';
}

/** Every file the daemon may play: the system prompts, and each prompts row with a file. */
export function promptFilesInUse(settings: Pick<Settings, 'prompts'>, snapshot: Pick<ConfigSnapshot, 'prompts'> | null): PromptFileUse[] {
  const out: PromptFileUse[] = SYSTEM_PROMPTS.map((name: SystemPromptName) => ({
    path: path.join(settings.prompts.systemDir, `${name}.wav`),
    usedBy: `system prompt ${name}`,
    owner: { table: 'system prompts', id: name, tenantId: null },
  }));
  for (const prompt of snapshot?.prompts.values() ?? []) {
    if (prompt.file === null) continue;
    out.push({
      path: prompt.file,
      usedBy: `prompts id ${prompt.id}${prompt.tenantId === null ? '' : ` (tenant ${prompt.tenantId})`}`,
      owner: { table: 'prompts', id: prompt.id, tenantId: prompt.tenantId },
    });
  }
  return out;
}

/** Checks each file: there, a regular file, readable, not empty. Never throws. */
export async function checkPromptFiles(files: readonly PromptFileUse[]): Promise<PromptFileProblem[]> {
  const problems: PromptFileProblem[] = [];
  await Promise.all(
    files.map(async (f) => {
      const problem = await fileProblem(f.path);
      if (problem) problems.push({ ...f, problem });
    }),
  );
  return problems.sort((a, b) => a.path.localeCompare(b.path));
}

async function fileProblem(file: string): Promise<PromptFileProblem['problem'] | null> {
  // Only local absolute paths are files; URLs and streams (http://, tone_stream://) are not ours to check.
  if (!file.startsWith('/')) return null;
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) return 'not a file';
    if (stat.size === 0) return 'empty';
    await fs.access(file, fs.constants.R_OK);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'missing' : 'unreadable';
  }
}

/** Whether the daemon sees the prompt files as FreeSWITCH does (PROMPTS_SAME_FILESYSTEM). */
export function seesPromptFiles(settings: Pick<Settings, 'prompts' | 'esl'>): boolean {
  const mode = settings.prompts.sameFilesystem;
  if (mode === 'auto') return ['127.0.0.1', '::1', 'localhost'].includes(settings.esl.listenHost);
  return mode === 'yes';
}

/**
 * The latest check, for calls (is this file known to be missing?) and for the gauge; each
 * problem is logged once, and again only after it was fixed and came back.
 */
export class PromptFileStatus {
  private missingPaths: ReadonlySet<string> = new Set();
  private reported = new Set<string>();
  private running: Promise<void> | null = null;
  private again = false;
  private latest: () => readonly PromptFileUse[] = () => [];

  constructor(
    private readonly report: (problem: PromptFileProblem) => void,
    private readonly onCount: (missing: number) => void,
  ) {}

  /** Is this file known to be missing or unreadable? */
  missing(file: string): boolean {
    return this.missingPaths.has(file);
  }

  get count(): number {
    return this.missingPaths.size;
  }

  /** Runs a check (one at a time; the latest one asked for meanwhile runs once after it). */
  refresh(files: () => readonly PromptFileUse[]): Promise<void> {
    this.latest = files;
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        this.apply(await checkPromptFiles(this.latest()));
      } while (this.again);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private apply(problems: readonly PromptFileProblem[]): void {
    const seen = new Set<string>();
    for (const p of problems) {
      const key = `${p.path}\u0000${p.problem}`;
      seen.add(key);
      if (!this.reported.has(key)) this.report(p);
    }
    this.reported = seen;
    this.missingPaths = new Set(problems.map((p) => p.path));
    this.onCount(this.missingPaths.size);
  }
}
