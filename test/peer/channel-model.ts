/**
 * One FreeSWITCH channel as its applications see it: the caller's keys arriving at given times,
 * prompts that take time, the DTMF queue, the channel's private event queue (our `sendmsg`s, a
 * `uuid_broadcast`), hang-ups and kills. Shared by the TCP stand-in (fake-freeswitch.ts, real
 * time scaled by timeScale) and the scripted test channel (virtual time, no waiting at all), so
 * both tell the same truth. Times are FreeSWITCH milliseconds since the channel was created.
 *
 * Each rule below names the FreeSWITCH source (signalwire/freeswitch) or the capture in
 * test/fixtures/esl that shows it; test/esl/peer-fidelity.test.ts replays every capture.
 *
 * M1  Keys reach the channel's DTMF queue; what happens to them depends on what runs when they
 *     arrive (RFC 2833 and SIP INFO are queued alike: fixtures README).
 * M2  `park` (the async outbound socket between our commands, switch_ivr.c switch_ivr_park):
 *     every ~20 ms frame it first runs queued private events (our next application), then
 *     dequeues ONE key and drops it. So a key left queued by an application is dropped as soon
 *     as that application returns, unless our next application was already queued (then they
 *     run back to back from one switch_ivr_parse_all_events, nothing dropped); keys typed while
 *     the daemon decides are dropped one per frame. (daemon-ivr-key-typed-during-invalid-prompt)
 * M3  `playback` / `speak` (mod_dptools on_dtmf): every key is dequeued; one listed in
 *     playback_terminators (default `*`, `any`, `none`) stops the prompt and sets
 *     playback_terminator_used, any other is DROPPED and the prompt goes on. Application-Response
 *     FILE PLAYED; FILE NOT FOUND for a missing file (the DTMF queue is flushed:
 *     switch_core_session_reset(session, TRUE, …) in switch_ivr_play_file); PLAYBACK ERROR when
 *     the caller hangs up mid-prompt. (daemon-ivr-…, outbound-plain-missing-file-…)
 * M4  `play_and_get_digits` (switch_ivr_play_say.c switch_play_and_get_digits, switch_ivr_read,
 *     switch_ivr.c switch_ivr_collect_digits_count): per try read_result and <var> are unset; a
 *     queued key, or the first key typed during the prompt, stops the prompt and is kept; the
 *     rest are collected after the prompt with the first-digit timeout (`timeout`) until a key
 *     arrives, then the inter-digit timeout restarted per key; a terminator ends collection and
 *     is not stored (typed during the prompt it cuts the buffer there); max digits ends it. At
 *     most max keys are taken: the rest stay queued. read_result success | timeout | failure
 *     (fewer than min), a timeout with ≥ min digits passes as success; the regexp is checked,
 *     a miss unsets <var> and sets <var>_invalid. A failed try plays the invalid file WITHOUT
 *     reading keys (they stay queued for the next try), then the next try; also after the last.
 *     Application-Response is always `_none_`. (daemon-pin-right-with-prompts, daemon-ivr-…,
 *     daemon-switchboard-…, outbound-plain-missing-file-…)
 * M5  A missing prompt makes that try return at once: the DTMF queue flushed, no read_result,
 *     no <var>; the invalid file then plays (silence_stream://250: 250 ms) — every try the same.
 *     (daemon-pin-prompt-file-missing: three tries and CALL_REJECTED in 0.9 s)
 * M6  file_string://a!b (mod_dptools file_string_file_open): 250 ms of silence, then each part;
 *     a missing part is skipped; only when every part is missing is the file not found. One
 *     file handle: a key during any part stops the whole prompt. silence_stream://<ms>,
 *     tone_stream://%(on,off,freq)… and local_stream:// need no file (mod_tone_stream,
 *     mod_local_stream); local_stream plays until playback_timeout_sec.
 * M7  The private event queue (switch_core_session.c, switch_ivr.c switch_ivr_parse_event): our
 *     sendmsg execute/hangup and uuid_broadcast's playback are queued in order and run by the
 *     park loop, or NESTED by a running prompt, collection or bridge, which parse the queue every
 *     frame; instant applications (set, answer …) do not, so applications queued behind them run
 *     back to back. uuid_broadcast's playback carries event-lock: while it plays nothing else is
 *     dequeued, so a `sendmsg … call-command: hangup` queued behind it waits until it ends
 *     (daemon-spend-cut-during-warning-broadcast: hung up 6 s after the cut was sent). A sendmsg
 *     with `event-lock: true` sets the same flag (switch_ivr_parse_event sets CF_EVENT_LOCK before
 *     the application and clears it after): the daemon's greeting in front of a hunt, so the
 *     bridge written while it plays starts when it ends, not nested inside it. Outside an
 *     event-locked prompt a sendmsg hangup acts at the next frame (switch_ivr_play_file and
 *     switch_ivr_collect_digits_count call switch_ivr_parse_all_events every frame, and only
 *     CF_EVENT_LOCK stops switch_core_session_dequeue_private_event). FREESWITCH.md says any
 *     running prompt plays to its end first; the captures show that only for the event-locked
 *     broadcast, so the stand-in follows the source. The daemon cuts with uuid_kill either way.
 * M8  `api uuid_kill <uuid> <cause>` on a `full` socket runs in the socket thread and hangs up at
 *     once, whatever plays (outbound-plain-bridge-killed-by-uuid_kill: mid-broadcast).
 * M9  Each application clears Application-Response when it starts; a nested one (the broadcast's
 *     playback) sets it, so the completion of the bridge around it, and of the dialplan's
 *     `socket`, report FILE PLAYED (switch_core_session.c switch_core_session_exec;
 *     daemon-spend-cut-…, outbound-plain-bridge-killed-…).
 * M10 During a bridge the caller's keys go to the other leg; when the bridge ends the queue is
 *     flushed (switch_ivr_bridge.c). A failed bridge hangs the caller up unless continue_on_fail
 *     is set; NO_ANSWER, NO_USER_RESPONSE and ORIGINATOR_CANCEL return by default
 *     (switch_ivr_originate.c). With hangup_after_bridge an answered bridge ends the call.
 *     Early media (a leg's 183 with SDP: a carrier's in-band ringback, 彩铃, or an announcement
 *     before a failure): unless the dial string's `{}` sets ignore_early_media or
 *     bridge_early_media (or monitor_early_media_*), early_ok holds and the originate returns at
 *     the first leg with early media (check_channel_status: `early_ok && CF_EARLY_MEDIA`): the
 *     other legs are cancelled, leg_timeout no longer counts (check_per_channel_timeouts runs
 *     only inside the originate), DIALSTATUS and originate_disposition say SUCCESS whether or not
 *     that phone ever answers, and the bridge runs until the leg ends; hangup_after_bridge applies
 *     only if it answered. What the caller hears while the phones ring is logged in `ringing`:
 *     the `ringback` (`transfer_ringback` once answered) FreeSWITCH generates when one is set
 *     (sending_ringback); with none, the network's 180 passed on to a caller without media yet,
 *     or silence to a caller already in early media or answered (a prompt played: ring_ready is
 *     a no-op on a channel with CF_EARLY_MEDIA, switch_channel.c; the originate loop writes
 *     silence frames); or the early media of the leg the originate returned on.
 * M11 `record <path> …` (switch_ivr_play_say.c switch_ivr_record_file) opens its file in a folder
 *     that must already exist: it makes none, and a file it cannot open hangs the channel up with
 *     DESTINATION_OUT_OF_ORDER. `record_session` (switch_ivr_async.c switch_ivr_record_session)
 *     and mod_dptools `mkdir` make the path's folders (switch_dir_make_recursive). The stand-in
 *     knows the folders they made and those a test lists in `existingDirs`; no other.
 * M12 What `record` reports (switch_ivr_play_say.c switch_ivr_record_file): silence_hits_exhausted
 *     is set "false" once the file is open and "true" when <hits> seconds of frames below the
 *     threshold end it (the count is samplerate × hits / samples per frame, 3 s when 0; the frame
 *     that exhausts it breaks the loop BEFORE its write). When it ends, for whatever reason (`#`,
 *     silence, max seconds, the caller hanging up: the loop breaks and the variables are still
 *     set, the completion still sent before CHANNEL_HANGUP_COMPLETE), record_samples =
 *     fh->samples_out, record_ms = samples / (rate / 1000), record_seconds = samples / rate
 *     (integer division): the audio WRITTEN. Frames flagged SFF_CNG (the caller's phone sends
 *     nothing: VAD/DTX, or no RTP at all) are not written unless record_fill_cng is set (true:
 *     comfort noise at 1400), so a silent caller without it leaves record_ms 0 and a 44-byte
 *     file even though the recording ran <hits> s (outbound-plain-missing-file-no-digits-record-
 *     silence: `record … 6 200 2`, 2.000 s, record_ms 0, silence_hits_exhausted true). Nothing
 *     trims the trailing silence. The max-seconds limit is checked in whole epoch seconds
 *     (`now - start > limit`), so it ends in the second after <max>. The stand-in's caller speaks
 *     `recordSeconds` from the start, then is silent: as audio frames (`recordSilence: 'audio'`,
 *     a phone that always sends RTP; the default) or as CNG (`'cng'`, the capture's sipp).
 * M13 `api uuid_displace <uuid> start <file> 0 mux` (mod_commands.c session_displace_function,
 *     switch_ivr_async.c switch_ivr_displace_session): a media bug, not a queued application: the
 *     file is mixed into the frames written to the caller from the next frame, whatever runs,
 *     event-locked prompt or not, and the bug removes itself at the end of the file (no `l`
 *     flag). A channel with no media yet (neither answered nor early media) is pre-answered first
 *     (switch_channel_pre_answer, before anything else is looked at: early media from then on).
 *     `+OK Success`; `-ERR Cannot displace session!` when the file cannot be opened or the same
 *     file is still displacing; `-ERR Cannot locate session!` for a channel that is gone. Only frames that are
 *     written carry it (write_displace_callback reads the file one written frame at a time): over
 *     a prompt or a bridge it is heard at once; sent in park it waits, unread, for the next
 *     application that writes audio. The stand-in logs what the caller heard in `heard`: a
 *     displace when it is first mixed in (with what it plays over), a broadcast when its queued
 *     playback starts (M7: behind an event-locked prompt).
 */
