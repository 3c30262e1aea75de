/**
 * The outbound event socket of one call, written for the one job it does (no modesl): FreeSWITCH
 * connected to us, we send `connect`, then commands; it answers each in order and sends this
 * call's events. What modesl's Connection did that failed in production, and what is done here:
 *  - parsing: our linear, bounded, non-throwing EslFramer (parser.ts) instead of modesl's Parser
 *    (quadratic, throws on a bad %-sequence); events decode only the headers read (event.ts);
 *  - writing: every header value checked for CR/LF first (modesl writes `key: value\n`
 *    unescaped), and the commands issued in one tick leave in ONE socket write (modesl writes
 *    every line separately: with Nagle each waits for a delayed ACK, FREESWITCH.md);
 *  - subscribing: modesl subscribes an outbound socket to BACKGROUND_JOB and
 *    CHANNEL_EXECUTE_COMPLETE with `event json` BEFORE any `myevents`, so for that moment every
 *    channel's completions reach every socket. Nothing is sent here but what the channel asks for;
 *  - reply matching: FreeSWITCH answers every command of a socket strictly in order, whatever its
 *    kind (an `api` runs in the socket thread and its api/response is written before the next
 *    command is read: mod_event_socket.c parse_command, api_exec). modesl keeps two queues
 *    (command/reply, api/response) that can hand a reply to the wrong command; here one FIFO;
 *  - event routing: modesl emits `esl::event::<NAME>::<Unique-ID>` on a wildcard EventEmitter2,
 *    so an event whose Unique-ID is `*` reached every listener of every call on the socket (a
 *    foreign CHANNEL_HANGUP recorded answered calls as abandoned). Events go to one handler, the
 *    channel, which compares the Unique-ID exactly (call-channel.ts).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { deferredInput } from './deferred-input';
import { EslTimeoutError, SocketClosedError } from './errors';
import { frameToEvent, type EslEvent } from './event';
import { DEFAULT_MAX_FRAME_BYTES, EslFramer } from './parser';
import { assertHeaderValue } from './safe';

export interface ConnectionStats {
  /**
   * Header values that did not URL-decode, read live from the framer: event headers are decoded
   * when first read, which may be after the socket's last data (the CDR reads the hang-up event
   * after the close), so a copy taken in `onData` would miss them.
   */
  readonly malformedValues: number;
  malformedEvents: number;
  listenerErrors: number;
  /** Replies that arrived with no command waiting (a peer out of step). */
  unexpectedReplies: number;
}

/**
 * A connection's counters, a class with its getter on the prototype. They were an object literal
 * with a `get malformedValues()` over the framer: V8 keeps such a literal in dictionary mode with
 * a getter of its own, and, measured rather than explained, whatever that getter's scope held
 * (the constructor's: the framer and the connection, so its socket and the whole call) then
 * outlived every young-generation collection and was promoted, to be freed only by a mark-compact.
 * At 200 calls/s that was 1.8 KB more copied a call by every scavenge (bench/PROFILE.md, release
 * 15; test/esl/connection-young-gc.test.ts).
 */
class ConnectionCounters implements ConnectionStats {
  malformedEvents = 0;
  listenerErrors = 0;
  unexpectedReplies = 0;

  constructor(private readonly framer: EslFramer) {}

  get malformedValues(): number {
    return this.framer.malformedValues;
  }
}

/**
 * A command written and waiting for its reply. One object a command, the caller's own: the
 * connection keeps no closure, timer or promise of its own per command (bench/PROFILE.md,
 * release 41).
 */
export interface ReplyWaiter {
  /** The command line, for the errors that name it (of a waiter held for several, the one whose reply is due next). */
  readonly command: string;
  /** Its reply: command/reply, or api/response for `api`. */
  reply(reply: EslEvent): void;
  /**
   * No reply will come: EslTimeoutError when this command's did not come within the
   * connection's reply timeout (the socket is then destroyed), else why the socket closed (the
   * framer's EslProtocolError, or SocketClosedError).
   */
  fail(err: Error): void;
}

export interface ConnectionOptions {
  maxFrameBytes?: number;
  /**
   * How long a command's reply may take (ESL_REPLY_TIMEOUT_MS); past it the command fails with
   * EslTimeoutError and the socket is destroyed: a socket FreeSWITCH stopped answering cannot
   * control the call any more. Default 5000.
   */
  replyTimeoutMs?: number;
}

const DEFAULT_REPLY_TIMEOUT_MS = 5000;

export interface ConnectionHandlers {
  /** text/event-plain and text/event-json messages. */
  event(event: EslEvent): void;
  /** Anything else that is not a reply (text/disconnect-notice …). */
  notice?(event: EslEvent): void;
}

