/**
 * Prompts in a call: which file FreeSWITCH plays for a prompt, how several prompts become one,
 * and what happens when a prompt does not play.
 *
 * Every prompt a caller may type over is played by `play_and_get_digits`, never by `playback`:
 * playback drops the keys typed during it, play_and_get_digits keeps them (M3, M4 in
 * test/peer/channel-model.ts; captures daemon-ivr-key-typed-during-invalid-prompt and
 * daemon-switchboard-…). Prompts that follow each other (the greeting and the first menu, an
 * invalid-entry prompt and the menu again) are joined as `file_string://a!b`: one file handle,
 * so a key during any part counts, and no gap between two applications in which FreeSWITCH's
 * park would drop keys (M2).
 *
 * A file known to be missing (the check in src/prompts/file-check.ts: not there at all, not merely
 * unreadable by the daemon) is replaced by the system prompt, and a missing system prompt by a
 * tone: a missing prompt must never cost a caller the call. A playback that FreeSWITCH answers
 * with FILE NOT FOUND is counted and followed by the same stand-in. A play_and_get_digits that comes back with no digits faster than its own timeout allows
 * (the prompt could not be opened: M5) is counted and run again with a tone, so the caller still
 * gets the whole time to key.
 */
import type { Logger } from 'pino';
import type { CallChannel, DigitCollection, DigitResult, PlayEnd } from '../esl/channel';
import type { Metrics } from '../metrics';
import type { PlayInstruction, PromptResolver } from '../prompts';
import type { PromptFileStatus } from '../prompts/file-check';
import type { ConfigSnapshot } from '../snapshot/types';
import type { SystemPromptName } from './prompts';

/** A tenant prompt (prompts.id) with the system prompt that stands in for it. */
export interface PromptRef {
  readonly id: number | null;
  readonly fallback: SystemPromptName;
}

export function systemPrompt(name: SystemPromptName): PromptRef {
  return { id: null, fallback: name };
}

export function tenantPrompt(id: number | null, fallback: SystemPromptName): PromptRef {
  return { id, fallback };
}

/** What a caller hears for a prompt whose file is missing: half a second of 440 Hz, no file needed (mod_tone_stream). */
export const MISSING_PROMPT_TONE = 'tone_stream://%(400,100,440)';

/** Prompt ids already logged as unplayable by file, per resolver (the daemon has one): logged once. */
const loggedSpeak = new WeakMap<object, Set<number | null>>();

function firstTime(owner: object, id: number | null): boolean {
  let seen = loggedSpeak.get(owner);
  if (!seen) loggedSpeak.set(owner, (seen = new Set()));
  if (seen.has(id)) return false;
  seen.add(id);
  return true;
}

/**
 * The file FreeSWITCH plays for a system prompt: its file in PROMPTS_DIR, or the tone when the file
 * check knows it is missing. The one decision for every prompt played by path — in a call's
 * applications, its spend-guard warning (uuid_broadcast) and the live-call job's warning.
 */
export function systemPromptFile(prompts: Pick<PromptResolver, 'system'>, name: SystemPromptName, files: Pick<PromptFileStatus, 'knownMissing'> | null): string {
  const file = prompts.system(name).arg;
  return files?.knownMissing(file) ? MISSING_PROMPT_TONE : file;
}

/** Longest a prompt is expected to play; bounds playback completions. */
export const PROMPT_MAX_MS = 120_000;

/**
 * A prompt written so that the call's next application can be written while it plays
 * (PromptPlayer.play): `standIn()` is false once something waits behind it.
 */
export interface HeldPrompt {
  standIn(): boolean;
}
/** Budget per joined prompt part of a play_and_get_digits (bounds its completion). */
const PART_MAX_MS = 30_000;

export type Collection = Omit<DigitCollection, 'file' | 'promptMs'>;

export interface PromptDeps {
  prompts: PromptResolver;
  promptFiles: PromptFileStatus | null;
  snapshot: ConfigSnapshot;
  metrics: Metrics;
}

