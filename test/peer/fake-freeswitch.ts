/**
 * A FreeSWITCH stand-in for the OUTBOUND event socket: it connects to the daemon as FreeSWITCH's
 * `socket 127.0.0.1:8084 async full` does for each call, and speaks mod_event_socket's wire
 * format byte for byte. What the channel does with prompts, keys, hang-ups and broadcasts is
 * channel-model.ts (rules M1, M2 …, each with the capture or source file that shows it); this file
 * is the socket around it. test/esl/peer-fidelity.test.ts replays every capture in
 * test/fixtures/esl against it, the five daemon-* calls with the caller's timeline and the prompt
 * lengths real FreeSWITCH showed.
 *
 * What it assumes about the socket, each seen in the captures or read in mod_event_socket.c:
 *  A1 `connect` is answered by one header block: the whole channel (CHANNEL_DATA, values
 *     URL-encoded) then `Content-Type: command/reply`, `Reply-Text: %2BOK%0A`, Socket-Mode, Control.
 *  A2 Replies come one per command, in command order: `command/reply` (`Reply-Text: …`), and for
 *     `api` an `api/response` with a Content-Length body, written by the socket thread before it
 *     reads the next command (parse_command: api_exec then done_noreply).
 *  A3 Events are `Content-Length: n\nContent-Type: text/event-plain\n\n` + n bytes of URL-encoded
 *     `Name: value` lines ended by an empty line; only subscribed events of this call are sent
 *     after `myevents`; `nixevent` removes types ("+OK events nixed").
 *  A4 sendmsg is answered "+OK" at once and queued on the channel (M7); each application ends
 *     with CHANNEL_EXECUTE_COMPLETE echoing the sendmsg's Event-UUID as Application-UUID. Also
 *     after the hang-up, while the socket lingers: "+OK", and nothing runs (the `hangup` sendmsg
 *     after CHANNEL_HANGUP_COMPLETE in outbound-plain-hunt-busy-noanswer-answer.log). On an outbound
 *     socket a sendmsg naming the socket's own channel is queued on it without a lookup, so the
 *     `-ERR invalid session id` that mod_event_socket.c gives a channel that is down never comes. With
 *     `event-lock: true` (switch_true: yes, on, true, t, enabled, active, allow, a non-zero number)
 *     nothing queued behind it runs until it ends (M7; switch_ivr.c switch_ivr_parse_event).
 *  A5 After a bridge: variable_originate_disposition, variable_DIALSTATUS (USER_BUSY/BUSY,
 *     ALLOTTED_TIMEOUT with leg_timeout, SUCCESS, ORIGINATOR_CANCEL/CANCEL) (M10).
 *  A6 `api uuid_kill <uuid> [cause]` (full socket): `+OK\n`, or `-ERR No such channel!\n` for a
 *     channel that is gone (inbound-auth-api-bgapi); the hang-up is at once (M8).
 *     `bgapi uuid_broadcast <uuid> <file> <legs>`: `+OK Job-UUID: …`, the playback queued with
 *     event-lock (M7); `api uuid_broadcast`: `+OK Message Sent\n`. `api uuid_displace <uuid>
 *     start <file> [limit] [mux]`: the model's answer (M13), `-ERR Cannot locate session!\n` for
 *     another channel. Without `full` (not
 *     modelled) api/bgapi would be `-ERR command not found`.
 *  A7 On hangup: CHANNEL_HANGUP; with linger a `text/disconnect-notice` (Content-Disposition:
 *     linger), then the running application's completion, the dialplan's `socket` completion,
 *     CHANNEL_HANGUP_COMPLETE; the socket stays open for the linger time, then a disconnect
 *     notice (Content-Disposition: disconnect, the ClueCon text) and close. Without linger the
 *     socket closes right after the hangup: CHANNEL_HANGUP_COMPLETE is never seen.
 *  A8 A socket the daemon closes with the caller still up ends the `socket` application; what the
 *     dialplan does next reads hotline_handled (freeswitch/dialplan/hotline_after_socket.xml):
 *     CallRecord.releasedWith says whether the flag was set at that moment. Only once the
 *     application's park has started, which the stand-in takes as known when it has sent an
 *     application's completion (the park runs them): before that, mod_event_socket.c's
 *     socket_function may enter switch_ivr_park after the listener thread, seeing the socket
 *     end, already cleared CF_CONTROLLED, and the park then sets it for good and holds the
 *     caller in silence. The stand-in takes the worst case: CallRecord.stuckInPark, no release.
 *  A9 Event-Date-Timestamp and the channel's time stamps are the wall clock (µs); FreeSWITCH
 *     durations in a script (prompt lengths, timeouts, leg_timeout, linger, the caller's
 *     timeline) are scaled by timeScale, so a 15 s ring takes 150 ms at 0.01.
 *  A10 (`socketMode`) The socket application's arguments set Socket-Mode (async|static) and Control
 *     (full|single-channel) in the connect reply; without `full`, an outbound socket gets
 *     "-ERR command not found" for everything but connect, myevents, sendmsg and exit (linger and
 *     nixevent included) — mod_event_socket.c, and outbound-originated-leg-to-socket.log.
 *  A11 (`originated`) A leg FreeSWITCH originated and handed to `&socket(…)` (click-to-call) arrives
 *     answered (Answer-State answered, Channel-Call-State ACTIVE, its answer time set, no
 *     CHANNEL_ANSWER to come; the channel model starts answered), Call-Direction outbound, the
 *     dialled number in both Caller-Caller-ID-Number and Caller-Destination-Number, the origination
 *     caller ID in Caller-Orig-Caller-ID-Number/Caller-Callee-ID-Number/Caller-ANI and the
 *     originate `{…}` variables as variable_* (the CHANNEL_DATA of outbound-originated-leg-to-socket.log).
 *  A12 Without linger, the disconnect notice follows the completion of the application that was
 *     running when the channel hung up (the capture above: CHANNEL_HANGUP, then the `hangup`
 *     application's CHANNEL_EXECUTE_COMPLETE, then the notice); at once when none runs.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { ChannelModel, RealClock, switchTrue, type BridgeAttempt, type CallerTimeline, type LegPlan, type QueuedApp, type RecordSilence } from './channel-model';
import { channelDataTemplate } from './fixtures';
import { CommandReader } from './command-reader';

export type { BridgeAttempt, CallerTimeline, KeyPress, LegPlan, LegResult } from './channel-model';
export { switchTrue } from './channel-model';

export interface CallScript {
  caller: string;
  callerName?: string;
  destination: string;
  uuid?: string;
  /** Per dialled number; numbers not listed use defaultLeg. A list gives one plan per attempt (the last repeats). */
  legs?: Record<string, LegPlan | LegPlan[]>;
  defaultLeg?: LegPlan;
  /**
   * The caller hangs up this long (test ms) after the daemon sent `connect`. 'with-connect-reply':
   * at once, in the same write as the connect reply (before the daemon can have sent `myevents`).
   */
  callerHangsUpAfterMs?: number | 'with-connect-reply';
  /**
   * Older scripts: the keys the caller types at the start of each successive play_and_get_digits
   * ('' = nothing). They reach the DTMF queue as the prompt starts, so FreeSWITCH's rules (M4)
   * still decide what is collected. New scripts give a `timeline` instead.
   */
  digits?: string[];
  /** What the caller types and when, in FreeSWITCH time after answer (channel-model.ts). */
  timeline?: CallerTimeline;
  /** FreeSWITCH ms each prompt plays for, by file as the daemon names it (the capture's lengths). */
  promptMs?: Record<string, number>;
  missingFiles?: string[];
  /** Every file under these directories is missing (a PROMPTS_DIR that does not exist). */
  missingDirs?: string[];
  /** Folders that exist before the call: `record` needs its folder (M11). */
  existingDirs?: string[];
  /** Destroy the socket abruptly when this application starts. */
  dropSocketOnApp?: string;
  /** The caller hangs up as this application starts (an event, where callerHangsUpAfterMs is a time). */
  callerHangsUpOnApp?: string;
  /** Scales FreeSWITCH's seconds (leg_timeout, linger, prompt lengths, the timeline) into test time: 0.01 → 15 s is 150 ms. */
  timeScale?: number;
  /**
   * Test ms the linger lasts at least, whatever timeScale makes of it: a test that still writes
   * commands while the channel lingers (linger 5 at 0.01 is 50 ms, which a loaded machine can
   * overrun before the command is written) sets it, so that the reply is not lost by chance.
   */
  lingerFloorMs?: number;
  /**
   * Test ms between the hang-up (CHANNEL_HANGUP, the linger notice) and the events that complete
   * it (CHANNEL_HANGUP_COMPLETE …): a FreeSWITCH too busy to finish a channel at once. Default 0.
   */
  hangupCompleteDelayMs?: number;
  /** Test ms every prompt not in promptMs plays for (default 5). */
  playbackMs?: number;
  /** Seconds the caller speaks when the `record` application runs (voicemail). */
  recordSeconds?: number;
  /** How the caller's silence reaches FreeSWITCH during `record` (M12 in channel-model.ts); default 'audio'. */
  recordSilence?: RecordSilence;
  /** Bytes to send right after the connect reply (malformed-input tests). */
  injectAfterConnect?: Buffer;
  /**
   * One text/event-plain event of `bytes` bytes (this call's Unique-ID, then a value of bad `%`
   * escapes), streamed in 64 KB writes with backpressure until it is all sent or the daemon
   * closes the socket: after the connect reply, or when `onApp` starts. `sent` counts the bytes
   * that left (bounded-input tests).
   */
  oversizedEvent?: { bytes: number; onApp?: string; sent?: number };
  /**
   * Events of other channels on this socket (before myevents takes effect, every channel's
   * events reach it: FREESWITCH.md): when `onApp` starts (default: at once after the connect
   * reply), each name is sent once per UUID with that Unique-ID (e.g. `*` or another call's),
   * with a Hangup-Cause and an Application-UUID that match nothing of this call. Sent whatever
   * this call subscribed; `sent` counts them.
   */
  foreignEvents?: { uuids: string[]; names: string[]; onApp?: string; sent?: number };
  /** Answer `connect` only once this settles (a call that arrives as the daemon starts draining). */
  holdConnectReply?: Promise<unknown>;
  /** A10: the socket application's flags (default async full). */
  socketMode?: { async: boolean; full: boolean };
  /**
   * A11: a leg FreeSWITCH originated to `caller` (= `destination`, the visitor) and handed to this
   * socket already answered: `callerIdNumber` is the origination caller ID, `variables` the
   * originate's `{…}` channel variables, `ringMs` how long it rang before the answer.
   */
  originated?: { callerIdNumber: string; variables: Record<string, string>; ringMs?: number };
  /**
   * Replaces the headers (decoded name/value pairs, in order) of the CHANNEL_HANGUP_COMPLETE this
   * call sends: damaged-event tests. Gets the headers the stand-in would send.
   */
  hangupCompleteHeaders?: (headers: Array<[string, string]>, uuid: string) => Array<[string, string]>;
}

