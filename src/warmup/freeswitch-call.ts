/**
 * One emulated outbound event-socket session: what FreeSWITCH does when the dialplan runs
 * `socket host:port async full` for a call, as cheaply as possible.
 *
 * What it does, each seen in test/fixtures/esl or read in mod_event_socket.c:
 *  - connects with TCP_NODELAY (socket_function sets it) and waits for `connect`, which is
 *    answered with the whole channel as CHANNEL_DATA headers (the captured ~6 KB reply);
 *  - answers every command with its own command/reply, in order (listener_run: one reply per
 *    parse_command); `sendmsg` is "+OK" at once and the application runs after, in order, never
 *    nested in a running one (as behind an event-locked prompt);
 *  - `myevents` subscribes this call's events of the types parse_command lists, `event <fmt> …`
 *    adds types and sets the format (modesl's `event json …` makes every later event JSON),
 *    `nixevent` removes types and FreeSWITCH stops sending them;
 *  - each application: CHANNEL_EXECUTE, then CHANNEL_EXECUTE_COMPLETE with Application-UUID
 *    echoing the sendmsg's Event-UUID; `playback` before answer pre-answers (PROGRESS_MEDIA);
 *    `answer` fires CHANNEL_ANSWER; `bridge`: the first leg answers after ringMs (CHANNEL_ANSWER,
 *    CHANNEL_BRIDGE), talks talkMs, hangs up (CHANNEL_UNBRIDGE); with hangup_after_bridge the
 *    caller's leg is hung up before the bridge completes, as in the capture;
 *  - hangup (hangup_after_bridge, the `hangup` application, sendmsg `call-command: hangup`):
 *    CHANNEL_HANGUP, the running application's completion, CHANNEL_UNPARK, the dialplan's own
 *    `socket` completion, CHANNEL_STATE ×2, CHANNEL_HANGUP_COMPLETE, then with `linger` the
 *    linger notice and the socket stays open until the controller closes it or the linger time
 *    ends; without linger the disconnect notice and close right after CHANNEL_HANGUP
 *    (listener_run leaves its loop as soon as the channel is down).
 * Not emulated: other calls' events reaching a socket subscribed without `myevents` (modesl's
 * `event json …` before its `myevents`), busy or unanswered legs, DTMF, variables the controller
 * set appearing in later events.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { EventFormat, Phase, SlotValues, Templates } from './templates';
import { CommandReader, MYEVENTS } from './wire';

export interface CallPlan {
  /** The first leg of a bridge answers after this long. */
  ringMs: number;
  /** The answered leg talks this long, then hangs up. */
  talkMs: number;
  /** How long a playback (or play_and_get_digits, speak) plays. */
  playbackMs: number;
  /** Longest FreeSWITCH waits in linger for the controller to close (the linger time itself, capped). */
  maxLingerMs: number;
  /** The whole call is given up (counted failed) after this long. */
  timeoutMs: number;
  /**
   * FreeSWITCH gives the controller 25 s to send `connect` (listener_run: read_packet(…, 25))
   * before it logs "Socket Error!" and the dialplan moves on.
   */
  handshakeTimeoutMs: number;
}

/** A short call (the bench's, the warm-up's): the first phone answers at once and talks 0 ms; prompts take no time. */
export function shortCall(): CallPlan {
  return { ringMs: 0, talkMs: 0, playbackMs: 0, maxLingerMs: 10_000, timeoutMs: 60_000, handshakeTimeoutMs: 25_000 };
}

/** Counters of one call, summed by the driver. */
export interface CallCounters {
  commands: number;
  /** Groups of commands that arrived after FreeSWITCH had written something: round trips waited. */
  batches: number;
  bytesIn: number;
  bytesOut: number;
  events: number;
  eventBytes: number;
  /** Events the subscription would have carried without `nixevent`, and their bytes. */
  eventsSubscribed: number;
  eventBytesSubscribed: number;
  lingerExpired: number;
}

export interface CallResult {
  /** Connect started → first `bridge` command received, in ms; NaN when none came. */
  setupMs: number;
  /** Connect started → `connect` command received, in ms; NaN when none came. */
  handshakeMs: number;
  /**
   * Connect started → the first command after `connect` received, in ms: the controller has read
   * the channel data FreeSWITCH answered `connect` with and acted on it. NaN when none came.
   */
  firstCommandMs: number;
  /** Connect started → the socket closed, in ms: the call's whole time with the controller. */
  lifeMs: number;
  ok: boolean;
  error: string | null;
  counters: CallCounters;
}