export class PromptPlayer {
  constructor(
    private readonly channel: CallChannel,
    private readonly deps: PromptDeps,
    private readonly log: Logger,
  ) {}

  /** How FreeSWITCH plays one prompt: a tenant's file or TTS, else the system prompt. */
  instruction(ref: PromptRef): PlayInstruction {
    const p = this.deps.prompts.resolveId(this.deps.snapshot.prompts, ref.id, ref.fallback);
    if (p.app === 'playback') return { app: 'playback', arg: this.file(ref) };
    return p;
  }

  /**
   * The file for a prompt, for applications that need a file (play_and_get_digits, file_string):
   * a TTS prompt spoken by FreeSWITCH falls back to the system file; a file known to be missing
   * to the system prompt, then to a tone.
   */
  file(ref: PromptRef): string {
    const p = this.deps.prompts.resolveId(this.deps.snapshot.prompts, ref.id, ref.fallback);
    if (p.fallback) this.log.warn({ prompt_id: ref.id, reason: p.fallback }, 'prompt not playable; system prompt instead');
    if (p.app === 'speak' && firstTime(this.deps.prompts, ref.id)) {
      // play_and_get_digits and file_string:// take files, and `say:` would need the text without
      // spaces and the engine in channel variables: a TTS prompt spoken by FreeSWITCH cannot be
      // played there. Logged once per prompt (config:lint lists them: src/prompts/lint.ts).
      this.log.warn({ prompt_id: ref.id, system_prompt: ref.fallback }, 'TTS prompt spoken by FreeSWITCH (TTS_ENGINE=freeswitch) cannot be played where the caller keys digits; the system prompt there instead');
    }
    if (p.app === 'playback' && !this.missing(p.arg)) return p.arg;
    return systemPromptFile(this.deps.prompts, ref.fallback, this.deps.promptFiles);
  }

  /** Known missing (not there at all); a file this daemon merely cannot read is still played. */
  private missing(file: string): boolean {
    return this.deps.promptFiles?.knownMissing(file) ?? false;
  }

  /** The system prompts standing in for `refs`, joined as joined() does; a tone when none is there. */
  private joinedSystem(refs: readonly PromptRef[]): string {
    return this.joined(refs.map((r) => systemPrompt(r.fallback)));
  }

  /**
   * One file for several prompts in a row (file_string://a!b). A missing part is left out (no
   * beep in front of the menu for a missing greeting), except the last — the one that asks the
   * caller something: a tone stands in for it, so the caller knows to key.
   */
  joined(refs: readonly PromptRef[]): string {
    const files = refs.map((r) => this.file(r)).filter((f, i, all) => f !== MISSING_PROMPT_TONE || i === all.length - 1);
    if (files.length === 0) return MISSING_PROMPT_TONE;
    return files.length === 1 ? files[0] : `file_string://${files.join('!')}`;
  }

  /**
   * Plays prompts the caller does not type over (announcements, hold, goodbye); one TTS prompt
   * spoken by FreeSWITCH is spoken. FILE NOT FOUND is counted; the call goes on.
   *
   * `held` (Call.startGreeting): every application of it is written with event-lock, so what the
   * call writes while it plays waits behind it; once `held.standIn()` says something already waits
   * there, a FILE NOT FOUND is followed by nothing (what stands in for the prompt would be queued
   * behind the phones ringing). Resolves with whether the caller was still up when the last of
   * its applications ended (what waits behind it then runs).
   */
  async play(refs: readonly PromptRef[], held: HeldPrompt | null = null): Promise<boolean> {
    const options = { eventLock: held !== null };
    if (refs.length === 1) {
      const p = this.instruction(refs[0]);
      if (p.app === 'speak') return (await this.channel.speak(p.arg, PROMPT_MAX_MS, options)).callerUp;
    }
    const file = this.joined(refs);
    const end = await this.channel.playback(file, PROMPT_MAX_MS * refs.length, options);
    if (end.response === 'FILE NOT FOUND') return this.notFound(refs, file, held, end);
    if (end.response !== 'FILE PLAYED' && end.callerUp) this.log.warn({ file, response: end.response }, 'prompt did not play');
    return end.callerUp;
  }

