/**
 * A FreeSWITCH stand-in for the OUTBOUND event socket: it connects to the daemon as FreeSWITCH's
 * `socket 127.0.0.1:8084 async full` does for each call, and speaks mod_event_socket's wire
 * format byte for byte (checked against the captures in test/fixtures/esl by
 * test/esl/peer-fidelity.test.ts).
 *
 * What it assumes about FreeSWITCH, each seen in the captures or read in its source:
 *  A1 `connect` is answered by one header block: the whole channel (CHANNEL_DATA, values
 *     URL-encoded) then `Content-Type: command/reply`, `Reply-Text: %2BOK%0A`, Socket-Mode, Control.
 *  A2 Replies are `Content-Type: command/reply\nReply-Text: …\n\n`, one per command, in order.
 *  A3 Events are `Content-Length: n\nContent-Type: text/event-plain\n\n` + n bytes of URL-encoded
 *     `Name: value` lines ended by an empty line; only subscribed events of this call are sent
 *     after `myevents`; `nixevent` removes types ("+OK events nixed", mod_event_socket.c).
 *  A4 sendmsg/execute is answered "+OK" at once; applications run one after another; each ends
 *     with CHANNEL_EXECUTE_COMPLETE echoing the sendmsg's Event-UUID as Application-UUID.
 *  A5 A failed bridge hangs the caller up unless continue_on_fail is set; only NO_ANSWER,
 *     NO_USER_RESPONSE and ORIGINATOR_CANCEL return control by default (switch_ivr_originate.c).
 *     After a bridge: variable_originate_disposition, variable_DIALSTATUS (USER_BUSY/BUSY,
 *     ALLOTTED_TIMEOUT with leg_timeout, SUCCESS, ORIGINATOR_CANCEL/CANCEL).
 *  A6 With hangup_after_bridge=true the caller is hung up when an answered bridge ends, before the
 *     bridge's CHANNEL_EXECUTE_COMPLETE.
 *  A7 On hangup: CHANNEL_HANGUP; with linger a `text/disconnect-notice` (Content-Disposition:
 *     linger) and later CHANNEL_HANGUP_COMPLETE; the socket stays open for the linger time, then a
 *     disconnect notice (Content-Disposition: disconnect, the ClueCon text) and close. Without
 *     linger the socket closes right after the hangup: CHANNEL_HANGUP_COMPLETE is never seen.
 *  A8 playback on an unanswered channel pre-answers (early media) and reports FILE PLAYED or
 *     FILE NOT FOUND as Application-Response; play_and_get_digits sets variable_<var> only when
 *     valid digits were keyed.
 *  A9 (`socketMode`) The socket application's arguments set Socket-Mode (async|static) and Control
 *     (full|single-channel) in the connect reply; without `full`, an outbound socket gets
 *     "-ERR command not found" for everything but connect, myevents, sendmsg and exit (linger and
 *     nixevent included) — mod_event_socket.c, and outbound-originated-leg-to-socket.log.
 *  A10 (`originated`) A leg FreeSWITCH originated and handed to `&socket(…)` (click-to-call) arrives
 *     answered (Answer-State answered, Channel-Call-State ACTIVE, its answer time set, no
 *     CHANNEL_ANSWER to come), Call-Direction outbound, the dialled number in both
 *     Caller-Caller-ID-Number and Caller-Destination-Number, the origination caller ID in
 *     Caller-Orig-Caller-ID-Number/Caller-Callee-ID-Number/Caller-ANI and the originate `{…}`
 *     variables as variable_* (the CHANNEL_DATA of outbound-originated-leg-to-socket.log).
 *  A11 Without linger, the disconnect notice follows the completion of the application that was
 *     running when the channel hung up (the capture above: CHANNEL_HANGUP, then the `hangup`
 *     application's CHANNEL_EXECUTE_COMPLETE, then the notice).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { channelDataTemplate } from './fixtures';

export type LegResult = 'answer' | 'busy' | 'no_answer' | 'unreachable';

export interface LegPlan {
  result: LegResult;
  /** How long the leg rings before it answers or is busy (ms). */
  ringMs?: number;
  /** How long an answered leg talks before the callee hangs up (ms). */
  talkMs?: number;
}