import { randomUUID } from 'node:crypto';
import { dirname as posixDirname } from 'node:path/posix';

/** Keys the caller presses: `keys` one after another from `atMs`, `gapMs` apart (default 400). */
export interface KeyPress {
  atMs: number;
  keys: string;
  gapMs?: number;
}

/** What the caller does, in FreeSWITCH time after the call was answered (or connected). */
export interface CallerTimeline {
  keys?: readonly KeyPress[];
  /** The caller hangs up this long after answer (or connect). */
  hangupAtMs?: number;
  /** What the times count from; default the answer (as the fixtures README describes calls). */
  from?: 'answer' | 'connect';
}

/** Maps FreeSWITCH time onto test time. */
export interface Clock {
  now(): number;
  /** Resolves at FreeSWITCH time `t`, or earlier when wake() is called. */
  sleepUntil(t: number): Promise<void>;
  wake(): void;
  /** Runs `fn` at FreeSWITCH time `t` (a caller hanging up, a test cutting a call). */
  at(t: number, fn: () => void): void;
  stop(): void;
}

/** Real time: FreeSWITCH ms = wall ms / scale (timeScale 0.1: a 10 s prompt takes 1 s). */
export class RealClock implements Clock {
  private readonly origin = performance.now();
  private waker: (() => void) | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly scale: number) {}

  now(): number {
    return (performance.now() - this.origin) / this.scale;
  }

  sleepUntil(t: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.timers.delete(timer);
        if (this.waker === done) this.waker = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, (t - this.now()) * this.scale));
      this.timers.add(timer);
      this.waker = done;
    });
  }

  wake(): void {
    this.waker?.();
  }

  at(t: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, Math.max(0, (t - this.now()) * this.scale));
    this.timers.add(timer);
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.wake();
  }
}