/**
 * Emits 'esl::protocol-error' (EslProtocolError: the stream could not be framed, the socket is
 * destroyed), 'esl::listener-error' (a handler threw; the other calls go on), and the socket's
 * own end and close as 'esl::end' and 'esl::close', in order with its data: after deferInput()
 * they wait with it (deferred-input.ts), and a channel that read them from the socket itself
 * would see the close before the events that came ahead of it.
 */
export class EslConnection extends EventEmitter {
  readonly framer: EslFramer;
  readonly stats: ConnectionStats;
  handlers: ConnectionHandlers | null = null;
  /** Waiters for command/reply and api/response, in the order the commands were written. */
  private readonly replies: ReplyWaiter[] = [];
  /** When each waiter's reply is due (performance.now() ms), in the same order. */
  private readonly replyDeadlines: number[] = [];
  /**
   * One timer for every reply outstanding: FreeSWITCH answers in order and every command gets
   * the same time, so the oldest waiter's deadline is the first to pass. Armed for the oldest
   * when a command is written and none is armed; when it fires early (that reply came), it is
   * armed again for the oldest still waiting.
   */
  private replyTimer: NodeJS.Timeout | null = null;
  readonly replyTimeoutMs: number;
  /**
   * The pieces of this tick's commands, joined into one string and written together at its end:
   * no string made a command (the commands of a turn were 5 % of a call's allocation).
   */
  private outgoing: string[] = [];
  private flushScheduled = false;
  /** This turn's commands leave at its end, not at the end of this tick (flushAtEndOfTurn). */
  private endOfTurn = false;
  /** The input waits behind other calls' (deferInput). */
  private deferred = false;
  /** esl::protocol-error was emitted for the framer's break. */
  private brokenReported = false;