export interface CallScript {
  caller: string;
  callerName?: string;
  destination: string;
  uuid?: string;
  /** Per dialled number; numbers not listed use defaultLeg. A list gives one plan per attempt (the last repeats). */
  legs?: Record<string, LegPlan | LegPlan[]>;
  defaultLeg?: LegPlan;
  /** The caller hangs up this long after the daemon sent `connect`. */
  callerHangsUpAfterMs?: number;
  /** Successive answers to play_and_get_digits ('' = nothing keyed). */
  digits?: string[];
  missingFiles?: string[];
  /** Destroy the socket abruptly when this application starts. */
  dropSocketOnApp?: string;
  /** Scales FreeSWITCH's seconds (leg_timeout, linger) into test time: 0.01 → 15 s is 150 ms. */
  timeScale?: number;
  playbackMs?: number;
  /** Seconds the caller speaks when the `record` application runs (voicemail). */
  recordSeconds?: number;
  /** Bytes to send right after the connect reply (malformed-input tests). */
  injectAfterConnect?: Buffer;
  /** A9: the socket application's flags (default async full). */
  socketMode?: { async: boolean; full: boolean };
  /**
   * A10: a leg FreeSWITCH originated to `caller` (= `destination`, the visitor) and handed to this
   * socket already answered: `callerIdNumber` is the origination caller ID, `variables` the
   * originate's `{…}` channel variables, `ringMs` how long it rang before the answer.
   */
  originated?: { callerIdNumber: string; variables: Record<string, string>; ringMs?: number };
}

export interface ExecutedApp {
  app: string;
  arg: string;
  eventUuid: string | null;
  response: string;
}

export interface BridgeAttempt {
  dialString: string;
  vars: Record<string, string>;
  number: string;
  result: LegResult | 'cancelled';
}

export interface CallRecord {
  uuid: string;
  /** Raw commands as received: first line and headers, plus body. */
  commands: Array<{ line: string; headers: Record<string, string>; body: string }>;
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
  /** Files the `record` application wrote. */
  recordings: string[];
  /** bgapi commands received (uuid_broadcast warnings …). */
  bgapi: string[];
}

const MYEVENTS = [
  'CHANNEL_CREATE', 'CHANNEL_DESTROY', 'CHANNEL_STATE', 'CHANNEL_ANSWER', 'CHANNEL_HANGUP',
  'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_EXECUTE', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_BRIDGE',
  'CHANNEL_UNBRIDGE', 'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA', 'CHANNEL_OUTGOING',
  'CHANNEL_PARK', 'CHANNEL_UNPARK', 'CHANNEL_APPLICATION', 'TALK', 'DTMF', 'NOTALK', 'DETECTED_SPEECH',
];

/** A9: what an outbound socket without `full` still accepts (mod_event_socket.c parse_command). */
const SINGLE_CHANNEL_COMMANDS = new Set(['connect', 'myevents', 'sendmsg', 'exit']);

/** A10: the originate `{…}` variables in the captured originated leg, replaced by the script's own. */
const CAPTURED_ORIGINATE_VARS = new Set(['variable_origination_caller_id_number', 'variable_hotline_click_to_call', 'variable_originate_timeout', 'variable_ignore_early_media']);

/** Causes after which bridge returns control without continue_on_fail (switch_ivr_originate.c). */
const CONTINUE_BY_DEFAULT = new Set(['NO_ANSWER', 'NO_USER_RESPONSE', 'ORIGINATOR_CANCEL']);

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

/** Places one call into the daemon listening on host:port; resolves when the socket has closed. */
export function placeCall(port: number, script: CallScript, host = '127.0.0.1'): Promise<CallRecord> {
  return new FakeCall(script).run(host, port);
}

class FakeCall {
  readonly uuid: string;
  private readonly record: CallRecord;
  private readonly scale: number;
  private socket!: net.Socket;
  private inbound = Buffer.alloc(0);
  private connected = false;
  private hungUp = false;
  private closed = false;
  private appQueue: Array<{ app: string; arg: string; eventUuid: string | null }> = [];
  private running = false;
  /** Wakes the running application early when the caller hangs up. */
  private interrupt: (() => void) | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private channelVars: Array<[string, string]>;
  private answeredAtUs = 0;
  private readonly createdAtUs = Date.now() * 1000;
  private digitIndex = 0;
  private resolveDone!: (r: CallRecord) => void;