/**
 * Virtual time for the scripted channel: time moves only while an application waits, jumping
 * straight to the next thing that happens. Scheduled events run in time order.
 */
export class VirtualClock implements Clock {
  private time = 0;
  private events: Array<{ t: number; seq: number; fn: () => void }> = [];
  private seq = 0;
  private sleeping = false;
  private woken = false;

  now(): number {
    return this.time;
  }

  async sleepUntil(t: number): Promise<void> {
    this.sleeping = true;
    this.woken = false;
    try {
      for (;;) {
        const next = this.events[0];
        if (!next || next.t > t) break;
        this.events.shift();
        this.time = Math.max(this.time, next.t);
        next.fn();
        if (this.woken) return;
      }
      this.time = Math.max(this.time, t);
    } finally {
      this.sleeping = false;
      // Let other awaiting code (the step) see the new state before the application goes on.
      await Promise.resolve();
    }
  }

  wake(): void {
    if (this.sleeping) this.woken = true;
  }

  at(t: number, fn: () => void): void {
    this.events.push({ t, seq: this.seq++, fn });
    this.events.sort((a, b) => a.t - b.t || a.seq - b.seq);
  }

  /** Runs every event due by `t` (a test moving time on while nothing plays). */
  async advanceTo(t: number): Promise<void> {
    await this.sleepUntil(t);
  }

  stop(): void {
    this.events = [];
  }
}

export type LegResult = 'answer' | 'busy' | 'no_answer' | 'unreachable';

/** FreeSWITCH's switch_true (switch_utils.h), as switch_ivr_parse_event reads `event-lock`. */
export function switchTrue(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (/^(yes|on|true|t|enabled|active|allow)$/i.test(value)) return true;
  // switch_is_number (a sign, digits and dots), then atoi: "2" and "1.5" are true, "0" and ".5" false.
  return /^[+-]?[0-9.]*$/.test(value) && (Number.parseInt(value, 10) || 0) !== 0;
}

/** M12: a silent caller's frames are audio below the threshold, or CNG (the phone sends nothing). */
export type RecordSilence = 'audio' | 'cng';

export interface LegPlan {
  result: LegResult;
  /** How long the leg rings before it answers or is busy (test ms, scaled like the rest). */
  ringMs?: number;
  /** How long an answered leg talks before the callee hangs up (test ms). */
  talkMs?: number;
  /**
   * The leg sends early media (183 with SDP) this long after it is dialled (test ms), before it
   * answers, is busy or, for `no_answer`, is given up by its network at `ringMs` (default 60 s).
   */
  earlyMediaMs?: number;
}

export interface BridgeAttempt {
  dialString: string;
  vars: Record<string, string>;
  number: string;
  result: LegResult | 'cancelled';
}

export interface MediaOptions {
  timeline?: CallerTimeline;
  /** FreeSWITCH ms each prompt plays for, by file (or URL) as the daemon names it. */
  promptMs?: Readonly<Record<string, number>>;
  /** FreeSWITCH ms of a prompt not listed. */
  defaultPromptMs: number;
  /** Files that do not exist; also every file under `missingDirs`. */
  missingFiles?: readonly string[];
  missingDirs?: readonly string[];
  /** Seconds the caller speaks when `record` runs. */
  recordSeconds?: number;
  /** How the caller's silence after speaking reaches FreeSWITCH during `record` (M12); default 'audio'. */
  recordSilence?: RecordSilence;
  /** Folders that exist before the call (M11); record_session and mkdir add theirs. */
  existingDirs?: readonly string[];
  /** The leg plan for a dialled number. */
  planFor(number: string): LegPlan;
  /** Test ms (legacy scripts: ringMs, talkMs) in FreeSWITCH ms. */
  toFs(testMs: number): number;
  /**
   * The channel is already answered when it reaches us (a leg FreeSWITCH originated and handed to
   * `&socket(…)`: click-to-call): answered at time 0, no CHANNEL_ANSWER, the timeline counts from then.
   */
  answered?: boolean;
}

/** What the channel tells the outside world (the stand-in turns these into ESL events). */
export interface ChannelHooks {
  answered(): void;
  earlyMedia(): void;
  /** An application starts (EXECUTE) and completes (EXECUTE_COMPLETE with Application-Response). */
  appStarted(app: QueuedApp): void;
  appCompleted(app: QueuedApp, response: string): void;
  /** The A leg is bridged to `number` (CHANNEL_BRIDGE), and later unbridged. */
  bridged(number: string, callerId: string): void;
  unbridged(): void;
  /** The channel hung up (CHANNEL_HANGUP). */
  hungUp(cause: string): void;
  /** Nothing runs any more after the hang-up: the dialplan's socket completes, HANGUP_COMPLETE. */
  finished(cause: string): void;
  leg(attempt: BridgeAttempt): void;
}

export interface QueuedApp {
  kind: 'execute';
  app: string;
  arg: string;
  /** Our sendmsg's Event-UUID, echoed as Application-UUID; a broadcast has its own. */
  eventUuid: string | null;
  /** uuid_broadcast, or a sendmsg with `event-lock: true`: nothing else dequeued while it runs (M7). */
  lock: boolean;
  /** Queued by uuid_broadcast, not by a sendmsg of ours. */
  broadcast: boolean;
  /** `ran` false: the channel hung up before it started (it never runs). */
  done(response: string, ran: boolean): void;
}

type PrivateEvent = QueuedApp | { kind: 'hangup'; cause: string };