const DISCONNECT_TEXT = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';
const CAUSE = 'NORMAL_CLEARING';

interface App {
  name: string;
  arg: string;
  id: string;
}

function ms(from: bigint): number {
  return Number(process.hrtime.bigint() - from) / 1e6;
}

let nextCaller = 12_345_678;

export class FsCall {
  private readonly uuid = randomUUID();
  /** A mobile number of its own per call (same length as the captured one): 139 + 8 digits. */
  private readonly caller = `139${String(nextCaller++ % 100_000_000).padStart(8, '0')}`;
  private readonly started = process.hrtime.bigint();
  /** What this call puts into the templates' slots; the end until stamped is the start (no template before the hangup shows it). */
  private readonly slots: Record<keyof SlotValues, string>;
  private readonly socket: net.Socket;
  private readonly counters: CallCounters = {
    commands: 0, batches: 0, bytesIn: 0, bytesOut: 0, events: 0, eventBytes: 0, eventsSubscribed: 0, eventBytesSubscribed: 0, lingerExpired: 0,
  };
  private readonly reader = new CommandReader();
  private out: Buffer[] = [];
  private flushQueued = false;
  private wroteSinceCommand = true;
  private format: EventFormat = 'plain';
  private readonly subscribed = new Set<string>();
  /** Every type ever subscribed: what would have come without `nixevent`. */
  private readonly everSubscribed = new Set<string>();
  private myevents = false;
  private lingerS: number | null = null;
  private connected = false;
  private answered = false;
  private earlyMedia = false;
  private hungUp = false;
  private closed = false;
  private hangupAfterBridge = false;
  private readonly queue: App[] = [];
  private running: App | null = null;
  /** Cancels the running application's pending step (a ring, a talk, a prompt). */
  private appCancel: (() => void) | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private readonly deadline: NodeJS.Timeout;
  private handshakeTimer: NodeJS.Timeout | null;
  private setupMs = NaN;
  private handshakeMs = NaN;
  private firstCommandMs = NaN;
  /** Chunks read from the controller, and the one that carried `connect` (-1: none yet). */
  private chunks = 0;
  private connectChunk = -1;
  private error: string | null = null;
  private done!: (r: CallResult) => void;
  readonly result: Promise<CallResult>;