  constructor(private readonly script: CallScript) {
    this.uuid = script.uuid ?? randomUUID();
    this.scale = script.timeScale ?? 0.01;
    this.record = {
      uuid: this.uuid, commands: [], apps: [], bridges: [], hangupCause: null, answered: false,
      variables: {}, closedBy: null, subscribed: new Set(), lingerS: null, sentBytes: 0, receivedBytes: 0, recordings: [], bgapi: [],
    };
    this.channelVars = this.buildChannel();
    if (script.originated) {
      this.record.answered = true;
      this.answeredAtUs = this.createdAtUs + (script.originated.ringMs ?? 20) * 1000;
    }
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
      this.socket.on('error', () => undefined);
      this.socket.on('close', () => this.finish());
    });
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.interrupt?.();
    this.resolveDone(this.record);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.interrupt = null;
        resolve();
      }, ms);
      this.timers.add(t);
      this.interrupt = () => {
        clearTimeout(t);
        this.timers.delete(t);
        this.interrupt = null;
        resolve();
      };
    });
  }

  // ---- reading commands (mod_event_socket read_packet: headers to a blank line, then content-length bytes)

  private onData(chunk: Buffer): void {
    this.record.receivedBytes += chunk.length;
    this.inbound = Buffer.concat([this.inbound, chunk]);
    for (;;) {
      const end = this.inbound.indexOf('\n\n');
      if (end < 0) return;
      const lines = this.inbound.toString('utf8', 0, end).split('\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const sep = l.indexOf(': ');
        if (sep > 0) headers[l.slice(0, sep).toLowerCase()] = l.slice(sep + 2);
      }
      const length = Number(headers['content-length'] ?? 0);
      if (this.inbound.length < end + 2 + length) return;
      const body = this.inbound.toString('utf8', end + 2, end + 2 + length);
      this.inbound = this.inbound.subarray(end + 2 + length);
      const line = lines[0];
      this.record.commands.push({ line, headers, body });
      this.onCommand(line, headers, body);
    }
  }

  private onCommand(line: string, headers: Record<string, string>, body: string): void {
    if (this.closed) return;
    const [verb = '', ...rest] = line.split(' ');
    if (this.script.socketMode?.full === false && !SINGLE_CHANNEL_COMMANDS.has(verb.toLowerCase())) return this.reply('-ERR command not found');
    switch (verb.toLowerCase()) {
      case 'connect':
        this.connected = true;
        this.sendRaw(`${this.channelHeaderBlock('CHANNEL_DATA', [])}Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: ${this.script.socketMode?.async === false ? 'static' : 'async'}\nControl: ${this.script.socketMode?.full === false ? 'single-channel' : 'full'}\n\n`);
        if (this.script.injectAfterConnect) this.sendBytes(this.script.injectAfterConnect);
        if (this.script.callerHangsUpAfterMs !== undefined) {
          this.later(this.script.callerHangsUpAfterMs, () => this.hangup(this.record.answered ? 'NORMAL_CLEARING' : 'ORIGINATOR_CANCEL'));
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
      case 'bgapi':
        // A `full` socket may run API commands in the background: "+OK Job-UUID: …" at once.
        this.record.bgapi.push(rest.join(' '));
        return this.reply(`+OK Job-UUID: ${randomUUID()}`);
      default:
        return this.reply('-ERR command not found');
    }
  }

  private onSendmsg(headers: Record<string, string>, body: string): void {
    this.reply('+OK');
    const command = headers['call-command'];
    if (command === 'hangup') {
      this.hangup(headers['hangup-cause'] ?? 'NORMAL_CLEARING');
      return;
    }
    if (command !== 'execute' || this.hungUp) return; // queued work of a dead channel never runs
    const arg = headers['content-type'] === 'text/plain' ? body : (headers['execute-app-arg'] ?? '');
    this.appQueue.push({ app: headers['execute-app-name'] ?? '', arg, eventUuid: headers['event-uuid'] ?? null });
    void this.runQueue();
  }

  // ---- applications

  private async runQueue(): Promise<void> {
    if (this.running) return;
    this.running = true;
    while (this.appQueue.length > 0 && !this.hungUp && !this.closed) {
      const next = this.appQueue.shift()!;
      if (this.script.dropSocketOnApp === next.app) {
        this.socket.destroy();
        break;
      }
      this.sendEvent('CHANNEL_EXECUTE', this.appHeaders(next, null));
      const response = await this.execute(next.app, next.arg);
      this.record.apps.push({ ...next, response });
      this.sendEvent('CHANNEL_EXECUTE_COMPLETE', this.appHeaders(next, response));
      if (this.pendingHangup) {
        const cause = this.pendingHangup;
        this.pendingHangup = null;
        this.finishHangup(cause);
      }
    }
    this.running = false;
  }

  private pendingHangup: string | null = null;

  private async execute(app: string, arg: string): Promise<string> {
    switch (app) {
      case 'set':
      case 'export': {
        const eq = arg.indexOf('=');
        if (eq > 0) this.setVar(arg.slice(0, eq), arg.slice(eq + 1));
        return '_none_';
      }
      case 'multiset':
        for (const pair of arg.split(' ')) {
          const eq = pair.indexOf('=');
          if (eq > 0) this.setVar(pair.slice(0, eq), pair.slice(eq + 1));
        }
        return '_none_';
      case 'answer':
        this.answerCaller();
        return '_none_';
      case 'pre_answer':
        this.sendEvent('CHANNEL_PROGRESS_MEDIA', []);
        return '_none_';
      case 'playback':
        if (!this.record.answered) this.sendEvent('CHANNEL_PROGRESS_MEDIA', []);
        if ((this.script.missingFiles ?? []).includes(arg)) return 'FILE NOT FOUND';
        await this.wait(this.script.playbackMs ?? 5);
        return this.hungUp ? 'PLAYBACK ERROR' : 'FILE PLAYED';
      case 'play_and_get_digits':
        return this.playAndGetDigits(arg);
      case 'record_session':
        this.setVar('record_session_path', arg);
        return '_none_';
      case 'record': {
        // record <path> [<max s> <silence threshold> <silence hits>]: the caller speaks, then stops.
        await this.wait(this.script.playbackMs ?? 5);
        this.setVar('record_seconds', String(this.hungUp ? 0 : (this.script.recordSeconds ?? 3)));
        this.record.recordings.push(arg.split(' ')[0]);
        return '_none_';
      }
      case 'speak':
        await this.wait(this.script.playbackMs ?? 5);
        return '_none_';
      case 'bridge':
        return this.bridge(arg);
      case 'hangup':
        this.hangupNow(arg || 'NORMAL_CLEARING');
        return '_none_';
      default:
        return '_none_';
    }
  }

  private async playAndGetDigits(arg: string): Promise<string> {
    const parts = arg.split(' ');
    const variable = parts[7] ?? 'digits';
    const regexp = parts[8] ?? '';
    if (!this.record.answered) this.sendEvent('CHANNEL_PROGRESS_MEDIA', []);
    await this.wait(this.script.playbackMs ?? 5);
    const keyed = this.script.digits?.[this.digitIndex++] ?? '';
    if (keyed !== '' && new RegExp(regexp).test(keyed)) {
      this.setVar(variable, keyed);
      this.setVar('read_result', 'success');
    } else {
      this.setVar('read_result', 'failure');
    }
    return '_none_';
  }

  private async bridge(arg: string): Promise<string> {
    const match = /^\{([^}]*)\}(.*)$/.exec(arg);
    const vars: Record<string, string> = {};
    if (match) {
      for (const pair of match[1].split(',')) {
        const eq = pair.indexOf('=');
        if (eq > 0) vars[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
    }
    // `,` rings the legs at once (simultaneous); each is a dial string of its own.
    const targets = (match ? match[2] : arg).split(',');
    const legs = targets.map((target) => {
      const number = target.slice(target.lastIndexOf('/') + 1).split('@')[0];
      const plan = this.planFor(number);
      const attempt: BridgeAttempt = { dialString: arg, vars, number, result: plan.result };
      this.record.bridges.push(attempt);
      return { number, plan, attempt };
    });
    this.record.firstBridgeAtMs ??= Date.now();
    const legTimeoutMs = Number(vars.leg_timeout ?? vars.call_timeout ?? 60) * 1000 * this.scale;
    const answering = legs.filter((l) => l.plan.result === 'answer').sort((a, b) => (a.plan.ringMs ?? 10) - (b.plan.ringMs ?? 10))[0];
    let disposition: string;
    let dialStatus: string;
    if (answering) {
      const ring = answering.plan.ringMs ?? 10;
      await this.wait(Math.min(ring, legTimeoutMs));
      if (this.hungUp) return this.cancelled(legs.map((l) => l.attempt));
      if (ring > legTimeoutMs) {
        disposition = 'ALLOTTED_TIMEOUT';
        dialStatus = 'ALLOTTED_TIMEOUT';
      } else {
        for (const l of legs) if (l !== answering) l.attempt.result = 'cancelled';
        const number = answering.number;
        this.answerCaller();
        this.setVar('last_bridge_to', number);
        this.otherLeg = [['Other-Type', 'originatee'], ['Other-Leg-Destination-Number', number], ['Other-Leg-Caller-ID-Number', vars.origination_caller_id_number ?? '']];
        this.sendEvent('CHANNEL_BRIDGE', []);
        this.setResultVars('SUCCESS', 'SUCCESS');
        await this.wait(answering.plan.talkMs ?? 20);
        this.setVar('bridge_hangup_cause', 'NORMAL_CLEARING');
        this.sendEvent('CHANNEL_UNBRIDGE', []);
        if (!this.hungUp && this.varValue('hangup_after_bridge') === 'true') this.hangupNow('NORMAL_CLEARING');
        return '_none_';
      }
    } else if (legs.every((l) => l.plan.result === 'busy')) {
      await this.wait(Math.min(Math.max(...legs.map((l) => l.plan.ringMs ?? 10)), legTimeoutMs));
      if (this.hungUp) return this.cancelled(legs.map((l) => l.attempt));
      disposition = 'USER_BUSY';
      dialStatus = 'BUSY';
    } else if (legs.some((l) => l.plan.result === 'no_answer')) {
      await this.wait(legTimeoutMs);
      if (this.hungUp) return this.cancelled(legs.map((l) => l.attempt));
      disposition = 'ALLOTTED_TIMEOUT';
      dialStatus = 'ALLOTTED_TIMEOUT';
    } else {
      disposition = 'NETWORK_OUT_OF_ORDER';
      dialStatus = 'CHANUNAVAIL';
    }
    this.setResultVars(disposition, dialStatus);
    const cof = this.varValue('continue_on_fail');
    if (cof !== 'true' && !(cof ?? '').split(',').includes(disposition) && !CONTINUE_BY_DEFAULT.has(disposition)) {
      this.hangupNow(disposition);
    }
    return '_none_';
  }

  private readonly attemptsByNumber = new Map<string, number>();

  private planFor(number: string): LegPlan {
    const listed = this.script.legs?.[number];
    if (listed === undefined) return this.script.defaultLeg ?? { result: 'no_answer' };
    if (!Array.isArray(listed)) return listed;
    const n = this.attemptsByNumber.get(number) ?? 0;
    this.attemptsByNumber.set(number, n + 1);
    return listed[Math.min(n, listed.length - 1)];
  }

  /** Headers of the answered other leg, carried by the events that follow a successful bridge. */
  private otherLeg: Array<[string, string]> = [];

  private cancelled(attempts: BridgeAttempt[]): string {
    for (const attempt of attempts) attempt.result = 'cancelled';
    this.setResultVars('ORIGINATOR_CANCEL', 'CANCEL');
    return '_none_';
  }

  private setResultVars(disposition: string, dialStatus: string): void {
    this.setVar('originate_disposition', disposition);
    this.setVar('DIALSTATUS', dialStatus);
  }

  private answerCaller(): void {
    if (this.record.answered) return;
    this.record.answered = true;
    this.answeredAtUs = Date.now() * 1000;
    this.sendEvent('CHANNEL_ANSWER', []);
  }

  // ---- hang-up and disconnect

  /** The caller (or the network) ends the call while an application may be running. */
  private hangup(cause: string): void {
    if (this.hungUp || this.closed) return;
    this.hangupNow(cause);
    if (!this.running) {
      this.pendingHangup = null;
      this.finishHangup(cause);
    }
    this.interrupt?.();
  }

  private hangupNow(cause: string): void {
    if (this.hungUp) return;
    this.hungUp = true;
    this.record.hangupCause = cause;
    this.appQueue = [];
    // The running application completes first; runQueue then finishes the hang-up.
    this.pendingHangup = cause;
    this.sendEvent('CHANNEL_HANGUP', [['Hangup-Cause', cause]]);
    if (this.record.lingerS === null) {
      // A7: without linger CHANNEL_HANGUP_COMPLETE is never delivered; A11: the socket goes once
      // the running application has completed (finishHangup), at once when none runs.
      if (!this.running) this.disconnect();
      return;
    }
    this.sendRaw(`Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${this.uuid}\nContent-Disposition: linger\nChannel-Name: sofia/acc/${this.script.caller}@127.0.0.1:5070\nLinger-Time: ${this.record.lingerS}\nContent-Length: 0\n\n`);
  }

  /** After the running application completed: the dialplan's own `socket` completes, then HANGUP_COMPLETE. */
  private finishHangup(cause: string): void {
    if (this.closed) return;
    if (this.record.lingerS === null) {
      this.disconnect();
      return;
    }
    this.sendEvent('CHANNEL_UNPARK', [['Hangup-Cause', cause]]);
    this.sendEvent('CHANNEL_EXECUTE_COMPLETE', [['Hangup-Cause', cause], ['Application', 'socket'], ['Application-Data', '127.0.0.1:8084 async full'], ['Application-Response', '_none_'], ['Application-UUID', randomUUID()]]);
    this.sendEvent('CHANNEL_STATE', [['Hangup-Cause', cause]]);
    const endUs = Date.now() * 1000;
    const billsec = this.answeredAtUs ? Math.round((endUs - this.answeredAtUs) / 1e6) : 0;
    this.setVar('billsec', String(billsec));
    this.setVar('duration', String(Math.round((endUs - this.createdAtUs) / 1e6)));
    this.setVar('hangup_cause', cause);
    this.sendEvent('CHANNEL_HANGUP_COMPLETE', [['Hangup-Cause', cause], ['Caller-Channel-Hangup-Time', String(endUs)]]);
    this.later(this.record.lingerS * 1000 * this.scale, () => this.disconnect());
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

  private sendRaw(text: string): void {
    this.sendBytes(Buffer.from(text, 'utf8'));
  }

  private sendBytes(bytes: Buffer): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    this.record.sentBytes += bytes.length;
    this.socket.write(bytes);
  }

  private sendEvent(name: string, extra: Array<[string, string]>): void {
    if (!this.connected || !this.record.subscribed.has(name)) return;
    const body = `${this.channelHeaderBlock(name, extra)}\n`;
    this.sendRaw(`Content-Length: ${Buffer.byteLength(body)}\nContent-Type: text/event-plain\n\n${body}`);
  }

  private appHeaders(app: { app: string; arg: string; eventUuid: string | null }, response: string | null): Array<[string, string]> {
    const h: Array<[string, string]> = [['Application', app.app], ['Application-Data', app.arg]];
    if (response !== null) h.push(['Application-Response', response]);
    if (app.eventUuid) h.push(['Application-UUID', app.eventUuid]);
    return h;
  }

  /** The event preamble, this call's channel headers and variables, then the event's own headers. */
  private channelHeaderBlock(eventName: string, extra: Array<[string, string]>): string {
    const now = new Date();
    const lines: string[] = [];
    const push = (name: string, value: string): void => {
      lines.push(encodedLine(name, value));
    };
    for (const [name, value] of this.channelVars) {
      if (name === 'Event-Name') push(name, eventName);
      else if (name === 'Event-Date-Timestamp') push(name, String(now.getTime() * 1000));
      else if (name === 'Event-Sequence') push(name, String(++sequence));
      else if (name === 'Channel-Channel-Answered-Time' || name === 'Caller-Channel-Answered-Time') push(name, String(this.answeredAtUs));
      else if (name === 'Answer-State') push(name, this.hungUp ? 'hangup' : this.record.answered ? 'answered' : 'ringing');
      else push(name, value);
      // Event-specific headers such as Hangup-Cause sit right after Event-Sequence in real events.
    }
    for (const [name, value] of this.otherLeg) push(name, value);
    for (const [name, value] of Object.entries(this.record.variables)) push(`variable_${name}`, value);
    for (const [name, value] of extra) push(name, value);
    return lines.join('');
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
    // A10: the origination caller ID where FreeSWITCH puts it after the caller-ID flip, and the
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

  private setVar(name: string, value: string): void {
    this.record.variables[name] = value;
  }

  private varValue(name: string): string | undefined {
    return this.record.variables[name];
  }
}
