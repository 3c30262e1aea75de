/**
 * A CallChannel for testing one step alone, without a socket: the same FreeSWITCH channel rules
 * as the TCP stand-in (channel-model.ts, the M rules), on a virtual clock — a 10 s prompt takes no
 * time, and what happens when is exact. The caller is a timeline (keys at given FreeSWITCH
 * times after answer); the test can also act at a given time (`at`: a kill, a broadcast).
 * Arguments are built by the same functions EslCallChannel uses, so they pass the same guards.
 */
import { randomUUID } from 'node:crypto';
import { multisetArgument, playAndGetDigitsArgument, recordArgument, recordFolder } from '../../src/esl/call-channel';
import { recordEnd, type BridgeOutcome, type CallChannel, type DigitCollection, type DigitResult, type PlayEnd, type PlayOptions, type RecordEnd } from '../../src/esl/channel';
import { CallHungUpError, EslCommandError } from '../../src/esl/errors';
import { identifier, mediaPath, promptPath } from '../../src/esl/safe';
import { ChannelModel, VirtualClock, type BridgeAttempt, type CallerTimeline, type LegPlan, type RecordSilence } from './channel-model';

export interface ScriptedOptions {
  timeline?: CallerTimeline;
  /** FreeSWITCH ms per prompt file; others take defaultPromptMs (default 3000). */
  promptMs?: Record<string, number>;
  defaultPromptMs?: number;
  missingFiles?: string[];
  missingDirs?: string[];
  /** Folders that exist before the call: `record` needs its folder (M11). */
  existingDirs?: string[];
  legs?: Record<string, LegPlan>;
  defaultLeg?: LegPlan;
  recordSeconds?: number;
  /** How the caller's silence reaches FreeSWITCH during `record` (M12). */
  recordSilence?: RecordSilence;
  /**
   * Channel variables set before the step starts, as the session's claim leaves them
   * (EslCallChannel.claim: one multiset, before anything the step sends; not in `apps`).
   */
  claimed?: Record<string, string>;
}

export interface ScriptedApp {
  app: string;
  arg: string;
  response: string;
  /** When the step wrote it, when FreeSWITCH started it and when it completed (virtual ms). */
  writtenAt: number;
  startedAt: number;
  endedAt: number;
  /** Written with `event-lock: true`. */
  eventLock: boolean;
}

export class ScriptedChannel implements CallChannel {
  readonly uuid = randomUUID();
  readonly clock = new VirtualClock();
  readonly model: ChannelModel;
  readonly apps: ScriptedApp[] = [];
  readonly bridges: BridgeAttempt[] = [];
  readonly broadcasts: Array<{ file: string; at: number }> = [];
  readonly displaces: Array<{ file: string; at: number }> = [];
  private lockedPending = 0;
  readonly kills: Array<{ cause: string; at: number }> = [];
  hangupAt: number | null = null;
  private readonly answerListeners: Array<() => void> = [];
  private readonly starts = new Map<string, number>();
  private readonly written = new Map<string, number>();

  constructor(opts: ScriptedOptions = {}) {
    this.model = new ChannelModel(this.clock, {
      timeline: opts.timeline,
      promptMs: opts.promptMs,
      defaultPromptMs: opts.defaultPromptMs ?? 3000,
      missingFiles: opts.missingFiles,
      missingDirs: opts.missingDirs,
      existingDirs: opts.existingDirs,
      recordSeconds: opts.recordSeconds,
      recordSilence: opts.recordSilence,
      planFor: (n) => opts.legs?.[n] ?? opts.defaultLeg ?? { result: 'no_answer' },
      // Leg plans here are FreeSWITCH ms already.
      toFs: (ms) => ms,
    }, {
      answered: () => {
        for (const fn of this.answerListeners) fn();
      },
      earlyMedia: () => undefined,
      appStarted: (app) => this.starts.set(app.eventUuid ?? '', this.clock.now()),
      appCompleted: (app, response) => {
        const id = app.eventUuid ?? '';
        this.apps.push({
          app: app.app, arg: app.arg, response, eventLock: app.lock,
          writtenAt: this.written.get(id) ?? 0, startedAt: this.starts.get(id) ?? 0, endedAt: this.clock.now(),
        });
      },
      bridged: () => undefined,
      unbridged: () => undefined,
      hungUp: () => {
        this.hangupAt = this.clock.now();
      },
      finished: () => undefined,
      leg: (attempt) => this.bridges.push(attempt),
    });
    Object.assign(this.model.vars, opts.claimed);
  }

  get hungUp(): boolean {
    return this.model.hungUp;
  }