export interface ExecutedApp {
  app: string;
  arg: string;
  eventUuid: string | null;
  response: string;
  /** FreeSWITCH ms after the channel was created: when it started and completed. */
  startedAtFs: number;
  endedAtFs: number;
}

export interface CallRecord {
  uuid: string;
  /**
   * Raw commands as received: first line and headers, plus body, when (FreeSWITCH ms after the
   * channel was created) and in which read of the socket (0, 1, …: commands of one read were
   * written together, FreeSWITCH takes them in one go).
   */
  commands: Array<{ line: string; headers: Record<string, string>; body: string; atFs: number; read: number }>;
  /** Reads of the socket that carried bytes. */
  reads: number;
  apps: ExecutedApp[];
  bridges: BridgeAttempt[];
  /** Date.now() when the first bridge command arrived (call setup latency). */
  firstBridgeAtMs?: number;
  hangupCause: string | null;
  answered: boolean;
  variables: Record<string, string>;
  /** Who closed the TCP connection. */
  closedBy: 'daemon' | 'freeswitch' | null;
  subscribed: Set<string>;
  lingerS: number | null;
  sentBytes: number;
  receivedBytes: number;
  /** Warnings as the caller heard them (M13 in channel-model.ts): a displace at once, a broadcast when its playback started. */
  heard: ChannelModel['heard'];
  /** What the caller heard while the phones rang, a bridge at a time (M10 in channel-model.ts). */
  ringing: ChannelModel['ringing'];
  /** Files the `record` application wrote. */
  recordings: string[];
  /** bgapi commands received (uuid_broadcast warnings …). */
  bgapi: string[];
  /** api commands received (uuid_kill …). */
  api: string[];
  /** FreeSWITCH ms after the channel was created: answered, hung up (null: never). */
  answeredAtFs: number | null;
  hungUpAtFs: number | null;
  /** Keys the caller typed and what FreeSWITCH did with each (collected, dropped, flushed, queued). */
  keys: Array<{ at: number; key: string; fate: string }>;
  /** The daemon closed the socket with the caller still up (A8): hotline_handled at that moment. */
  releasedWith: { handled: string | undefined } | null;
  /** The daemon closed the socket with the caller up before any application completed (A8): the caller is held in the park, the dialplan's fallback never runs. */
  stuckInPark: boolean;
  /** The socket's error before any byte came from the daemon (nothing listening, refused …), else null. */
  connectError: string | null;
}