/** The park loop's frame (20 ms ptime). */
const FRAME_MS = 20;
/** Causes after which bridge returns control without continue_on_fail (switch_ivr_originate.c). */
const CONTINUE_BY_DEFAULT = new Set(['NO_ANSWER', 'NO_USER_RESPONSE', 'ORIGINATOR_CANCEL']);
/** Applications that take no time and never look at the event queue. */
const INSTANT = new Set(['set', 'unset', 'export', 'multiset', 'answer', 'pre_answer', 'record_session', 'mkdir', 'hangup', 'log']);

type WaitResult = 'time' | 'key' | 'hangup';

export class ChannelModel {
  readonly vars: Record<string, string> = {};
  answeredAt: number | null = null;
  hungUp = false;
  hangupCause: string | null = null;
  /** Keys as they arrived and what became of them (for tests and the fidelity replay). */
  readonly keyLog: Array<{ at: number; key: string; fate: 'queued' | 'collected' | 'dropped' | 'flushed' }> = [];

  /** What the caller heard while the phones rang, one entry a bridge (M10). */
  readonly ringing: Array<{ at: number; heard: string }> = [];

  /** Warnings as the caller heard them (M13): when, how, and over which application (null: park). */
  readonly heard: Array<{ file: string; at: number; how: 'broadcast' | 'displace'; over: string | null }> = [];
  /** Files displacing now, and until when (M13: one of the same file at a time). */
  private readonly displacing = new Map<string, number>();
  /** Displaces sent in park: mixed into the next application that writes audio (M13). */
  private unheard: string[] = [];
  /** Folders that exist (M11). */
  private readonly dirs = new Set<string>();
  private readonly keys: Array<{ at: number; key: string }> = [];
  private cursor = 0;
  private queue: Array<{ at: number; key: string }> = [];
  private readonly events: PrivateEvent[] = [];
  /** When the channel went back to park; null while an application runs. */
  private parkedSince: number | null = 0;
  private running: string | null = null;
  private lockDepth = 0;
  private response: string | null = null;
  private earlyMediaSent = false;

  /** The channel has had early media (a 183: pre_answer, a prompt, uuid_displace) before or without an answer. */
  get hadEarlyMedia(): boolean {
    return this.earlyMediaSent;
  }
  private loopRunning = false;
  private finishedSent = false;

  constructor(
    private readonly clock: Clock,
    private readonly opts: MediaOptions,
    private readonly hooks: ChannelHooks,
  ) {
    for (const d of opts.existingDirs ?? []) this.makeDirs(d);
    const timeline = opts.timeline;
    if (opts.answered) this.answeredAt = 0;
    if (timeline?.from === 'connect' || opts.answered) this.schedule(0);
  }

  get now(): number {
    return this.clock.now();
  }

  /** Application-Response as FreeSWITCH reports it on a completion (M9). */
  get applicationResponse(): string {
    return this.response ?? '_none_';
  }

  // ---- the private event queue (M7)

  /** A sendmsg execute (or uuid_broadcast's playback when `lock`). Resolves with Application-Response. */
  execute(app: string, arg: string, eventUuid: string | null, lock = false, broadcast = false): Promise<{ response: string; ran: boolean }> {
    return new Promise((resolve) => {
      const done = (response: string, ran: boolean): void => resolve({ response, ran });
      if (this.hungUp) return done('_none_', false); // queued work of a dead channel never runs
      this.events.push({ kind: 'execute', app, arg, eventUuid, lock, broadcast, done });
      this.kick();
    });
  }

  /** sendmsg with `call-command: hangup`: queued like everything else (M7). */
  hangupCommand(cause: string): void {
    if (this.hungUp) return;
    this.events.push({ kind: 'hangup', cause });
    this.kick();
  }

  /** uuid_broadcast <uuid> <file> (one leg seen: the caller's). */
  broadcast(file: string): void {
    void this.execute('playback', file, randomUUID(), true, true);
  }

  /** `api uuid_displace <uuid> start <file> 0 mux` (M13): FreeSWITCH's api response. */
  displace(file: string): string {
    if (this.hungUp) return '-ERR Cannot locate session!\n';
    const now = this.clock.now();
    const length = this.promptDuration(file);
    this.earlyMedia();
    if (length === null || (this.displacing.get(file) ?? -1) > now) return '-ERR Cannot displace session!\n';
    this.displacing.set(file, now + length);
    if (this.running !== null && !INSTANT.has(this.running)) this.heard.push({ file, at: now, how: 'displace', over: this.running });
    else this.unheard.push(file);
    return '+OK Success\n';
  }

  /** `api uuid_kill` (M8), the caller hanging up, or hangup_after_bridge: the channel goes now. */
  hangup(cause: string): void {
    if (this.hungUp) return;
    this.hungUp = true;
    this.hangupCause = cause;
    this.vars.hangup_cause = cause;
    // Queued work never runs on a dead channel; a running application completes first.
    for (const e of this.events.splice(0)) if (e.kind === 'execute') e.done('_none_', false);
    this.hooks.hungUp(cause);
    this.clock.wake();
    if (!this.running) this.finish();
  }

  private kick(): void {
    this.clock.wake();
    if (!this.loopRunning) void this.parkLoop();
  }

  /** The park loop: runs queued events one after another; between them, keys are dropped (M2). */
  private async parkLoop(): Promise<void> {
    this.loopRunning = true;
    // Let every command of this TCP read (or this tick) reach the queue first: they run back to back.
    await Promise.resolve();
    try {
      while (!this.hungUp && this.events.length > 0) {
        const event = this.events.shift()!;
        this.leavePark();
        if (event.kind === 'hangup') {
          this.hangup(event.cause);
          break;
        }
        const response = await this.runApp(event);
        event.done(response, true);
        if (this.hungUp) break;
        if (this.events.length === 0) {
          this.parkedSince = this.clock.now();
          this.parkDrop();
        }
      }
    } finally {
      this.loopRunning = false;
      if (this.hungUp) this.finish();
    }
  }

