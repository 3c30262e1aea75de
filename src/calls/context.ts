/**
 * What one call knows and accumulates while its steps run: the facts FreeSWITCH gave, the
 * tenant once identified, and the CDR fields the steps fill in. Steps receive it; the session
 * turns it into the CDR at the end.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Settings } from '../config';
import type { CallerGeo } from '../domain/geo';
import type { EslCallChannel } from '../esl/call-channel';
import type { Metrics, Outcome } from '../metrics';
import type { CallPricing } from '../billing/rate-cdr';
import type { PromptResolver } from '../prompts';
import type { AccessNumber, ConfigSnapshot, Tenant } from '../snapshot/types';
import type { SystemPromptName } from './prompts';
import { legOf, type ClickToCallCalls } from '../clicktocall/session';
import type { ClickToCallLeg } from '../clicktocall/leg';

export interface CallDeps {
  settings: Settings;
  snapshot: ConfigSnapshot;
  metrics: Metrics;
  log: Logger;
  clock: () => Date;
  random: () => number;
  /** Shared call state (admission, PIN lockouts, rotation, caller memory). */
  knex: Knex;
  /** Callers waiting in each group's queue on this daemon. */
  queues: QueueBook;
  /** Turns prompt rows (file or TTS) and system prompt names into what the channel plays. */
  prompts: PromptResolver;
  /** Click-to-call request state for visitor legs (src/clicktocall/session.ts). */
  clickToCall?: ClickToCallCalls;
}

/** Per-daemon queue occupancy by group (max_queue is enforced per daemon). */
export class QueueBook {
  private readonly waiting = new Map<number, number>();
  constructor(private readonly onChange: (total: number) => void = () => undefined) {}

  size(groupId: number): number {
    return this.waiting.get(groupId) ?? 0;
  }

  get total(): number {
    let n = 0;
    for (const v of this.waiting.values()) n += v;
    return n;
  }

  enter(groupId: number): void {
    this.waiting.set(groupId, this.size(groupId) + 1);
    this.onChange(this.total);
  }

  leave(groupId: number): void {
    const n = this.size(groupId) - 1;
    if (n <= 0) this.waiting.delete(groupId);
    else this.waiting.set(groupId, n);
    this.onChange(this.total);
  }
}

/** What a playable prompt becomes on the channel. */
export interface Playable {
  app: 'playback' | 'speak';
  arg: string;
}

export class CallContext {
  outcome: Outcome = 'failed';
  tenant: Tenant | null = null;
  accessNumber: AccessNumber | null = null;
  geo: CallerGeo | null = null;
  groupId: number | null = null;
  answeredBy: string | null = null;
  ivrPath: string[] = [];
  recordingPath: string | null = null;
  /** Admission counted this call in tenant_usage. */
  counted = false;
  /** The call passed admission (counted or not); refused or never-identified calls are false. */
  admitted = false;
  /** Call type and rate, once the tenant and the caller are known. */
  pricing: CallPricing | null = null;
  firstLegDialled = false;
  /** continue_on_fail and friends are set on the channel (once, before the first bridge). */
  bridgingReady = false;
  readonly acceptedHr = process.hrtime.bigint();
  readonly log: Logger;
  /**
   * A click-to-call visitor leg (FreeSWITCH originated it and handed it over answered): the
   * visitor is the caller and the widget's access number the dialled number, whatever the
   * channel's own caller and destination fields say (both are the visitor's number there).
   */
  readonly clickToCall: ClickToCallLeg | null;

  constructor(
    readonly channel: EslCallChannel,
    readonly deps: CallDeps,
  ) {
    this.log = deps.log.child({ call_uuid: channel.uuid });
    this.clickToCall = legOf(channel.data, this.log);
  }

  get caller(): string {
    return this.clickToCall?.visitor ?? this.channel.data['Caller-Caller-ID-Number'] ?? '';
  }

  get dialed(): string {
    return this.clickToCall?.accessNumber ?? this.channel.data['Caller-Destination-Number'] ?? '';
  }

  get snapshot(): ConfigSnapshot {
    return this.deps.snapshot;
  }

  secondsSinceAccept(): number {
    return Number(process.hrtime.bigint() - this.acceptedHr) / 1e9;
  }

  /**
   * A tenant prompt (by id: its file, or its TTS text rendered ahead of time or spoken by
   * FreeSWITCH) or the named system prompt when the tenant has none or it cannot be played yet.
   */
  playable(promptId: number | null, fallback: SystemPromptName): Playable {
    const p = this.deps.prompts.resolveId(this.snapshot.prompts, promptId, fallback);
    if (p.fallback) this.log.warn({ prompt_id: promptId, reason: p.fallback }, 'prompt not playable; system prompt instead');
    return { app: p.app, arg: p.arg };
  }

  /** Plays a prompt; a missing file is logged, never fatal. */
  async play(what: Playable | SystemPromptName): Promise<void> {
    const p = typeof what === 'string' ? this.playable(null, what) : what;
    if (p.app === 'speak') {
      await this.channel.speak(p.arg, PROMPT_MAX_MS);
      return;
    }
    const response = await this.channel.playback(p.arg, PROMPT_MAX_MS);
    if (response !== 'FILE PLAYED') this.log.warn({ file: p.arg, response }, 'prompt did not play');
  }

  async announceAndHangup(what: Playable | SystemPromptName, cause: string, outcome: Outcome): Promise<void> {
    this.outcome = outcome;
    await this.play(what);
    await this.channel.hangup(cause);
  }
}

/** Longest a prompt is expected to play; bounds playback completions. */
export const PROMPT_MAX_MS = 120_000;