  constructor(
    port: number,
    private readonly t: Templates,
    private readonly plan: CallPlan,
    host = '127.0.0.1',
    /** Called once when `connect` arrives (burst runs count handshakes). */
    private readonly onHandshake?: () => void,
  ) {
    this.result = new Promise((resolve) => {
      this.done = resolve;
    });
    const createdUs = Date.now() * 1000;
    const created = String(createdUs);
    const createdS = String(Math.floor(createdUs / 1e6));
    // Never answered: FreeSWITCH says 0 for the answer (and bridge) times, until answer() stamps them.
    this.slots = { uuid: this.uuid, caller: this.caller, cause: CAUSE, created, createdS, answered: '0', answeredS: '0', ended: created, endedS: createdS, duration: '0', billsec: '0' };
    this.socket = net.connect({ port, host, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.guarded(() => this.onData(chunk)));
    this.socket.on('error', (err: Error) => {
      // A reset after the call ended (the controller dropped the socket) loses nothing.
      if (!this.hungUp) this.error ??= (err as NodeJS.ErrnoException).code ?? err.message;
    });
    this.socket.on('end', () => this.guarded(() => this.onPeerEnd()));
    this.socket.on('close', () => this.finish());
    this.deadline = setTimeout(() => {
      this.error ??= 'call timed out';
      this.socket.destroy();
    }, plan.timeoutMs);
    this.handshakeTimer = setTimeout(() => {
      this.error ??= 'no connect command in time';
      this.socket.destroy();
    }, plan.handshakeTimeoutMs);
  }

  /** Ends the call at once, counted failed for `reason` (the daemon's warm-up out of time, or stopping). */
  abort(reason: string): void {
    this.error ??= reason;
    this.socket.destroy();
  }

  /**
   * Runs one of the emulator's own steps; a throw fails this call instead of escaping: the emulator
   * also runs inside the daemon (its start-up warm-up), where an uncaught exception would end it.
   */
  private guarded(step: () => void): void {
    try {
      step();
    } catch (err) {
      this.abort(`emulator error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // ---- commands

  private onData(chunk: Buffer): void {
    this.chunks++;
    this.counters.bytesIn += chunk.length;
    for (const command of this.reader.push(chunk)) {
      this.counters.commands++;
      // A command read after the chunk that carried `connect`: the channel data was written in between.
      if (this.connectChunk >= 0 && this.chunks > this.connectChunk && Number.isNaN(this.firstCommandMs)) this.firstCommandMs = ms(this.started);
      if (this.wroteSinceCommand) {
        this.counters.batches++;
        this.wroteSinceCommand = false;
      }
      this.onCommand(command.line, command.headers, command.body);
      if (this.closed) return;
    }
    this.runQueue();
  }

  private onCommand(line: string, headers: Map<string, string>, body: string): void {
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toLowerCase();
    const rest = space < 0 ? [] : line.slice(space + 1).split(' ').filter((w) => w !== '');
    switch (verb) {
      case 'connect':
        if (!this.connected) {
          this.connected = true;
          this.connectChunk = this.chunks;
          if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
          this.handshakeTimer = null;
          this.handshakeMs = ms(this.started);
          this.onHandshake?.();
        }
        {
          const data = Buffer.allocUnsafe(this.t.channelData.length(this.values(CAUSE)));
          this.t.channelData.writeInto(data, 0, this.values(CAUSE));
          this.sendBytes(data);
        }
        return;
      case 'myevents':
        if (this.myevents) return this.reply('-ERR aready enabled.');
        this.myevents = true;
        for (const e of MYEVENTS) this.subscribe(e);
        if (/json/i.test(line)) this.format = 'json';
        return this.reply('+OK Events Enabled');
      case 'event': {
        let keys = 0;
        for (const [i, w] of rest.entries()) {
          if (i === 0 && /^(plain|json|xml)$/i.test(w)) {
            this.format = w.toLowerCase() === 'json' ? 'json' : 'plain';
            continue;
          }
          if (!/^[A-Z_]+$/.test(w)) continue;
          keys++;
          if (w === 'ALL') for (const e of MYEVENTS) this.subscribe(e);
          else this.subscribe(w);
        }
        return this.reply(keys > 0 ? `+OK event listener enabled ${this.format}` : '-ERR no keywords supplied');
      }
      case 'nixevent':
        for (const w of rest) {
          if (w === 'ALL') this.subscribed.clear();
          else this.subscribed.delete(w);
        }
        return this.reply(rest.length > 0 ? '+OK events nixed' : '-ERR no keywords supplied');
      case 'noevents':
        this.subscribed.clear();
        return this.reply('+OK no longer listening for events');
      case 'linger':
        this.lingerS = rest[0] ? Number(rest[0]) : 600;
        return this.reply(rest[0] ? `+OK will linger ${rest[0]} seconds` : '+OK will linger');
      case 'nolinger':
        this.lingerS = null;
        return this.reply('+OK will not linger');
      case 'sendmsg':
        return this.onSendmsg(headers, body);
      case 'bgapi': {
        const job = randomUUID();
        this.send(`Content-Type: command/reply\nReply-Text: +OK Job-UUID: ${job}\nJob-UUID: ${job}\n\n`);
        return;
      }
      case 'api':
        this.send('Content-Type: api/response\nContent-Length: 4\n\n+OK\n');
        return;
      case 'exit':
        this.reply('+OK bye');
        this.disconnect();
        return;
      default:
        return this.reply('-ERR command not found');
    }
  }

  private subscribe(type: string): void {
    this.subscribed.add(type);
    this.everSubscribed.add(type);
  }

  private onSendmsg(headers: Map<string, string>, body: string): void {
    this.reply('+OK');
    const command = headers.get('call-command');
    if (command === 'hangup') {
      this.hangup(headers.get('hangup-cause') ?? CAUSE);
      return;
    }
    if (command !== 'execute' || this.hungUp) return; // queued work of a dead channel never runs
    const name = headers.get('execute-app-name') ?? '';
    const arg = headers.get('content-type') === 'text/plain' ? body : (headers.get('execute-app-arg') ?? '');
    this.queue.push({ name, arg, id: headers.get('event-uuid') ?? randomUUID() });
  }

  // ---- applications, one after another (the session thread)

  private runQueue(): void {
    while (!this.running && !this.hungUp && !this.closed && this.queue.length > 0) {
      const app = this.queue.shift()!;
      this.running = app;
      // Setup ends when FreeSWITCH would start dialling: a bridge written while a prompt plays
      // waits behind it (event-lock) and starts when it ends.
      if (app.name === 'bridge' && Number.isNaN(this.setupMs)) this.setupMs = ms(this.started);
      this.emit('CHANNEL_EXECUTE', app);
      this.execute(app);
    }
  }

  private execute(app: App): void {
    switch (app.name) {
      case 'set':
      case 'export':
        this.setVariable(app.arg);
        return this.complete('_none_');
      case 'multiset':
        for (const pair of app.arg.split(' ')) this.setVariable(pair);
        return this.complete('_none_');
      case 'answer':
        this.answer();
        return this.complete('_none_');
      case 'pre_answer':
        this.preAnswer();
        return this.complete('_none_');
      case 'playback':
      case 'speak':
      case 'play_and_get_digits':
      case 'record':
        this.preAnswer();
        return this.after(this.plan.playbackMs, () => this.complete(app.name === 'playback' ? 'FILE PLAYED' : '_none_'));
      case 'hangup':
        this.hangup(app.arg.trim() || CAUSE);
        return;
      case 'bridge':
        return this.after(this.plan.ringMs, () => {
          this.answer();
          this.emit('CHANNEL_BRIDGE');
          this.after(this.plan.talkMs, () => {
            this.emit('CHANNEL_UNBRIDGE');
            if (this.hangupAfterBridge) this.hangup(CAUSE);
            else this.complete('_none_', true);
          });
        });
      default:
        return this.complete('_none_');
    }
  }

  private setVariable(pair: string): void {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq) === 'hangup_after_bridge') this.hangupAfterBridge = pair.slice(eq + 1) === 'true';
  }

  /** Runs fn after delay ms (0: on the next turn of the event loop, so as a separate write). */
  private after(delay: number, fn: () => void): void {
    const run = (): void => {
      this.appCancel = null;
      if (this.closed) return;
      this.guarded(() => {
        fn();
        this.runQueue();
      });
    };
    if (delay <= 0) {
      const h = setImmediate(run);
      this.appCancel = () => clearImmediate(h);
    } else {
      const h = setTimeout(run, delay);
      this.appCancel = () => clearTimeout(h);
    }
  }

  private complete(response: string, bridged = false): void {
    const app = this.running;
    if (!app) return;
    this.running = null;
    this.emit('CHANNEL_EXECUTE_COMPLETE', app, response, bridged || app.name === 'bridge');
  }

  private answer(): void {
    if (this.answered) return;
    this.answered = true;
    this.stamp('answered');
    this.emit('CHANNEL_ANSWER');
  }

  private preAnswer(): void {
    if (this.answered || this.earlyMedia) return;
    this.earlyMedia = true;
    this.emit('CHANNEL_PROGRESS_MEDIA');
  }

  // ---- hang-up and disconnect

  private hangup(cause: string): void {
    if (this.hungUp || this.closed) return;
    this.hungUp = true;
    this.stamp('ended');
    this.queue.length = 0;
    this.appCancel?.();
    this.appCancel = null;
    this.emit('CHANNEL_HANGUP', undefined, undefined, false, cause);
    if (this.running) this.complete('_none_');
    if (this.lingerS === null) {
      this.disconnect();
      return;
    }
    this.emit('CHANNEL_UNPARK', undefined, undefined, false, cause);
    this.emit('CHANNEL_EXECUTE_COMPLETE', { name: 'socket', arg: '127.0.0.1:8084 async full', id: randomUUID() }, '_none_', false, cause);
    this.emit('CHANNEL_STATE', undefined, undefined, false, cause);
    this.emit('CHANNEL_STATE', undefined, undefined, false, cause);
    this.emit('CHANNEL_HANGUP_COMPLETE', undefined, undefined, false, cause);
    this.send(`Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${this.uuid}\nContent-Disposition: linger\nChannel-Name: sofia/acc/${this.caller}@127.0.0.1:5070\nLinger-Time: ${this.lingerS}\nContent-Length: 0\n\n`);
    this.lingerTimer = setTimeout(() => {
      this.counters.lingerExpired++;
      this.guarded(() => this.disconnect());
    }, Math.min(this.lingerS * 1000, this.plan.maxLingerMs));
  }

  private disconnect(): void {
    if (this.closed) return;
    this.send(`Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${this.uuid}\nContent-Disposition: disconnect\nContent-Length: ${DISCONNECT_TEXT.length}\n\n${DISCONNECT_TEXT}`);
    this.flush();
    this.socket.end();
  }

  /** The controller closed its side: listener_run leaves its loop, says goodbye and closes. */
  private onPeerEnd(): void {
    if (!this.hungUp) this.error ??= 'controller closed before the call ended';
    this.disconnect();
    this.socket.end();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.deadline);
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.appCancel?.();
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    const ok = this.error === null && !Number.isNaN(this.setupMs) && this.hungUp;
    if (!ok && this.error === null) this.error = Number.isNaN(this.setupMs) ? 'no bridge' : 'not hung up';
    this.done({ setupMs: this.setupMs, handshakeMs: this.handshakeMs, firstCommandMs: this.firstCommandMs, lifeMs: ms(this.started), ok, error: ok ? null : this.error, counters: this.counters });
  }

  // ---- writing: everything produced in one turn goes out in one write

  private reply(text: string): void {
    this.send(`Content-Type: command/reply\nReply-Text: ${text}\n\n`);
  }

  private send(text: string): void {
    this.sendBytes(Buffer.from(text, 'latin1'));
  }

  private sendBytes(bytes: Buffer): void {
    this.out.push(bytes);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.guarded(() => this.flush()));
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.out.length === 0) return;
    const bytes = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out);
    this.out = [];
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.counters.bytesOut += bytes.length;
    this.wroteSinceCommand = true;
    this.socket.write(bytes);
  }

  private values(cause: string): SlotValues {
    this.slots.cause = cause;
    return this.slots;
  }

  /** Stamps one of the call's times (µs since the epoch, as FreeSWITCH) and what follows from it. */
  private stamp(which: 'answered' | 'ended'): void {
    const us = Date.now() * 1000;
    const s = this.slots;
    s[which] = String(us);
    s[`${which}S`] = String(Math.floor(us / 1e6));
    if (which === 'ended') {
      const created = Number(s.created);
      s.duration = String(Math.floor((us - created) / 1e6));
      s.billsec = this.answered ? String(Math.floor((us - Number(s.answered)) / 1e6)) : '0';
    }
  }

  private phase(): Phase {
    return this.hungUp ? 'hangup' : this.answered ? 'answered' : 'ringing';
  }

  private emit(name: string, app?: App, response?: string, bridged = false, cause = CAUSE): void {
    if (!this.everSubscribed.has(name)) return;
    const tpl = this.t.event(this.format, name, this.phase());
    const json = this.format === 'json';
    let tail = '';
    if (app) {
      tail = json
        ? `,"Application":${JSON.stringify(app.name)},"Application-Data":${JSON.stringify(app.arg)}${response === undefined ? '' : `,"Application-Response":${JSON.stringify(response)}`},"Application-UUID":${JSON.stringify(app.id)}`
        : `Application: ${app.name}\nApplication-Data: ${this.t.urlEncode(app.arg)}\n${response === undefined ? '' : `Application-Response: ${this.t.urlEncode(response)}\n`}Application-UUID: ${app.id}\n`;
    }
    if (bridged && !tpl.hasBridgeResult) {
      tail += json
        ? ',"variable_originate_disposition":"SUCCESS","variable_DIALSTATUS":"SUCCESS"'
        : 'variable_originate_disposition: SUCCESS\nvariable_DIALSTATUS: SUCCESS\n';
    }
    tail += json ? '}' : '\n';
    const tailBytes = json ? Buffer.byteLength(tail) : tail.length;
    const values = this.values(cause);
    const length = tpl.body.length(values) + tailBytes;
    const head = `Content-Length: ${length}\nContent-Type: text/event-${this.format}\n\n`;
    this.counters.eventsSubscribed++;
    this.counters.eventBytesSubscribed += head.length + length;
    if (!this.subscribed.has(name)) return;
    this.counters.events++;
    this.counters.eventBytes += head.length + length;
    // Head, template and tail copied into one buffer: no 6 KB string is built or encoded per event.
    const message = Buffer.allocUnsafe(head.length + length);
    let at = message.write(head, 0, 'latin1');
    at = tpl.body.writeInto(message, at, values);
    message.write(tail, at, json ? 'utf8' : 'latin1');
    this.sendBytes(message);
  }
}