  private finish(): void {
    if (this.finishedSent || this.running) return;
    this.finishedSent = true;
    this.hooks.finished(this.hangupCause ?? 'NORMAL_CLEARING');
  }

  /** Park's frames between the last application and now: each drops one queued key (M2). */
  private leavePark(): void {
    const since = this.parkedSince;
    this.parkedSince = null;
    if (since === null) return;
    const now = this.clock.now();
    for (let f = since + FRAME_MS; f < now; f += FRAME_MS) {
      this.arrive(f, 'queue');
      this.parkDrop();
    }
    this.arrive(now, 'queue');
  }

  private parkDrop(): void {
    const dropped = this.queue.shift();
    if (dropped) this.fate(dropped, 'dropped');
  }

  private async runApp(app: QueuedApp): Promise<string> {
    const outer = this.running;
    this.running = app.app;
    this.response = null; // M9
    if (app.lock) this.lockDepth++;
    if (app.broadcast) this.heard.push({ file: app.arg, at: this.clock.now(), how: 'broadcast', over: outer });
    this.hooks.appStarted(app);
    if (!INSTANT.has(app.app)) {
      // M13: a displace sent in park is mixed into the first frames this application writes.
      for (const file of this.unheard.splice(0)) {
        this.displacing.set(file, this.clock.now() + (this.promptDuration(file) ?? 0));
        this.heard.push({ file, at: this.clock.now(), how: 'displace', over: app.app });
      }
    }
    let response: string;
    try {
      response = await this.perform(app.app, app.arg);
    } finally {
      if (app.lock) this.lockDepth--;
      this.running = outer;
    }
    this.hooks.appCompleted(app, response);
    return response;
  }

  /** Runs what is queued from inside a running application (M7); returns the time it took. */
  private async runNested(): Promise<number> {
    const started = this.clock.now();
    while (!this.hungUp && this.lockDepth === 0 && this.events.length > 0) {
      const event = this.events.shift()!;
      if (event.kind === 'hangup') {
        this.hangup(event.cause);
        break;
      }
      event.done(await this.runApp(event), true);
    }
    return this.clock.now() - started;
  }

  private hasNested(): boolean {
    return this.lockDepth === 0 && this.events.length > 0;
  }

  // ---- keys (M1)

  private schedule(origin: number): void {
    const timeline = this.opts.timeline;
    if (!timeline) return;
    for (const press of timeline.keys ?? []) {
      [...press.keys].forEach((key, i) => this.keys.push({ at: origin + press.atMs + i * (press.gapMs ?? 400), key }));
    }
    this.keys.sort((a, b) => a.at - b.at);
    if (timeline.hangupAtMs !== undefined) {
      this.clock.at(origin + timeline.hangupAtMs, () => this.hangup(this.answeredAt === null ? 'ORIGINATOR_CANCEL' : 'NORMAL_CLEARING'));
    }
  }

  /** Legacy scripts: the caller types `keys` now (they reach the queue at once). */
  typeNow(keys: string): void {
    const now = this.clock.now();
    this.keys.splice(this.cursor, 0, ...[...keys].map((key) => ({ at: now, key })));
  }

  /** Keys that arrived up to `t` get a fate: queued, or dropped (a bridge gives them to the other leg). */
  private arrive(t: number, mode: 'queue' | 'drop'): void {
    while (this.cursor < this.keys.length && this.keys[this.cursor].at <= t) {
      const k = this.keys[this.cursor++];
      if (mode === 'queue') {
        this.queue.push(k);
        this.keyLog.push({ at: k.at, key: k.key, fate: 'queued' });
      } else this.fate(k, 'dropped');
    }
  }

  private fate(k: { at: number; key: string }, fate: 'collected' | 'dropped' | 'flushed'): void {
    this.keyLog.push({ at: k.at, key: k.key, fate });
  }

  private flushQueue(): void {
    for (const k of this.queue.splice(0)) this.fate(k, 'flushed');
  }

  /**
   * Waits in a running application until `until`; each key arriving meanwhile goes to `onKey`
   * (true: stop waiting), or to the queue / the other leg. Queued private events run nested;
   * `extend` then moves the deadline by the time they took (a prompt pauses, a bridge does not).
   */
  private async wait(
    until: number,
    onKey: ((k: { at: number; key: string }) => boolean) | 'queue' | 'drop',
    extend = true,
  ): Promise<{ result: WaitResult; at: number }> {
    let deadline = until;
    for (;;) {
      if (this.hungUp) return { result: 'hangup', at: this.clock.now() };
      if (this.hasNested()) {
        const took = await this.runNested();
        if (extend) deadline += took;
        continue;
      }
      const next = this.keys[this.cursor];
      const target = next && next.at < deadline ? next.at : deadline;
      if (this.clock.now() < target) {
        await this.clock.sleepUntil(target);
        continue;
      }
      if (next && next.at <= deadline) {
        this.cursor++;
        if (onKey === 'queue') {
          this.queue.push(next);
          this.keyLog.push({ at: next.at, key: next.key, fate: 'queued' });
        } else if (onKey === 'drop') {
          this.fate(next, 'dropped');
        } else if (onKey(next)) {
          return { result: 'key', at: next.at };
        }
        continue;
      }
      return { result: 'time', at: deadline };
    }
  }

  // ---- applications

