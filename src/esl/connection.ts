/**
 * modesl's Connection with the parts that fail in production replaced:
 *  - parsing: our linear, non-throwing EslFramer instead of modesl's Parser (see parser.ts);
 *  - writing: one write() per command instead of one per header line, and every header value
 *    checked for CR/LF first (modesl writes `key: value\n` unescaped);
 *  - subscribing: modesl subscribes an outbound socket to BACKGROUND_JOB and
 *    CHANNEL_EXECUTE_COMPLETE with `event json` BEFORE any `myevents`, so for that moment every
 *    channel's completions reach every socket. We skip it and send `myevents` ourselves.
 *  - reply matching: modesl keeps one queue for `command/reply` and another for `api/response`,
 *    but FreeSWITCH answers every command of a socket strictly in order, whatever its kind (an
 *    `api` runs in the socket thread and its api/response is written before the next command is
 *    read: mod_event_socket.c parse_command, api_exec). With both kinds in flight, two queues
 *    can hand a reply to the wrong command; `request()` keeps one FIFO for both.
 * What we keep from modesl: the outbound handshake (`connect` and its CHANNEL_DATA reply) and its
 * event routing (`esl::event::<NAME>::<uuid>`, `esl::event::disconnect::notice`, …).
 */
import type { Socket } from 'node:net';
import { Connection } from 'modesl';
import { SocketClosedError } from './errors';
import { frameToEvent, type EslEvent } from './event';
import { EslFramer } from './parser';
import { assertHeaderValue } from './safe';

export interface ConnectionStats {
  malformedValues: number;
  malformedEvents: number;
  listenerErrors: number;
}

export class EslConnection extends Connection {
  // `declare`: these are set in _onConnect, which modesl's constructor calls before ours runs;
  // a field initializer would overwrite them afterwards.
  declare framer: EslFramer;
  declare stats: ConnectionStats;
  /** Waiters for command/reply and api/response, in the order the commands were written. */
  declare private replies: Array<(reply: EslEvent) => void>;

  /** Outbound mode: FreeSWITCH connected to us with this socket. */
  constructor(socket: Socket) {
    super(socket);
  }

  protected override _onConnect(): void {
    const socket = this.socket!;
    this.framer = new EslFramer();
    this.stats = { malformedValues: 0, malformedEvents: 0, listenerErrors: 0 };
    this.replies = [];
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.emit('esl::connect');
    this.connecting = false;
  }

  private onData(chunk: Buffer): void {
    const frames = this.framer.push(chunk);
    this.stats.malformedValues = this.framer.malformedValues;
    for (const frame of frames) {
      const { event, malformed } = frameToEvent(frame, this.framer);
      if (malformed) this.stats.malformedEvents++;
      try {
        const type = frame.headers['Content-Type'];
        // Ours first; with none waiting the reply is modesl's own (the `connect` of its handshake).
        if ((type === 'command/reply' || type === 'api/response') && this.replies.length > 0) this.replies.shift()!(event);
        this._onEvent(event, frame.headers, event.body);
      } catch (err) {
        // A bug in a listener must not take down every other call in the process.
        this.stats.listenerErrors++;
        this.emit('esl::listener-error', err);
      }
    }
    if (this.framer.broken) {
      // The stream cannot be framed any more: this call's socket is lost, the process is not.
      this.emit('esl::protocol-error', this.framer.broken);
      this.socket?.destroy();
    }
  }

  /** Outbound sockets subscribe with `myevents` (see EslCallChannel); never `event json` first. */
  override subscribe(_events: string[], cb?: () => void): void {
    if (cb) process.nextTick(cb);
  }

  override send(command: string, args?: Record<string, string> | null): void {
    this.write(command, args ?? undefined, undefined);
  }

  /**
   * Writes one command and calls `onReply` with its reply (command/reply, or api/response for
   * `api`), matched in FIFO order with every other command of this socket. Throws (nothing
   * queued) when the command cannot be written.
   */
  request(command: string, headers: Record<string, string> | undefined, body: string | undefined, onReply: (reply: EslEvent) => void): void {
    this.write(command, headers, body);
    this.replies.push(onReply);
  }

  /**
   * Writes one command in a single write(). A body goes after `content-length`, which is how
   * sendmsg carries an application argument safely for any bytes (mod_event_socket.c reads
   * exactly content-length bytes).
   */
  write(command: string, headers?: Record<string, string>, body?: string): void {
    const socket = this.socket;
    if (!socket || socket.destroyed || !socket.writable) throw new SocketClosedError(command);
    let message = `${assertHeaderValue('command', command)}\n`;
    if (headers) {
      for (const [name, value] of Object.entries(headers)) {
        message += `${assertHeaderValue('header name', name)}: ${assertHeaderValue(name, String(value))}\n`;
      }
    }
    if (body !== undefined) {
      message += `content-type: text/plain\ncontent-length: ${Buffer.byteLength(body)}\n\n${body}`;
    } else {
      message += '\n';
    }
    socket.write(message);
  }
}
