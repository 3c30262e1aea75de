/**
 * Which prompt files the daemon may ask FreeSWITCH to play are not there. FreeSWITCH says nothing
 * useful when one is missing: `play_and_get_digits` returns at once with no digits and
 * `Application-Response: _none_`, `playback` answers FILE NOT FOUND (captures
 * daemon-pin-prompt-file-missing, outbound-plain-missing-file-…): a PIN tenant's callers were
 * rejected within a second without hearing anything. So the files are checked at start-up and
 * after every configuration load, when the daemon sees FreeSWITCH's filesystem
 * (PROMPTS_SAME_FILESYSTEM), and calls replace a file known to be missing by a system prompt or a tone.
 *
 * Only `missing` (ENOENT, ENOTDIR: the path is not there) replaces a prompt. Any other finding is
 * what the DAEMON sees: a file it may not read (EACCES: FreeSWITCH runs as another user and may
 * well read it), a folder, an empty file. It is logged, counted and linted, but the call still asks
 * FreeSWITCH to play the file; if FreeSWITCH cannot, the call notices (FILE NOT FOUND, an unplayed
 * play_and_get_digits) and goes on with a system prompt or a tone (src/calls/prompt-player.ts).
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

/** What the daemon found; the gauge's `reason` label is the same with `_` for spaces. */
export const PROMPT_FILE_PROBLEMS = ['missing', 'unreadable', 'not a file', 'empty'] as const;
export type PromptFileProblemKind = (typeof PROMPT_FILE_PROBLEMS)[number];

export interface PromptFileProblem extends PromptFileUse {
  problem: PromptFileProblemKind;
}

/** The gauge label of a problem: missing, unreadable, not_a_file, empty. */
export function problemLabel(problem: PromptFileProblemKind): string {
  return problem.replace(/ /g, '_');
}

/** Only a file that is not there is replaced in calls; the rest may still play (see the header). */
export function replacedInCalls(problem: PromptFileProblemKind): boolean {
  return problem === 'missing';
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
  return checkPromptFilesWith(files, fileProblem);
}

/** checkPromptFiles with the per-file probe given (tests give one that sees EACCES as root cannot). */
export async function checkPromptFilesWith(files: readonly PromptFileUse[], probe: (file: string) => Promise<PromptFileProblemKind | null>): Promise<PromptFileProblem[]> {
  const problems: PromptFileProblem[] = [];
  await Promise.all(
    files.map(async (f) => {
      const problem = await probe(f.path);
      if (problem) problems.push({ ...f, problem });
    }),
  );
  return problems.sort((a, b) => a.path.localeCompare(b.path));
}

async function fileProblem(file: string): Promise<PromptFileProblemKind | null> {
  // Only local absolute paths are files; URLs and streams (http://, tone_stream://) are not ours to check.
  if (!file.startsWith('/')) return null;
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) return 'not a file';
    if (stat.size === 0) return 'empty';
    await fs.access(file, fs.constants.R_OK);
    return null;
  } catch (err) {
    return problemOfError(err);
  }
}

/**
 * A failed stat/access: ENOENT or ENOTDIR say the path is not there; anything else (EACCES, EPERM,
 * EIO, ELOOP …) only that this daemon cannot read it.
 */
export function problemOfError(err: unknown): 'missing' | 'unreadable' {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : 'unreadable';
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
  private problemCount = 0;
  private reported = new Set<string>();
  private running: Promise<void> | null = null;
  private again = false;
  private latest: () => readonly PromptFileUse[] = () => [];

  constructor(
    private readonly report: (problem: PromptFileProblem) => void,
    /** Files with a problem, by problem (every kind, 0 included). */
    private readonly onCount: (counts: Readonly<Record<PromptFileProblemKind, number>>) => void,
    private readonly check: (files: readonly PromptFileUse[]) => Promise<PromptFileProblem[]> = checkPromptFiles,
  ) {}

  /** Is this file known to be missing (not there at all), so calls play something else? */
  knownMissing(file: string): boolean {
    return this.missingPaths.has(file);
  }

  /** Files with any problem, as last checked. */
  get count(): number {
    return this.problemCount;
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
        this.apply(await this.check(this.latest()));
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
    this.missingPaths = new Set(problems.filter((p) => replacedInCalls(p.problem)).map((p) => p.path));
    this.problemCount = problems.length;
    const counts = Object.fromEntries(PROMPT_FILE_PROBLEMS.map((k) => [k, 0])) as Record<PromptFileProblemKind, number>;
    for (const p of problems) counts[p.problem]++;
    this.onCount(counts);
  }
}
