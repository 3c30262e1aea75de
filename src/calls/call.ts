/**
 * A call once identified: who is calling which tenant on which access number, from where, at
 * what price — typed, so no step asks "is there a tenant yet?" — plus what it accumulates for its
 * CDR, the channel, and the prompts. Steps receive a Call.
 */
import type { Logger } from 'pino';
import type { CallPricing } from '../billing/rate-cdr';
import type { CallerGeo } from '../domain/geo';
import type { CallChannel } from '../esl/channel';
import type { Outcome } from '../metrics';
import type { AccessNumber, ConfigSnapshot, Tenant } from '../snapshot/types';
import type { CallDeps } from './context';
import { PromptPlayer, systemPrompt, type PromptRef } from './prompt-player';
import { mediaFilePath } from './steps/media-path';

/**
 * A click-to-call visitor leg (src/clicktocall/leg.ts), as far as decisions need it: FreeSWITCH
 * originated the call to the visitor for this widget and handed it over answered.
 */
export interface ClickToCallMarker {
  readonly widgetId: number;
}

/** Everything about the caller and the tenant that later steps need, fixed at identification. */
export interface IdentifiedCall {
  readonly tenant: Tenant;
  readonly accessNumber: AccessNumber;
  readonly geo: CallerGeo;
  readonly pricing: CallPricing;
  /** For a click-to-call, the visitor; `dialed` is then the widget's access number. */
  readonly caller: string;
  readonly dialed: string;
  /** Set for a click-to-call (the tenant pays two legs; no PIN; the widget's answer prompt). */
  readonly clickToCall: ClickToCallMarker | null;
}

/** What the call writes into its CDR as it goes (the session turns it into the CDR). */
export class CallFacts {
  outcome: Outcome = 'failed';
  tenantId: number | null = null;
  geo: CallerGeo | null = null;
  groupId: number | null = null;
  answeredBy: string | null = null;
  /** The keys that chose something, level by level (cdrs.ivr_path, e.g. 1>3>801). */
  readonly ivrPath: string[] = [];
  recordingPath: string | null = null;
  /** A voicemail message was recorded and kept: a caller who hangs up after it (the usual way to end one) left a voicemail, not an abandoned call. */
  voicemailKept = false;
  /** Admission counted this call in tenant_usage. */
  counted = false;
  /** The call passed admission (counted or not); refused or never-identified calls are false. */
  admitted = false;
  /** Why the call failed inside the daemon (cdrs.failure_reason), else null. */
  failureReason: string | null = null;
}

/** IVR menu visits one call may make (a loop or a caller pressing "back" forever ends here). */
export const MAX_MENU_STEPS = 20;

export class Call {
  readonly prompts: PromptPlayer;
  firstLegDialled = false;
  menuSteps = 0;
  /** The caller-memory lookup of this call, once asked (hunt.ts askCallerMemory). */
  callerMemory: Promise<string | null> | null = null;
  private answering: Promise<void> | null = null;
  private recording: Promise<void> | null = null;
  /** The opening prompts not played yet (plan.ts openingPrompts): the first prompt the caller may type over carries them. */
  private greeting: readonly PromptRef[];
  /** The greeting startGreeting wrote, until it has ended (null: none plays); true: the caller was still up at its end. */
  private greetingPlaying: Promise<boolean> | null = null;
  /** Something was written behind the playing greeting (writeBehindGreeting). */
  private behindGreeting = false;
  /** What the greeting startGreeting wrote failed with (null: it did not). */
  private greetingFailure: Error | null = null;

  constructor(
    readonly id: IdentifiedCall,
    readonly channel: CallChannel,
    readonly facts: CallFacts,
    readonly deps: CallDeps,
    readonly log: Logger,
    greeting: readonly PromptRef[],
    private readonly acceptedHr: bigint = process.hrtime.bigint(),
  ) {
    this.prompts = new PromptPlayer(channel, deps, log);
    this.greeting = greeting;
  }

  get tenant(): Tenant {
    return this.id.tenant;
  }