  /** Outbound mode: FreeSWITCH connected to us with this socket. */
  constructor(
    readonly socket: Socket,
    options: ConnectionOptions = {},
  ) {
    super();
    this.framer = new EslFramer(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.replyTimeoutMs = options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
    // A class, not an object literal with a getter: see ConnectionCounters.
    this.stats = new ConnectionCounters(this.framer);
    // No closure a read unless the read waits (deferred input).
    socket.on('data', (chunk: Buffer) => {
      if (this.deferred) deferredInput.push(() => this.onData(chunk));
      else this.onData(chunk);
    });
    socket.once('end', () => this.input(() => this.emitSafely('esl::end')));
    socket.once('close', () => this.input(() => this.onClose()));
  }

  /**
   * From now on this socket's input (data, end, close) is handled behind the input of calls still
   * being set up, in the order it came (deferred-input.ts): for a call whose first bridge is
   * written, whose events no caller waits on. Cannot be undone.
   */
  deferInput(): void {
    this.deferred = true;
  }

  private input(handle: () => void): void {
    if (this.deferred) deferredInput.push(handle);
    else handle();
  }

  /** The socket closed: every reply still awaited fails (with the framer's break, if that was why), then esl::close. */
  private onClose(): void {
    this.failAll((waiter) => this.framer.broken ?? new SocketClosedError(waiter.command));
    this.emitSafely('esl::close');
  }

  /**
   * No reply still awaited will be handed out: the timer stops, and each waiter, taken out of the
   * line first, fails with what `errorFor` gives it (`first`: the oldest, whose reply was due first).
   */
  private failAll(errorFor: (waiter: ReplyWaiter, first: boolean) => Error): void {
    if (this.replyTimer !== null) {
      clearTimeout(this.replyTimer);
      this.replyTimer = null;
    }
    const waiting = this.replies.splice(0);
    this.replyDeadlines.length = 0;
    for (let i = 0; i < waiting.length; i++) {
      try {
        waiting[i].fail(errorFor(waiting[i], i === 0));
      } catch (thrown) {
        this.listenerFailed(thrown);
      }
    }
  }

  private emitSafely(event: 'esl::end' | 'esl::close'): void {
    try {
      this.emit(event);
    } catch (err) {
      this.listenerFailed(err);
    }
  }

  /** A bug in a handler must not take down every other call in the process: counted and reported. */
  private listenerFailed(err: unknown): void {
    this.stats.listenerErrors++;
    this.emit('esl::listener-error', err);
  }

  private onData(chunk: Buffer): void {
    const frames = this.framer.push(chunk);
    for (const frame of frames) {
      try {
        const type = frame.headers['Content-Type'];
        const { event, malformed } = frameToEvent(frame, this.framer);
        if (malformed) this.stats.malformedEvents++;
        if (type === 'command/reply' || type === 'api/response') {
          const waiter = this.replies.shift();
          this.replyDeadlines.shift();
          if (waiter) waiter.reply(event);
          else this.stats.unexpectedReplies++;
        } else if (type === 'text/event-plain' || type === 'text/event-json') {
          this.handlers?.event(event);
        } else {
          this.handlers?.notice?.(event);
        }
      } catch (err) {
        this.listenerFailed(err);
      }
    }
    if (this.framer.broken && !this.brokenReported) {
      // The stream cannot be framed any more: this call's socket is lost, the process is not.
      // Reported once, also when the socket closed meanwhile (deferred input waits behind other
      // calls, and the peer's FIN or a reset may come first): the call's CDR names the cause.
      this.brokenReported = true;
      this.emit('esl::protocol-error', this.framer.broken);
      this.socket.destroy();
    }
  }

  /**
   * Writes one command and gives `waiter` its reply (command/reply, or api/response for `api`),
   * matched in FIFO order with every other command of this socket, or fails it: no reply within
   * `replyTimeoutMs`, or the socket closed first. Throws (nothing queued) when the command cannot
   * be written. `line` is the command written, `waiter.command` unless the waiter stands for
   * several commands written one after another (CommandGroup, which names the one due next).
   */
  request(headers: Record<string, string> | undefined, body: string | undefined, waiter: ReplyWaiter, line: string = waiter.command): void {
    this.write(line, headers, body);
    this.replies.push(waiter);
    this.replyDeadlines.push(performance.now() + this.replyTimeoutMs);
    if (this.replyTimer === null) this.armReplyTimer(this.replyTimeoutMs);
  }

  /** Commands written whose replies have not come. */
  get awaitingReplies(): number {
    return this.replies.length;
  }

  private armReplyTimer(ms: number): void {
    this.replyTimer = setTimeout(() => this.onReplyTimer(), ms);
  }

  private onReplyTimer(): void {
    this.replyTimer = null;
    if (this.replies.length === 0) return;
    // Node fires a timer at most a millisecond early against this clock: within that it is due.
    const left = this.replyDeadlines[0] - performance.now();
    if (left > 1) {
      this.armReplyTimer(Math.ceil(left));
      return;
    }
    // The socket is given up: the commands behind the late one fail now too, so that a reply
    // read before the drop but handled after it (deferred input) is handed to nobody, not to the
    // next command in line.
    this.failAll((waiter, late) => (late ? new EslTimeoutError(waiter.command, this.replyTimeoutMs) : new SocketClosedError(waiter.command)));
    this.socket.destroy();
  }

  /**
   * Queues one command for the socket. A body goes after `content-length`, which is how sendmsg
   * carries an application argument safely for any bytes (mod_event_socket.c reads exactly
   * content-length bytes). Commands queued in the same tick leave in one write (FreeSWITCH
   * reads them one after another and answers in order).
   */
  write(command: string, headers?: Record<string, string>, body?: string): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) throw new SocketClosedError(command);
    // Every value is checked before any piece is queued: a refused command leaves no part of
    // itself in the stream.
    assertHeaderValue('command', command);
    if (headers) {
      for (const name in headers) {
        assertHeaderValue('header name', name);
        assertHeaderValue(name, String(headers[name]));
      }
    }
    const out = this.outgoing;
    out.push(command, '\n');
    if (headers) {
      for (const name in headers) out.push(name, ': ', String(headers[name]), '\n');
    }
    if (body !== undefined) out.push('content-type: text/plain\ncontent-length: ', String(Buffer.byteLength(body)), '\n\n', body);
    else out.push('\n');
    this.scheduleFlush();
  }

  /**
   * The commands queued in this turn of the event loop leave at its end (an immediate, queued
   * behind the immediates already queued) instead of at the end of this tick: for a command an
   * earlier immediate is about to add, so both leave in one write and FreeSWITCH reads them
   * together. It holds for this tick only; if no immediate adds a command, what was queued leaves
   * a few callbacks later, in the same turn.
   */
  flushAtEndOfTurn(): void {
    this.endOfTurn = true;
    // Also when nothing is written in this tick: the flag must not outlive it.
    this.scheduleFlush();
  }

  /** Once a tick: at its end, the flush (or its deferral to the end of the turn). */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(this.flushOrDefer);
  }

  private readonly flushOrDefer = (): void => {
    if (!this.endOfTurn) {
      this.flush();
      return;
    }
    this.endOfTurn = false;
    // The deferred input waits behind it: a setup's commands leave before bridged calls' events run.
    deferredInput.hold();
    setImmediate(() => {
      deferredInput.release();
      this.flush();
    });
  };

  /** Writes what this tick queued; a socket closed meanwhile drops it (its waiters are failed by the close). */
  flush(): void {
    this.flushScheduled = false;
    const out = this.outgoing;
    if (out.length === 0) return;
    this.outgoing = [];
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(out.join(''));
  }

  /** Ends the socket after what is queued (a half-close: FreeSWITCH closes its side). */
  end(): void {
    this.flush();
    this.socket.end();
  }
}