  /**
   * FreeSWITCH answered FILE NOT FOUND (the daemon did not know, or could not see the folder):
   * counted, then what stands in for it is played — the system prompt for a tenant's file, a tone
   * when that is not found either. The call goes on.
   */
  private async notFound(refs: readonly PromptRef[], file: string, held: HeldPrompt | null, first: PlayEnd): Promise<boolean> {
    this.deps.metrics.promptsNotPlayed.inc({ application: 'playback' });
    const options = { eventLock: held !== null };
    if (held && !held.standIn()) {
      this.log.warn({ file }, 'FreeSWITCH could not play the prompt (FILE NOT FOUND); the next application already waits behind it, so nothing stands in for it');
      return first.callerUp;
    }
    const system = this.joinedSystem(refs);
    const instead = system === file ? MISSING_PROMPT_TONE : system;
    this.log.warn({ file, instead }, 'FreeSWITCH could not play the prompt (FILE NOT FOUND): playing what stands in for it');
    if (!first.callerUp || this.channel.hungUp) return false;
    const again = await this.channel.playback(instead, PROMPT_MAX_MS * refs.length, options);
    if (again.response !== 'FILE NOT FOUND' || instead === MISSING_PROMPT_TONE || !again.callerUp) return again.callerUp;
    this.deps.metrics.promptsNotPlayed.inc({ application: 'playback' });
    if (held && !held.standIn()) {
      this.log.warn({ file: instead }, 'FreeSWITCH could not play the system prompt either (FILE NOT FOUND); the next application already waits behind it');
      return again.callerUp;
    }
    this.log.warn({ file: instead }, 'FreeSWITCH could not play the system prompt either (FILE NOT FOUND): a tone instead');
    return (await this.channel.playback(MISSING_PROMPT_TONE, PROMPT_MAX_MS, options)).callerUp;
  }

  /**
   * Plays prompts the caller may type over and collects the keys, FreeSWITCH's
   * play_and_get_digits; resolves with the valid digits ('' for none). Writes the command at
   * once (no await first), so it can be pipelined behind instant applications.
   */
  async collect(refs: readonly PromptRef[], spec: Collection): Promise<string> {
    const file = this.joined(refs);
    const first = await this.channel.playAndGetDigits({ ...spec, file, promptMs: PART_MAX_MS * Math.max(1, refs.length) });
    if (!promptDidNotPlay(first, spec) || this.channel.hungUp) return entered(first);
    this.deps.metrics.promptsNotPlayed.inc({ application: 'play_and_get_digits' });
    this.log.warn({ file, elapsed_ms: Math.round(first.elapsedMs), timeout_ms: spec.timeoutMs }, 'play_and_get_digits came back unplayed: asking again with a tone');
    const second = await this.channel.playAndGetDigits({ ...spec, file: MISSING_PROMPT_TONE, promptMs: PART_MAX_MS });
    return entered(second);
  }
}

/**
 * The keys a collection yielded as an entry: none when read_result is failure. FreeSWITCH still
 * leaves the keys in the variable then (switch_ivr_play_say.c switch_ivr_read sets <var> from
 * whatever is in the buffer; play_and_get_digits unsets it only for a regexp miss): fewer than
 * min, or a caller who hung up halfway through an extension (the collection fails when the
 * channel goes). A regexp match, or enough keys ended by the inter-digit timeout
 * (read_result=timeout), is an entry.
 */
function entered(result: DigitResult): string {
  return result.readResult === 'failure' ? '' : result.digits;
}

/**
 * No digits, sooner than the first-digit timeout allows (the timer starts after the prompt), and
 * not because the caller pressed a terminator (that sets read_result=failure): the prompt could
 * not be opened — FreeSWITCH returns at once and leaves read_result unset (M5).
 */
export function promptDidNotPlay(result: DigitResult, spec: Pick<DigitCollection, 'timeoutMs'>): boolean {
  return result.digits === '' && result.readResult !== 'failure' && result.readResult !== 'success' && result.elapsedMs < spec.timeoutMs;
}