  get snapshot(): ConfigSnapshot {
    return this.deps.snapshot;
  }

  secondsSinceAccept(): number {
    return Number(process.hrtime.bigint() - this.acceptedHr) / 1e9;
  }

  /** Answers once; later calls get the same promise (pipelined with what follows). */
  answer(): Promise<void> {
    this.answering ??= this.channel.answer();
    return this.answering;
  }

  /** The pending greeting, once: to put in front of the first prompt the caller may type over. */
  takeGreeting(): PromptRef[] {
    const g = this.greeting;
    this.greeting = [];
    return [...g];
  }

  /** Plays the pending greeting on its own (before voicemail, an announcement). */
  async playGreeting(): Promise<void> {
    const g = this.takeGreeting();
    if (g.length > 0) await this.prompts.play(g);
  }

  /**
   * Writes the pending greeting and returns at once (before a hunt: run-action.ts). It is written
   * with event-lock, so the hunt's first bridge, written as soon as the hunt knows whom to ring,
   * waits in FreeSWITCH's queue and starts the moment the greeting ends — not one trip through
   * the daemon later (the caller's silence between the greeting and the ringing), and not nested
   * inside the greeting as it would run without the lock (M7 in test/peer/channel-model.ts: the
   * phones would ring over it). What else is written meanwhile (recording, ringback variables)
   * waits too; the channel counts the greeting's bound into their time limits
   * (EslCallChannel.execute). greetingEnded() says when it has played.
   */
  startGreeting(): void {
    const g = this.takeGreeting();
    if (g.length === 0) return;
    const playing = this.prompts.play(g, { standIn: () => !this.behindGreeting });
    this.greetingPlaying = playing;
    playing.then(
      () => {
        this.greetingPlaying = null;
      },
      (err: unknown) => {
        // Kept, not forgotten: whoever asks next (the hunt, run-action.ts) fails with it, as a
        // greeting that was waited for would have failed the call.
        this.greetingPlaying = null;
        this.greetingFailure = err instanceof Error ? err : new Error(String(err));
      },
    );
  }

  /** Resolves when the greeting startGreeting wrote has ended (at once when none plays); rejects as it did. */
  async greetingEnded(): Promise<void> {
    if (this.greetingPlaying) await this.greetingPlaying;
    else if (this.greetingFailure !== null) throw this.greetingFailure;
  }

  /**
   * About to write an application while the greeting may still play: returns null when it has
   * ended, else its end (true: the caller was still up, so what waits behind it runs). From then
   * on a greeting FreeSWITCH cannot find is followed by nothing (PromptPlayer.play). Throws what
   * the greeting failed with, if it did: nothing is written behind a greeting that failed.
   */
  writeBehindGreeting(): Promise<boolean> | null {
    if (this.greetingFailure !== null) throw this.greetingFailure;
    if (!this.greetingPlaying) return null;
    this.behindGreeting = true;
    return this.greetingPlaying;
  }

  async announceAndHangup(what: PromptRef | Parameters<typeof systemPrompt>[0], cause: string, outcome: Outcome): Promise<void> {
    this.facts.outcome = outcome;
    await this.prompts.play([typeof what === 'string' ? systemPrompt(what) : what]);
    await this.channel.hangup(cause);
  }

  /**
   * Whole-call recording (全程录音) for tenants with record_calls: `record_session` to a file
   * named by tenant and day (the retention job purges by directory); stereo per RECORD_STEREO.
   * Both applications are written at once (instant ones: whatever follows runs right behind).
   */
  startRecording(): Promise<void> {
    if (!this.tenant.recordCalls || this.recording) return this.recording ?? Promise.resolve();
    const file = mediaFilePath(this, '');
    const stereo = this.channel.setVariables({ RECORD_STEREO: this.deps.settings.recordings.stereo ? 'true' : 'false' });
    const recording = this.channel.recordSession(file);
    this.recording = Promise.all([stereo, recording]).then(() => {
      this.facts.recordingPath = file;
    });
    return this.recording;
  }
}
