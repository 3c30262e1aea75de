/**
 * modesl's Connection with the parts that fail in production replaced:
 *  - parsing: our linear, non-throwing EslFramer instead of modesl's Parser (see parser.ts);
 *  - writing: one write() per command instead of one per header line, and every header value
 *    checked for CR/LF first (modesl writes `key: value\n` unescaped);
 *  - subscribing: modesl subscribes an outbound socket to BACKGROUND_JOB and
 *    CHANNEL_EXECUTE_COMPLETE with `event json` BEFORE any `myevents`, so for that moment every
 *    channel's completions reach every socket. We skip it and send `myevents` ourselves.
 * What we keep from modesl: the outbound handshake (`connect` and its CHANNEL_DATA reply), the
 * FIFO matching of command/reply to commands, and its event routing
 * (`esl::event::<NAME>::<uuid>`, `esl::event::disconnect::notice`, …).
 */
import type { Socket } from 'node:net';
import { Connection } from 'modesl';
import { SocketClosedError } from './errors';
import { frameToEvent } from './event';
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

  /** Outbound mode: FreeSWITCH connected to us with this socket. */
  constructor(socket: Socket) {
    super(socket);
  }

  protected override _onConnect(): void {
    const socket = this.socket!;
    this.framer = new EslFramer();
    this.stats = { malformedValues: 0, malformedEvents: 0, listenerErrors: 0 };
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