const MYEVENTS = [
  'CHANNEL_CREATE', 'CHANNEL_DESTROY', 'CHANNEL_STATE', 'CHANNEL_ANSWER', 'CHANNEL_HANGUP',
  'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_EXECUTE', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_BRIDGE',
  'CHANNEL_UNBRIDGE', 'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA', 'CHANNEL_OUTGOING',
  'CHANNEL_PARK', 'CHANNEL_UNPARK', 'CHANNEL_APPLICATION', 'TALK', 'DTMF', 'NOTALK', 'DETECTED_SPEECH',
];

/** A10: what an outbound socket without `full` still accepts (mod_event_socket.c parse_command). */
const SINGLE_CHANNEL_COMMANDS = new Set(['connect', 'myevents', 'sendmsg', 'exit']);


/** A11: the originate `{…}` variables in the captured originated leg, replaced by the script's own. */
const CAPTURED_ORIGINATE_VARS = new Set(['variable_origination_caller_id_number', 'variable_hotline_click_to_call', 'variable_originate_timeout', 'variable_ignore_early_media']);

const DISCONNECT_TEXT = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';

/** switch_url_encode: these printable characters, controls and every non-ASCII byte are %XX. */
const URL_UNSAFE = new Set('\r\n "#%&+:;<=>?@[\\]^`{|}'.split(''));
export function fsUrlEncode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (byte < 0x20 || byte > 0x7e || URL_UNSAFE.has(ch)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

let templateCache: Array<[string, string]> | null = null;
function template(): Array<[string, string]> {
  templateCache ??= channelDataTemplate().map(([n, v]) => [n, decodeURIComponent(v)]);
  return templateCache;
}

let originatedTemplateCache: Array<[string, string]> | null = null;
function originatedTemplate(): Array<[string, string]> {
  originatedTemplateCache ??= channelDataTemplate('outbound-originated-leg-to-socket.log').map(([n, v]) => [n, decodeURIComponent(v)]);
  return originatedTemplateCache;
}

/** Encoded `Name: value\n` lines, cached: the template is the same for every call (load tests). */
const lineCache = new Map<string, string>();
function encodedLine(name: string, value: string): string {
  const key = `${name}\u0000${value}`;
  let line = lineCache.get(key);
  if (line === undefined) {
    line = `${name}: ${fsUrlEncode(value)}\n`;
    if (lineCache.size < 50_000) lineCache.set(key, line);
  }
  return line;
}

let sequence = 1000;

let lastStampUs = 0;

/**
 * Wall-clock microseconds (A9): FreeSWITCH stamps with the system's clock (switch_micro_time_now),
 * and the daemon compares a stamp with its own Date.now() (a click-to-call leg's guard counts from
 * its answer stamp). Date.now(), each stamp at least 1 µs after the last so that events of one
 * millisecond keep their order. Not performance.timeOrigin + performance.now(): that is the wall
 * clock of this process's start moved on by the monotonic clock, which differs from Date.now() by
 * a few ms on these VMs (measured: up to 3 ms within a second of a start) and by any step of the
 * system clock since; CI once saw a click-to-call cut come 50 ms "early" against it.
 */
function nowUs(): number {
  lastStampUs = Math.max(lastStampUs + 1, Date.now() * 1000);
  return lastStampUs;
}

/** Places one call into the daemon listening on host:port; resolves when the socket has closed. */
export function placeCall(port: number, script: CallScript, host = '127.0.0.1'): Promise<CallRecord> {
  return new FakeCall(script).run(host, port);
}

/**
 * From the stand-in's own records (FreeSWITCH ms): how late the cut command reached it against the
 * plan (answer + planS), and how long after that command the channel went.
 */
export function cutTiming(c: CallRecord, planS = 4): { late: number; landed: number } {
  const kill = c.commands.find((x) => x.line.startsWith('api uuid_kill'));
  const at = kill?.atFs ?? Infinity;
  return { late: at - ((c.answeredAtFs ?? 0) + planS * 1000), landed: (c.hungUpAtFs ?? Infinity) - at };
}

/**
 * placeCall, with the call's record as it fills in (commands, answer, bridges, hang-up), so a
 * test can wait for a point in the call instead of sleeping; `done` resolves when the socket closed.
 */
export function startCall(port: number, script: CallScript, host = '127.0.0.1'): { live: CallRecord; done: Promise<CallRecord>; fsNow: () => number } {
  const call = new FakeCall(script);
  return { live: call.live, done: call.run(host, port), fsNow: () => call.fsNow() };
}

class FakeCall {
  readonly uuid: string;
  private readonly record: CallRecord;
  private readonly scale: number;
  private readonly clock: RealClock;
  private readonly model: ChannelModel;
  private socket!: net.Socket;
  private readonly reader = new CommandReader();
  private connected = false;
  private connectHeld = false;
  private closed = false;
  /** An application completed on this socket: the socket application's park has started (A8). */
  private parkStarted = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly channelVars: Array<[string, string]>;
  private answeredAtUs = 0;
  /** When the channel hung up (µs): its hang-up time and billsec, however late the completion is sent. */
  private hungUpAtUs: number | null = null;
  /** An originated leg (A11) was created when the visitor's phone started ringing, ringMs ago. */
  private readonly createdAtUs: number;
  private digitIndex = 0;
  /** When each of our applications started (Event-UUID → FreeSWITCH ms). */
  private readonly appStarts = new Map<string, number>();
  private resolveDone!: (r: CallRecord) => void;
  private readonly attemptsByNumber = new Map<number | string, number>();
  /** Headers of the answered other leg, carried by the events that follow a successful bridge. */
  private otherLeg: Array<[string, string]> = [];

  constructor(private readonly script: CallScript) {
    this.uuid = script.uuid ?? randomUUID();
    this.scale = script.timeScale ?? 0.01;
    this.createdAtUs = nowUs() - (script.originated ? (script.originated.ringMs ?? 20) * 1000 : 0);
    this.clock = new RealClock(this.scale);
    this.record = {
      uuid: this.uuid, commands: [], apps: [], bridges: [], hangupCause: null, answered: false,
      variables: {}, closedBy: null, subscribed: new Set(), lingerS: null, sentBytes: 0, receivedBytes: 0, reads: 0, recordings: [], heard: [], ringing: [], bgapi: [],
      api: [], answeredAtFs: null, hungUpAtFs: null, keys: [], releasedWith: null, stuckInPark: false, connectError: null,
    };
    this.channelVars = this.buildChannel();
    const toFs = (ms: number): number => ms / this.scale;
    this.model = new ChannelModel(this.clock, {
      timeline: script.timeline,
      promptMs: script.promptMs,
      defaultPromptMs: toFs(script.playbackMs ?? 5),
      missingFiles: script.missingFiles,
      missingDirs: script.missingDirs,
      existingDirs: script.existingDirs,
      recordSeconds: script.recordSeconds,
      recordSilence: script.recordSilence,
      planFor: (n) => this.planFor(n),
      toFs,
      answered: script.originated !== undefined,
    }, {
      answered: () => {
        this.record.answered = true;
        this.record.answeredAtFs = this.clock.now();
        this.answeredAtUs = nowUs();
        this.sendEvent('CHANNEL_ANSWER', []);
      },
      earlyMedia: () => this.sendEvent('CHANNEL_PROGRESS_MEDIA', []),
      appStarted: (app) => this.onAppStarted(app),
      appCompleted: (app, response) => {
        if (app.eventUuid && !app.broadcast) {
          const startedAtFs = this.appStarts.get(app.eventUuid) ?? this.clock.now();
          this.record.apps.push({ app: app.app, arg: app.arg, eventUuid: app.eventUuid, response, startedAtFs, endedAtFs: this.clock.now() });
        }
        this.parkStarted = true;
        this.sendEvent('CHANNEL_EXECUTE_COMPLETE', this.appHeaders(app, response));
      },
      bridged: (number, callerId) => {
        this.record.firstBridgeAtMs ??= Date.now();
        this.otherLeg = [['Other-Type', 'originatee'], ['Other-Leg-Destination-Number', number], ['Other-Leg-Caller-ID-Number', callerId]];
        this.sendEvent('CHANNEL_BRIDGE', []);
      },
      unbridged: () => this.sendEvent('CHANNEL_UNBRIDGE', []),
      hungUp: (cause) => this.onHungUp(cause),
      finished: (cause) => this.finishHangup(cause),
      leg: (attempt) => {
        this.record.firstBridgeAtMs ??= Date.now();
        this.record.bridges.push(attempt);
      },
    });
    this.record.variables = this.model.vars;
    this.record.keys = this.model.keyLog;
    this.record.heard = this.model.heard;
    this.record.ringing = this.model.ringing;
    if (script.originated) {
      // A11: answered (just now) before the socket was opened; no CHANNEL_ANSWER to come.
      this.record.answered = true;
      this.record.answeredAtFs = 0;
      this.answeredAtUs = this.createdAtUs + (script.originated.ringMs ?? 20) * 1000;
    }
  }

  /** The record as it fills in. */
  get live(): CallRecord {
    return this.record;
  }

  /** FreeSWITCH's clock of this call: ms after the channel was created (the unit of the record's times). */
  fsNow(): number {
    return this.clock.now();
  }

  run(host: string, port: number): Promise<CallRecord> {
    return new Promise((resolve) => {
      this.resolveDone = resolve;
      this.socket = net.connect({ host, port });
      this.socket.setNoDelay(true);
      this.socket.on('data', (chunk) => this.onData(chunk));
      this.socket.on('end', () => {
        this.record.closedBy ??= 'daemon';
      });
      this.socket.on('error', (err) => {
        if (this.record.commands.length === 0) this.record.connectError ??= err.message;
      });
      this.socket.on('close', () => this.finish());
    });
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    // A8: the daemon let go of a caller who is still up; the dialplan decides on hotline_handled.
    if (this.connected && !this.model.hungUp) {
      if (this.parkStarted) this.record.releasedWith = { handled: this.model.vars.hotline_handled };
      else this.record.stuckInPark = true;
    }
    for (const t of this.timers) clearTimeout(t);
    this.clock.stop();
    // Stop whatever the channel model still runs; what the record says about the call stays as it was.
    const { hangupCause, hungUpAtFs } = this.record;
    this.model.hangup('NORMAL_CLEARING');
    Object.assign(this.record, { hangupCause, hungUpAtFs });
    this.resolveDone(this.record);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  // ---- reading commands (mod_event_socket read_packet: headers to a blank line, then content-length bytes)

  private onData(chunk: Buffer): void {
    this.record.receivedBytes += chunk.length;
    const read = this.record.reads++;
    for (const { line, headers, body } of this.reader.push(chunk)) {
      this.record.commands.push({ line, headers, body, atFs: this.clock.now(), read });
      this.onCommand(line, headers, body);
    }
  }

  private onCommand(line: string, headers: Record<string, string>, body: string): void {
    if (this.closed) return;
    const [verb = '', ...rest] = line.split(' ');
    if (this.script.socketMode?.full === false && !SINGLE_CHANNEL_COMMANDS.has(verb.toLowerCase())) return this.reply('-ERR command not found');
    switch (verb.toLowerCase()) {
      case 'connect':
        if (this.script.holdConnectReply && !this.connectHeld) {
          this.connectHeld = true;
          void this.script.holdConnectReply.then(() => this.onCommand(line, headers, body));
          return;
        }
        this.connected = true;
        this.sendRaw(`${this.channelHeaderBlock('CHANNEL_DATA', [])}Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: ${this.script.socketMode?.async === false ? 'static' : 'async'}\nControl: ${this.script.socketMode?.full === false ? 'single-channel' : 'full'}\n\n`);
        if (this.script.injectAfterConnect) this.sendBytes(this.script.injectAfterConnect);
        if (this.script.oversizedEvent && this.script.oversizedEvent.onApp === undefined) this.sendOversized(this.script.oversizedEvent);
        if (this.script.foreignEvents && this.script.foreignEvents.onApp === undefined) this.sendForeign(this.script.foreignEvents);
        if (this.script.callerHangsUpAfterMs === 'with-connect-reply') this.model.hangup(this.record.answered ? 'NORMAL_CLEARING' : 'ORIGINATOR_CANCEL');
        else if (this.script.callerHangsUpAfterMs !== undefined) {
          this.later(this.script.callerHangsUpAfterMs, () => this.model.hangup(this.record.answered ? 'NORMAL_CLEARING' : 'ORIGINATOR_CANCEL'));
        }
        return;
      case 'myevents':
        for (const e of MYEVENTS) this.record.subscribed.add(e);
        return this.reply('+OK Events Enabled');
      case 'event':
        for (const e of rest.filter((x) => /^[A-Z_]+$/.test(x))) this.record.subscribed.add(e);
        return this.reply(`+OK event listener enabled ${rest[0] === 'json' ? 'json' : 'plain'}`);
      case 'nixevent':
        for (const e of rest) this.record.subscribed.delete(e);
        return this.reply(rest.length > 0 ? '+OK events nixed' : '-ERR no keywords supplied');
      case 'linger':
        this.record.lingerS = rest[0] ? Number(rest[0]) : 600;
        return this.reply(rest[0] ? `+OK will linger ${rest[0]} seconds` : '+OK will linger');
      case 'exit':
        this.reply('+OK bye');
        this.disconnect();
        return;
      case 'sendmsg':
        return this.onSendmsg(headers, body);
      case 'api':
        return this.onApi(rest);
      case 'bgapi': {
        // A `full` socket may run API commands in the background: "+OK Job-UUID: …" at once (A6).
        this.record.bgapi.push(rest.join(' '));
        this.reply(`+OK Job-UUID: ${headers['job-uuid'] ?? randomUUID()}`);
        if (rest[0] === 'uuid_broadcast' && rest[1] === this.uuid && rest[2]) this.model.broadcast(rest[2]);
        return;
      }
      default:
        return this.reply('-ERR command not found');
    }
  }

  private onSendmsg(headers: Record<string, string>, body: string): void {
    this.reply('+OK');
    const command = headers['call-command'];
    if (command === 'hangup') {
      this.model.hangupCommand(headers['hangup-cause'] ?? 'NORMAL_CLEARING');
      return;
    }
    if (command !== 'execute' || this.model.hungUp) return; // queued work of a dead channel never runs
    const arg = headers['content-type'] === 'text/plain' ? body : (headers['execute-app-arg'] ?? '');
    void this.model.execute(headers['execute-app-name'] ?? '', arg, headers['event-uuid'] ?? null, switchTrue(headers['event-lock']));
  }

  /** `api` on a full socket: answered before the next command is read (A2, A6). */
  private onApi(args: string[]): void {
    this.record.api.push(args.join(' '));
    const [name, uuid, ...rest] = args;
    const mine = uuid === this.uuid && !this.model.hungUp;
    if (name === 'uuid_kill') {
      this.apiResponse(mine ? '+OK\n' : '-ERR No such channel!\n');
      if (mine) this.model.hangup(rest[0] ?? 'NORMAL_CLEARING');
      return;
    }
    if (name === 'uuid_broadcast') {
      this.apiResponse('+OK Message Sent\n');
      if (mine && rest[0]) this.model.broadcast(rest[0]);
      return;
    }
    if (name === 'uuid_displace') {
      // M13: `uuid_displace <uuid> start <file> [limit] [mux]`.
      if (rest[0] !== 'start' || !rest[1]) return this.apiResponse('-USAGE: <uuid> [start|stop] <path> [<limit>] [mux]\n');
      this.apiResponse(mine ? this.model.displace(rest[1]) : '-ERR Cannot locate session!\n');
      return;
    }
    this.apiResponse(`-ERR ${name ?? ''} Command not found!\n`);
  }

  // ---- applications

  private onAppStarted(app: QueuedApp): void {
    if (app.eventUuid) this.appStarts.set(app.eventUuid, this.clock.now());
    if (this.script.dropSocketOnApp === app.app) {
      this.socket.destroy();
      return;
    }
    this.sendEvent('CHANNEL_EXECUTE', this.appHeaders(app, null));
    if (this.script.oversizedEvent?.onApp === app.app) this.sendOversized(this.script.oversizedEvent);
    if (this.script.foreignEvents?.onApp === app.app) this.sendForeign(this.script.foreignEvents);
    if (this.script.callerHangsUpOnApp === app.app) {
      this.model.hangup(this.record.answered ? 'NORMAL_CLEARING' : 'ORIGINATOR_CANCEL');
      return;
    }
    if (app.app === 'play_and_get_digits' && this.script.digits) {
      this.model.typeNow(this.script.digits[this.digitIndex++] ?? '');
    }
    if (app.app === 'record') this.record.recordings.push(app.arg.split(' ')[0]);
  }

  private planFor(number: string): LegPlan {
    const listed = this.script.legs?.[number];
    if (listed === undefined) return this.script.defaultLeg ?? { result: 'no_answer' };
    if (!Array.isArray(listed)) return listed;
    const n = this.attemptsByNumber.get(number) ?? 0;
    this.attemptsByNumber.set(number, n + 1);
    return listed[Math.min(n, listed.length - 1)];
  }

  // ---- hang-up and disconnect

  private onHungUp(cause: string): void {
    this.record.hangupCause = cause;
    this.record.hungUpAtFs = this.clock.now();
    this.hungUpAtUs = nowUs();
    this.sendEvent('CHANNEL_HANGUP', [['Hangup-Cause', cause]]);
    // A7: without linger CHANNEL_HANGUP_COMPLETE is never delivered; A12: the socket goes once the
    // running application has completed (the model's `finished`, at once when none runs).
    if (this.record.lingerS === null) return;
    this.sendRaw(`Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${this.uuid}\nContent-Disposition: linger\nChannel-Name: sofia/acc/${this.script.caller}@127.0.0.1:5070\nLinger-Time: ${this.record.lingerS}\nContent-Length: 0\n\n`);
  }

  /** After the running application completed: the dialplan's own `socket` completes, then HANGUP_COMPLETE. */
  private finishHangup(cause: string, delayed = false): void {
    if (this.closed) return;
    const delayMs = this.script.hangupCompleteDelayMs ?? 0;
    if (delayMs > 0 && !delayed) {
      this.later(delayMs, () => this.finishHangup(cause, true));
      return;
    }
    if (this.record.lingerS === null) {
      this.disconnect();
      return;
    }
    const response = this.model.applicationResponse;
    this.sendEvent('CHANNEL_UNPARK', [['Hangup-Cause', cause]]);
    this.sendEvent('CHANNEL_EXECUTE_COMPLETE', [['Hangup-Cause', cause], ['Application', 'socket'], ['Application-Data', '127.0.0.1:8084 async full'], ['Application-Response', response], ['Application-UUID', randomUUID()]]);
    this.sendEvent('CHANNEL_STATE', [['Hangup-Cause', cause]]);
    const endUs = this.hungUpAtUs ?? nowUs();
    const billsec = this.answeredAtUs ? Math.floor((endUs - this.answeredAtUs) / 1e6) : 0;
    this.model.vars.billsec = String(billsec);
    this.model.vars.duration = String(Math.round((endUs - this.createdAtUs) / 1e6));
    this.sendEvent('CHANNEL_HANGUP_COMPLETE', [['Hangup-Cause', cause], ['Caller-Channel-Hangup-Time', String(endUs)]]);
    this.later(Math.max(this.record.lingerS * 1000 * this.scale, this.script.lingerFloorMs ?? 0), () => this.disconnect());
  }

  private disconnect(): void {
    if (this.closed || this.socket.destroyed) return;
    this.sendRaw(`Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${this.uuid}\nContent-Disposition: disconnect\nContent-Length: ${Buffer.byteLength(DISCONNECT_TEXT)}\n\n${DISCONNECT_TEXT}`);
    this.record.closedBy ??= 'freeswitch';
    this.socket.end();
  }

  // ---- writing

  private reply(text: string): void {
    this.sendRaw(`Content-Type: command/reply\nReply-Text: ${text}\n\n`);
  }

  private apiResponse(body: string): void {
    this.sendRaw(`Content-Type: api/response\nContent-Length: ${Buffer.byteLength(body)}\n\n${body}`);
  }

  private sendRaw(text: string): void {
    this.sendBytes(Buffer.from(text, 'utf8'));
  }

  private sendBytes(bytes: Buffer): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    this.record.sentBytes += bytes.length;
    this.socket.write(bytes);
  }

  private sendOversized(spec: { bytes: number; sent?: number }): void {
    spec.sent = 0;
    const head = `Event-Name: CUSTOM\nUnique-ID: ${this.uuid}\nX-Bad: `;
    const body = spec.bytes;
    const chunk = Buffer.alloc(64 * 1024, '%G%');
    let left = body - Buffer.byteLength(head);
    const socket = this.socket;
    const pump = (): void => {
      while (left > 0 && !this.closed && socket.writable) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        spec.sent = (spec.sent ?? 0) + piece.length;
        if (!socket.write(piece)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    this.sendRaw(`Content-Length: ${body}\nContent-Type: text/event-plain\n\n${head}`);
    pump();
  }

  private sendForeign(spec: { uuids: string[]; names: string[]; sent?: number }): void {
    spec.sent = 0;
    for (const uuid of spec.uuids) {
      for (const name of spec.names) {
        const headers: Array<[string, string]> = [
          ['Event-Name', name], ['Unique-ID', uuid], ['Channel-Call-UUID', uuid], ['Hangup-Cause', 'NORMAL_CLEARING'],
          ['Application', 'bridge'], ['Application-UUID', uuid], ['Application-Response', '_none_'],
          ['variable_originate_disposition', 'ORIGINATOR_CANCEL'], ['Caller-Channel-Answered-Time', '0'],
        ];
        const body = `${headers.map(([n, v]) => `${n}: ${fsUrlEncode(v)}\n`).join('')}\n`;
        this.sendRaw(`Content-Length: ${Buffer.byteLength(body)}\nContent-Type: text/event-plain\n\n${body}`);
        spec.sent++;
      }
    }
  }

  private sendEvent(name: string, extra: Array<[string, string]>): void {
    if (!this.connected || !this.record.subscribed.has(name)) return;
    const replace = name === 'CHANNEL_HANGUP_COMPLETE' ? this.script.hangupCompleteHeaders : undefined;
    const block = replace
      ? replace(this.channelHeaders(name, extra), this.uuid).map(([n, v]) => `${n}: ${fsUrlEncode(v)}\n`).join('')
      : this.channelHeaderBlock(name, extra);
    const body = `${block}\n`;
    this.sendRaw(`Content-Length: ${Buffer.byteLength(body)}\nContent-Type: text/event-plain\n\n${body}`);
  }

  private appHeaders(app: { app: string; arg: string; eventUuid: string | null }, response: string | null): Array<[string, string]> {
    const h: Array<[string, string]> = [['Application', app.app], ['Application-Data', app.arg]];
    if (response !== null) h.push(['Application-Response', response]);
    if (app.eventUuid) h.push(['Application-UUID', app.eventUuid]);
    return h;
  }

  /** channelHeaderBlock's headers as decoded pairs. */
  private channelHeaders(eventName: string, extra: Array<[string, string]>): Array<[string, string]> {
    const pairs: Array<[string, string]> = [];
    this.eachChannelHeader(eventName, extra, (name, value) => pairs.push([name, value]));
    return pairs;
  }

  /** The event preamble, this call's channel headers and variables, then the event's own headers. */
  private channelHeaderBlock(eventName: string, extra: Array<[string, string]>): string {
    const lines: string[] = [];
    this.eachChannelHeader(eventName, extra, (name, value) => lines.push(encodedLine(name, value)));
    return lines.join('');
  }

  private eachChannelHeader(eventName: string, extra: Array<[string, string]>, push: (name: string, value: string) => void): void {
    const now = nowUs();
    for (const [name, value] of this.channelVars) {
      if (name === 'Event-Name') push(name, eventName);
      else if (name === 'Event-Date-Timestamp') push(name, String(now));
      else if (name === 'Event-Sequence') push(name, String(++sequence));
      else if (name === 'Channel-Channel-Answered-Time' || name === 'Caller-Channel-Answered-Time') push(name, String(this.answeredAtUs));
      else if (name === 'Answer-State') push(name, this.model.hungUp ? 'hangup' : this.record.answered ? 'answered' : 'ringing');
      else push(name, value);
    }
    for (const [name, value] of this.otherLeg) push(name, value);
    for (const [name, value] of Object.entries(this.model.vars)) push(`variable_${name}`, value);
    for (const [name, value] of extra) push(name, value);
  }

  private buildChannel(): Array<[string, string]> {
    const s = this.script;
    const replace: Record<string, string> = {
      'Unique-ID': this.uuid,
      'Channel-Unique-ID': this.uuid,
      'Caller-Unique-ID': this.uuid,
      'Channel-Call-UUID': this.uuid,
      variable_uuid: this.uuid,
      variable_call_uuid: this.uuid,
      'Channel-Caller-ID-Number': s.caller,
      'Caller-Caller-ID-Number': s.caller,
      'Channel-Orig-Caller-ID-Number': s.caller,
      'Caller-Orig-Caller-ID-Number': s.caller,
      'Channel-ANI': s.caller,
      'Caller-ANI': s.caller,
      'Channel-Username': s.caller,
      'Caller-Username': s.caller,
      variable_sip_from_user: s.caller,
      'Channel-Caller-ID-Name': s.callerName ?? 'Alice',
      'Caller-Caller-ID-Name': s.callerName ?? 'Alice',
      'Channel-Orig-Caller-ID-Name': s.callerName ?? 'Alice',
      'Caller-Orig-Caller-ID-Name': s.callerName ?? 'Alice',
      variable_sip_from_display: s.callerName ?? 'Alice',
      'Channel-Destination-Number': s.destination,
      'Caller-Destination-Number': s.destination,
      variable_sip_req_user: s.destination,
      variable_sip_to_user: s.destination,
      'Channel-Channel-Created-Time': String(this.createdAtUs),
      'Caller-Channel-Created-Time': String(this.createdAtUs),
    };
    const originated = s.originated;
    if (!originated) return template().map(([name, value]) => [name, replace[name] ?? value]);
    // A11: the origination caller ID where FreeSWITCH puts it after the caller-ID flip, and the
    // originate's own variables where the captured ones were.
    for (const name of ['Channel-Orig-Caller-ID-Number', 'Caller-Orig-Caller-ID-Number', 'Channel-Callee-ID-Number', 'Caller-Callee-ID-Number', 'Channel-ANI', 'Caller-ANI']) {
      replace[name] = originated.callerIdNumber;
    }
    replace['Channel-Caller-ID-Name'] = s.caller;
    replace['Caller-Caller-ID-Name'] = s.caller;
    const vars: Array<[string, string]> = Object.entries({ origination_caller_id_number: originated.callerIdNumber, ...originated.variables }).map(([k, v]) => [`variable_${k}`, v]);
    const out: Array<[string, string]> = [];
    for (const [name, value] of originatedTemplate()) {
      if (name === 'variable_origination_caller_id_number') out.push(...vars);
      if (!CAPTURED_ORIGINATE_VARS.has(name)) out.push([name, replace[name] ?? value]);
    }
    return out;
  }
}