  /** Runs `fn` at FreeSWITCH time `t` (while an application waits). */
  at(t: number, fn: () => void): void {
    this.clock.at(t, fn);
  }

  onAnswer(fn: () => void): void {
    this.answerListeners.push(fn);
  }

  /** Applications as `name argument`, in the order they ran. */
  get ran(): string[] {
    return this.apps.map((a) => `${a.app} ${a.arg}`.trim());
  }

  private async run(app: string, arg: string, eventLock = false): Promise<{ response: string; vars: Record<string, string> }> {
    if (this.hungUp) throw new CallHungUpError(app, this.model.hangupCause);
    const id = randomUUID();
    this.written.set(id, this.clock.now());
    if (eventLock) this.lockedPending++;
    let result: { response: string; ran: boolean };
    try {
      result = await this.model.execute(app, arg, id, eventLock);
    } finally {
      if (eventLock) this.lockedPending--;
    }
    const { response, ran } = result;
    if (!ran) throw new CallHungUpError(app, this.model.hangupCause);
    return { response, vars: this.model.vars };
  }

  async answer(): Promise<void> {
    await this.run('answer', '');
  }

  async setVariables(vars: Record<string, string | number | boolean>): Promise<void> {
    await this.run('multiset', multisetArgument(vars));
  }

  async playback(file: string, _maxMs?: number, options: PlayOptions = {}): Promise<PlayEnd> {
    const { response } = await this.run('playback', promptPath('prompt file', file), options.eventLock);
    return { response, callerUp: !this.model.hungUp };
  }

  async speak(arg: string, _maxMs?: number, options: PlayOptions = {}): Promise<PlayEnd> {
    const { response } = await this.run('speak', arg, options.eventLock);
    return { response, callerUp: !this.model.hungUp };
  }

  async playAndGetDigits(opts: DigitCollection): Promise<DigitResult> {
    const started = this.clock.now();
    const { vars } = await this.run('play_and_get_digits', playAndGetDigitsArgument(opts));
    const result = vars.read_result;
    return {
      digits: vars[opts.variable] ?? '',
      readResult: result === 'success' || result === 'timeout' || result === 'failure' ? result : null,
      elapsedMs: this.clock.now() - started,
    };
  }

  async bridge(dialString: string): Promise<BridgeOutcome> {
    const { vars } = await this.run('bridge', dialString);
    const disposition = vars.originate_disposition ?? '';
    const dialStatus = vars.DIALSTATUS ?? '';
    const answered = dialStatus === 'SUCCESS' || disposition === 'SUCCESS';
    return { disposition, dialStatus, answered, answeredNumber: answered ? (vars.last_bridge_to ?? null) : null };
  }

  async recordSession(path: string): Promise<void> {
    await this.run('record_session', mediaPath('recording path', path));
  }

  async record(path: string, maxS: number, silenceThreshold: number, silenceHits: number): Promise<RecordEnd> {
    // As EslCallChannel.record: the folder first (M11), the completion's variables read alike (M12).
    await this.run('mkdir', recordFolder(path));
    const { vars } = await this.run('record', recordArgument(path, maxS, silenceThreshold, silenceHits));
    return recordEnd((name) => vars[name]);
  }

  async hangup(cause: string): Promise<void> {
    if (this.hungUp) return;
    identifier('hangup cause', cause);
    await this.run('hangup', cause).catch((err: unknown) => {
      if (!(err instanceof CallHungUpError)) throw err;
    });
  }

  kill(cause: string): Promise<'killed' | 'gone'> {
    if (this.hungUp) return Promise.resolve('gone');
    this.kills.push({ cause, at: this.clock.now() });
    this.model.hangup(cause);
    return Promise.resolve('killed');
  }

  /** M13, as EslCallChannel.displace: -ERR rejects with EslCommandError. */
  displace(file: string): Promise<void> {
    this.displaces.push({ file, at: this.clock.now() });
    const reply = this.model.displace(promptPath('warning prompt', file));
    return reply.startsWith('+OK') ? Promise.resolve() : Promise.reject(new EslCommandError(`api uuid_displace ${this.uuid}`, reply.trim()));
  }

  /** The scripted channel has no writes to gather (EslCallChannel.sendAtEndOfTurn). */
  sendAtEndOfTurn(): void {}

  /** An event-locked application written and not completed (EslCallChannel.promptLocked). */
  get promptLocked(): boolean {
    return this.lockedPending > 0;
  }

  broadcast(file: string): Promise<void> {
    this.broadcasts.push({ file, at: this.clock.now() });
    this.model.broadcast(mediaPath('broadcast prompt', file));
    return Promise.resolve();
  }
}