  private async perform(app: string, arg: string): Promise<string> {
    if (INSTANT.has(app)) this.arrive(this.clock.now(), 'queue');
    switch (app) {
      case 'set':
      case 'export': {
        const eq = arg.indexOf('=');
        if (eq > 0) this.vars[arg.slice(0, eq)] = arg.slice(eq + 1);
        return this.applicationResponse;
      }
      case 'unset':
        delete this.vars[arg.trim()];
        return this.applicationResponse;
      case 'multiset':
        for (const pair of arg.split(' ')) {
          const eq = pair.indexOf('=');
          if (eq > 0) this.vars[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        return this.applicationResponse;
      case 'answer':
        this.answer();
        return this.applicationResponse;
      case 'pre_answer':
        this.earlyMedia();
        return this.applicationResponse;
      case 'record_session':
        this.vars.record_session_path = arg;
        this.makeDirs(posixDirname(arg));
        return this.applicationResponse;
      case 'mkdir':
        this.makeDirs(arg.trim());
        return this.applicationResponse;
      case 'hangup':
        this.hangup(arg.trim() || 'NORMAL_CLEARING');
        return this.applicationResponse;
      case 'playback':
        this.response = await this.playback(arg);
        return this.response;
      case 'speak':
        // mod_dptools speak reads keys like playback but sets no Application-Response.
        await this.playback(`speak:${arg}`);
        return this.applicationResponse;
      case 'play_and_get_digits':
        await this.playAndGetDigits(arg);
        return this.applicationResponse;
      case 'record':
        await this.recordMessage(arg);
        return this.applicationResponse;
      case 'bridge':
        await this.bridge(arg);
        return this.applicationResponse;
      default:
        return this.applicationResponse;
    }
  }

  answer(): void {
    if (this.answeredAt !== null) return;
    this.answeredAt = this.clock.now();
    this.hooks.answered();
    if (this.opts.timeline && this.opts.timeline.from !== 'connect') this.schedule(this.answeredAt);
  }

  private earlyMedia(): void {
    if (this.answeredAt !== null || this.earlyMediaSent) return;
    this.earlyMediaSent = true;
    this.hooks.earlyMedia();
  }

  // ---- prompts (M3, M6)

  private missing(file: string): boolean {
    return (this.opts.missingFiles ?? []).includes(file) || (this.opts.missingDirs ?? []).some((d) => file.startsWith(d.endsWith('/') ? d : `${d}/`));
  }

  /** How long a prompt plays, or null when it cannot be opened (M6). */
  promptDuration(file: string): number | null {
    if (file.startsWith('file_string://')) {
      const parts = file.slice('file_string://'.length).split('!').map((p) => this.promptDuration(p));
      if (parts.every((p) => p === null)) return null;
      return 250 + parts.reduce<number>((sum, p) => sum + (p ?? 0), 0);
    }
    if (this.missing(file)) return null;
    const listed = this.opts.promptMs?.[file];
    if (listed !== undefined) return listed;
    if (file.startsWith('silence_stream://')) return Number(/^silence_stream:\/\/(\d+)/.exec(file)?.[1] ?? 0);
    if (file.startsWith('tone_stream://')) return toneMs(file);
    if (file.startsWith('local_stream://')) {
      const seconds = Number(this.vars.playback_timeout_sec ?? 0);
      return seconds > 1 ? seconds * 1000 : 3_600_000;
    }
    return this.opts.defaultPromptMs;
  }

  private terminators(): string {
    const v = this.vars.playback_terminators;
    if (v === undefined) return '*';
    if (v === 'any') return '0123456789*#';
    if (v === 'none') return '';
    return v;
  }

  /** mod_dptools playback (M3): keys are taken off the queue; only a terminator stops it. */
  private async playback(file: string): Promise<string> {
    this.earlyMedia();
    const duration = this.promptDuration(file);
    if (duration === null) {
      this.flushQueue();
      return 'FILE NOT FOUND';
    }
    const terms = this.terminators();
    const onKey = (k: { at: number; key: string }): boolean => {
      if (terms.includes(k.key)) {
        this.vars.playback_terminator_used = k.key;
        this.fate(k, 'collected');
        return true;
      }
      this.fate(k, 'dropped');
      return false;
    };
    while (this.queue.length > 0) if (onKey(this.queue.shift()!)) return 'FILE PLAYED';
    const r = await this.wait(this.clock.now() + duration, onKey);
    return r.result === 'hangup' ? 'PLAYBACK ERROR' : 'FILE PLAYED';
  }

  /** switch_play_and_get_digits (M4, M5). */
  private async playAndGetDigits(arg: string): Promise<void> {
    const p = arg.split(' ');
    const min = Number(p[0]);
    let max = Number(p[1]);
    let tries = Number(p[2]);
    const timeout = Number(p[3]);
    const terminators = p[4] === 'none' ? '' : p[4] ?? '';
    const file = p[5] ?? '';
    const invalid = p[6] ?? '';
    const variable = p[7] ?? '';
    const regexp = p[8] ?? '';
    const digitTimeout = Number(p[9] ?? 0) || timeout;
    if (max < min) max = min;
    this.earlyMedia();
    if (regexp && variable) delete this.vars[`${variable}_invalid`];
    while (!this.hungUp && tries > 0) {
      const { status, buf } = await this.read(min, max, file, variable, timeout, terminators, digitTimeout);
      let ok = status;
      if (ok === 'timeout' && buf.length >= min) ok = 'success';
      if (min === 0 && buf === '' && this.vars.read_terminator_used !== undefined) return;
      if (!(ok === 'too_small' && buf === '') && ok === 'success' && buf !== '') {
        if (!regexp || new RegExp(regexp).test(buf)) return;
        delete this.vars[variable];
        if (variable) this.vars[`${variable}_invalid`] = buf;
      }
      if (this.hungUp) break;
      // The invalid file plays without reading keys: they stay queued for the next try (M4).
      const invalidMs = this.promptDuration(invalid);
      if (invalidMs === null) this.flushQueue();
      else if ((await this.wait(this.clock.now() + invalidMs, 'queue')).result === 'hangup') break;
      tries--;
    }
  }

  /** switch_ivr_read: one try. */
  private async read(
    min: number,
    max: number,
    file: string,
    variable: string,
    timeout: number,
    terminators: string,
    digitTimeout: number,
  ): Promise<{ status: 'success' | 'timeout' | 'too_small' | 'failure' | 'notfound'; buf: string }> {
    delete this.vars.read_result;
    if (variable) delete this.vars[variable];
    let buf = '';
    let status: 'success' | 'timeout' | 'too_small' | 'failure' | 'notfound' = 'success';
    const duration = this.promptDuration(file);
    if (duration === null) {
      this.flushQueue(); // M5: switch_core_session_reset(session, TRUE, …)
      return { status: 'notfound', buf: '' };
    }
    // The prompt: the first key (queued or arriving) stops it and is kept.
    const first = this.queue.shift();
    if (first) {
      buf = first.key;
      this.fate(first, 'collected');
    } else {
      const r = await this.wait(this.clock.now() + duration, (k) => {
        buf = k.key;
        this.fate(k, 'collected');
        return true;
      });
      if (r.result === 'hangup') return { status: 'failure', buf: '' }; // goto end: read_result stays unset
    }
    let terminator = '';
    if ((min && buf.length < min) || buf.length < max) {
      const collected = await this.collect(buf, max, terminators, buf.length > 0 ? digitTimeout : timeout, digitTimeout);
      buf = collected.buf;
      terminator = collected.terminator;
      status = collected.status;
    }
    if (terminator) this.vars.read_terminator_used = terminator;
    if (min && buf.length < min) status = 'too_small';
    this.vars.read_result = status === 'success' ? 'success' : status === 'timeout' ? 'timeout' : 'failure';
    if (max === 1 && buf.length === 1 && terminators.includes(buf)) buf = '';
    if (variable && buf !== '') this.vars[variable] = buf;
    return { status, buf };
  }

  /** switch_ivr_collect_digits_count. */
  private async collect(
    start: string,
    max: number,
    terminators: string,
    firstTimeout: number,
    digitTimeout: number,
  ): Promise<{ buf: string; terminator: string; status: 'success' | 'timeout' | 'failure' }> {
    let buf = start;
    const cut = [...buf].findIndex((c) => terminators.includes(c));
    if (cut >= 0) return { buf: buf.slice(0, cut), terminator: buf[cut], status: 'success' };
    let eff = firstTimeout;
    let started = this.clock.now();
    for (;;) {
      if (this.queue.length > 0) {
        eff = digitTimeout;
        started = this.queue[this.queue.length - 1].at > started ? this.queue[this.queue.length - 1].at : started;
        while (this.queue.length > 0) {
          const k = this.queue.shift()!;
          this.fate(k, 'collected');
          if (terminators.includes(k.key)) return { buf, terminator: k.key, status: 'success' };
          buf += k.key;
          if (buf.length >= max) return { buf, terminator: '', status: 'success' };
        }
      }
      const r = await this.wait(started + eff, (k) => {
        this.queue.push(k);
        return true;
      }, false);
      if (r.result === 'hangup') return { buf, terminator: '', status: 'failure' };
      if (r.result === 'time') return { buf, terminator: '', status: 'timeout' };
    }
  }

  /** A folder and its parents now exist (M11: switch_dir_make_recursive). */
  private makeDirs(dir: string): void {
    for (let d = dir; d !== '/' && d !== '.' && d !== ''; d = posixDirname(d)) this.dirs.add(d);
  }

  /**
   * `record <path> <max s> <threshold> <silence hits>` (voicemail, M11, M12): the caller speaks
   * `recordSeconds`, then is silent; `#` ends it. With a threshold, <silence hits> seconds of
   * silence end it; the max seconds end it in the epoch second after <max>.
   */
  private async recordMessage(arg: string): Promise<void> {
    const [file = '', max, threshold, hits] = arg.split(' ');
    if (!this.dirs.has(posixDirname(file))) {
      // M11: the file cannot be opened; switch_ivr_record_file hangs the channel up.
      this.hangup('DESTINATION_OUT_OF_ORDER');
      return;
    }
    this.vars.silence_hits_exhausted = 'false';
    const started = this.clock.now();
    const maxS = Number(max ?? 0) || 3600;
    const speakMs = Math.min(this.opts.recordSeconds ?? 3, maxS) * 1000;
    const silenceMs = Number(threshold ?? 0) > 0 ? (Number(hits ?? 0) || 3) * 1000 : Infinity;
    const limitEnd = (Math.floor(started / 1000) + maxS + 1) * 1000;
    const silenceEnd = started + speakMs + silenceMs;
    const terms = this.terminators();
    this.flushQueue();
    const r = await this.wait(Math.min(limitEnd, silenceEnd), (k) => {
      if (terms.includes(k.key)) return true;
      this.fate(k, 'dropped');
      return false;
    });
    const onSilence = r.result === 'time' && silenceEnd <= limitEnd;
    const elapsed = r.at - started;
    const fill = this.vars.record_fill_cng === 'true' || Number(this.vars.record_fill_cng ?? 0) > 0;
    const silentWritten = this.opts.recordSilence === 'cng' && !fill ? 0 : Math.max(0, elapsed - speakMs - (onSilence ? FRAME_MS : 0));
    const written = Math.floor((Math.min(speakMs, elapsed) + silentWritten) / FRAME_MS) * FRAME_MS;
    const rate = 8000;
    this.vars.record_samples = String((written * rate) / 1000);
    this.vars.record_ms = String(written);
    this.vars.record_seconds = String(Math.floor(written / 1000));
    if (onSilence) this.vars.silence_hits_exhausted = 'true';
  }

  // ---- bridge (M10)

  private async bridge(arg: string): Promise<void> {
    const match = /^\{([^}]*)\}(.*)$/.exec(arg);
    const vars: Record<string, string> = {};
    if (match) {
      for (const pair of match[1].split(',')) {
        const eq = pair.indexOf('=');
        if (eq > 0) vars[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
    }
    const legs = (match ? match[2] : arg).split(',').map((target) => {
      const number = target.slice(target.lastIndexOf('/') + 1).split('@')[0];
      const plan = this.opts.planFor(number);
      const attempt: BridgeAttempt = { dialString: arg, vars, number, result: plan.result };
      this.hooks.leg(attempt);
      return { number, plan, attempt };
    });
    const start = this.clock.now();
    const legTimeout = Number(vars.leg_timeout ?? vars.call_timeout ?? 60) * 1000;
    const ring = (l: (typeof legs)[number]): number => this.opts.toFs(l.plan.ringMs ?? 10);
    const answering = legs.filter((l) => l.plan.result === 'answer').sort((a, b) => ring(a) - ring(b))[0];
    const cancelled = (): void => {
      for (const l of legs) l.attempt.result = 'cancelled';
      this.setResult('ORIGINATOR_CANCEL', 'CANCEL');
    };
    let disposition: string;
    let dialStatus: string;
    const ringFor = async (ms: number): Promise<boolean> => (await this.wait(start + ms, 'drop', false)).result !== 'hangup';
    const earlyOk = !(
      switchTrue(vars.bridge_early_media) || switchTrue(vars.ignore_early_media) || vars.ignore_early_media === 'consume' ||
      vars.ignore_early_media === 'ring_ready' || vars.monitor_early_media_ring !== undefined || vars.monitor_early_media_fail !== undefined
    );
    const earlyAt = (l: (typeof legs)[number]): number => (l.plan.earlyMediaMs === undefined ? Infinity : this.opts.toFs(l.plan.earlyMediaMs));
    const early = earlyOk ? legs.filter((l) => earlyAt(l) < Infinity).sort((a, b) => earlyAt(a) - earlyAt(b))[0] : undefined;
    const ringback = this.answeredAt !== null ? (this.vars.transfer_ringback ?? this.vars.ringback) : this.vars.ringback;
    const hasMedia = this.answeredAt !== null || this.earlyMediaSent;
    try {
      if (early && earlyAt(early) <= legTimeout && !(answering && ring(answering) <= earlyAt(early))) {
        if (!(await ringFor(earlyAt(early)))) return cancelled();
        for (const l of legs) if (l !== early) l.attempt.result = 'cancelled';
        this.ringing.push({ at: this.clock.now(), heard: `early media of ${early.number}` });
        this.earlyMedia();
        this.vars.last_bridge_to = early.number;
        this.hooks.bridged(early.number, vars.origination_caller_id_number ?? '');
        this.setResult('SUCCESS', 'SUCCESS');
        const ends = early.plan.result === 'no_answer' && early.plan.ringMs === undefined ? 60_000 : ring(early);
        if (!(await ringFor(Math.max(ends, earlyAt(early))))) {
          this.hooks.unbridged();
          return;
        }
        if (early.plan.result === 'answer') {
          this.answer();
          const r = await this.wait(this.clock.now() + this.opts.toFs(early.plan.talkMs ?? 20), 'drop', false);
          this.vars.bridge_hangup_cause = r.result === 'hangup' ? (this.hangupCause ?? 'NORMAL_CLEARING') : 'NORMAL_CLEARING';
          this.hooks.unbridged();
          if (!this.hungUp && this.vars.hangup_after_bridge === 'true') this.hangup('NORMAL_CLEARING');
          return;
        }
        // It never answered: the bridge just ends, DIALSTATUS still SUCCESS, and the caller stays.
        this.vars.bridge_hangup_cause = early.plan.result === 'busy' ? 'USER_BUSY' : early.plan.result === 'unreachable' ? 'NETWORK_OUT_OF_ORDER' : 'NO_ANSWER';
        this.hooks.unbridged();
        return;
      }
      this.ringing.push({ at: this.clock.now(), heard: ringback ?? (hasMedia ? 'silence' : 'network ringing') });
      if (answering && ring(answering) <= legTimeout) {
        if (!(await ringFor(ring(answering)))) return cancelled();
        for (const l of legs) if (l !== answering) l.attempt.result = 'cancelled';
        this.answer();
        this.vars.last_bridge_to = answering.number;
        this.hooks.bridged(answering.number, vars.origination_caller_id_number ?? '');
        this.setResult('SUCCESS', 'SUCCESS');
        const r = await this.wait(this.clock.now() + this.opts.toFs(answering.plan.talkMs ?? 20), 'drop', false);
        this.vars.bridge_hangup_cause = r.result === 'hangup' ? (this.hangupCause ?? 'NORMAL_CLEARING') : 'NORMAL_CLEARING';
        this.hooks.unbridged();
        if (!this.hungUp && this.vars.hangup_after_bridge === 'true') this.hangup('NORMAL_CLEARING');
        return;
      }
      if (answering || legs.some((l) => l.plan.result === 'no_answer')) {
        if (!(await ringFor(legTimeout))) return cancelled();
        disposition = 'ALLOTTED_TIMEOUT';
        dialStatus = 'ALLOTTED_TIMEOUT';
      } else if (legs.every((l) => l.plan.result === 'busy')) {
        if (!(await ringFor(Math.min(Math.max(...legs.map(ring)), legTimeout)))) return cancelled();
        disposition = 'USER_BUSY';
        dialStatus = 'BUSY';
      } else {
        disposition = 'NETWORK_OUT_OF_ORDER';
        dialStatus = 'CHANUNAVAIL';
      }
      this.setResult(disposition, dialStatus);
      const cof = this.vars.continue_on_fail;
      if (cof !== 'true' && !(cof ?? '').split(',').includes(disposition) && !CONTINUE_BY_DEFAULT.has(disposition)) this.hangup(disposition);
    } finally {
      this.flushQueue();
    }
  }

  private setResult(disposition: string, dialStatus: string): void {
    this.vars.originate_disposition = disposition;
    this.vars.DIALSTATUS = dialStatus;
  }
}

/** Length of a tone_stream:// spec: the sum of each %(on,off,…) segment, times loops (L=n). */
export function toneMs(file: string): number {
  const loops = Number(/L=(\d+)/.exec(file)?.[1] ?? 1);
  let ms = 0;
  for (const m of file.matchAll(/%\((\d+),(\d+)/g)) ms += Number(m[1]) + Number(m[2]);
  return (ms || 1000) * Math.max(1, loops);
}
