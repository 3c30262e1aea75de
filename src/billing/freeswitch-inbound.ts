/**
 * The FreeSWITCH *inbound* event socket (port 8021), which the cron side uses to warn and cut
 * live calls whose money ran out: `api uuid_broadcast <uuid> <file> both` or `api uuid_displace
 * <uuid> start <file> 0 mux` (warning.ts decides), then `api uuid_kill <uuid> <cause>`.
 *
 * modesl's inbound Connection(host, port, password) does the connecting, the auth/request
 * routing and the FIFO matching of api/response to commands. We replace what FREESWITCH.md says
 * fails in production, as src/esl/connection.ts does for the outbound socket:
 *  - its parser (quadratic, throws on a bad %-sequence) → our EslFramer;
 *  - its writes (one per header line, unescaped) → one write per command, CR/LF refused;
 *  - its subscription after auth (`event json BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE`, which
 *    would stream every channel's completions on the box to us) → none: we only use `api`;
 *  - its auth check (a header its own parser invents) → Reply-Text `+OK accepted`.
 * Everything has a timeout; a reply that never comes closes the connection (FIFO matching is
 * lost after a missing reply).
 *
 * Wire format, as captured from FreeSWITCH 1.11 (test/fixtures/esl/inbound-auth-api-bgapi.log):
 *   FS:  Content-Type: auth/request\n\n
 *   us:  auth <password>\n\n
 *   FS:  Content-Type: command/reply\nReply-Text: +OK accepted\n\n       (or -ERR invalid, then
 *        a text/disconnect-notice and close)
 *   us:  api uuid_kill <uuid> <cause>\n\n
 *   FS:  Content-Type: api/response\nContent-Length: 22\n\n-ERR No such channel!\n   (or +OK\n)
 */
import { Connection } from 'modesl';
import { EslCommandError, EslError, EslTimeoutError, SocketClosedError, UnsafeValueError } from '../esl/errors';
import { frameToEvent, type EslEvent } from '../esl/event';
import { DEFAULT_INBOUND_MAX_FRAME_BYTES, EslFramer } from '../esl/parser';
import { assertHeaderValue, identifier, promptPath } from '../esl/safe';
import { displaceCommand } from '../esl/channel';

export interface InboundOptions {
  host: string;
  port: number;
  password: string;
  /** Bound on connecting + authenticating, and on each api reply. */
  timeoutMs: number;
  /** Largest message accepted (FS_ESL_MAX_FRAME_BYTES); default 64 MiB. */
  maxFrameBytes?: number;
}

/** Wrong password (`-ERR invalid`). */
export class EslAuthError extends EslError {
  constructor(readonly replyText: string) {
    super('ESL_AUTH_FAILED', `FreeSWITCH refused the inbound event socket password: ${replyText}`);
  }
}


class InboundConnection extends Connection {
  declare framer: EslFramer;
  /** Set right after construction: modesl calls _onConnect once the TCP connect completes. */
  maxFrameBytes = DEFAULT_INBOUND_MAX_FRAME_BYTES;

  protected override _onConnect(): void {
    this.framer = new EslFramer(this.maxFrameBytes);
    const socket = this.socket!;
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.framer.push(chunk)) {
        const { event } = frameToEvent(frame, this.framer);
        try {
          this._onEvent(event, frame.headers, event.body);
        } catch (err) {
          this.emit('hotline::listener-error', err);
        }
      }
      if (this.framer.broken) socket.destroy(this.framer.broken);
    });
    this.connecting = false;
    this.emit('esl::connect');
    this.on('esl::event::auth::request', () => this.auth());
  }

  /** Our auth: the reply's Reply-Text says whether the password was accepted. */
  override auth(): void {
    this.cmdCallbackQueue.push(((reply: EslEvent) => {
      const text = reply.getHeader('Reply-Text') ?? '';
      this.authed = text.startsWith('+OK');
      this.emit('hotline::auth', this.authed ? null : new EslAuthError(text));
    }));
    this.write(`auth ${this.password}`);
  }

  /** Inbound jobs use `api` only: no event subscription at all. */
  override subscribe(_events: string[], cb?: () => void): void {
    if (cb) process.nextTick(cb);
  }

  override send(command: string): void {
    this.write(command);
  }

  /** One command in one write(); a CR/LF anywhere would start another command. */
  write(command: string): void {
    const socket = this.socket;
    if (!socket || socket.destroyed || !socket.writable) throw new SocketClosedError(command.split(' ', 1)[0] ?? command);
    socket.write(`${assertHeaderValue('command', command)}\n\n`);
  }
}

export class FreeSwitchInbound {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly conn: InboundConnection,
    private readonly timeoutMs: number,
  ) {
    conn.socket?.once('close', () => {
      this.closed = true;
    });
  }

  /** Connects and authenticates; rejects with EslAuthError, EslTimeoutError or the socket error. */
  static connect(options: InboundOptions): Promise<FreeSwitchInbound> {
    assertHeaderValue('inbound event socket password', options.password);
    return new Promise((resolve, reject) => {
      const conn = new InboundConnection(options.host, options.port, options.password);
      if (options.maxFrameBytes !== undefined) conn.maxFrameBytes = options.maxFrameBytes;
      let settled = false;
      const settle = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          conn.socket?.destroy();
          reject(err);
        } else {
          resolve(new FreeSwitchInbound(conn, options.timeoutMs));
        }
      };
      const timer = setTimeout(() => settle(new EslTimeoutError(`connect ${options.host}:${options.port} and auth`, options.timeoutMs)), options.timeoutMs);
      // modesl re-emits socket errors as 'error'; without a listener EventEmitter2 would throw.
      conn.on('error', ((err: Error) => settle(err)));
      conn.on('hotline::auth', ((err: Error | null) => settle(err)));
      conn.socket?.once('close', () => settle(new SocketClosedError('auth')));
    });
  }

  /** Runs one API command; resolves with FreeSWITCH's text (e.g. "+OK\n"). One at a time. */
  api(command: string): Promise<string> {
    const run = this.queue.then(() => this.apiNow(command));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private apiNow(command: string): Promise<string> {
    if (this.closed) return Promise.reject(new SocketClosedError(`api ${command}`));
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null, body?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.conn.socket?.off('close', onClose);
        if (err) reject(err);
        else resolve(body ?? '');
      };
      const onClose = (): void => settle(new SocketClosedError(`api ${command}`));
      const timer = setTimeout(() => {
        settle(new EslTimeoutError(`api ${command}`, this.timeoutMs));
        // The reply may still come and would be matched to the next command: start over.
        this.close();
      }, this.timeoutMs);
      this.conn.socket?.once('close', onClose);
      this.conn.apiCallbackQueue.push(((event: EslEvent) => settle(null, event.body)));
      try {
        this.conn.write(`api ${command}`);
      } catch (err) {
        this.conn.apiCallbackQueue.pop();
        settle(err as Error);
      }
    });
  }

  /**
   * Hangs a call up. 'killed' on +OK; 'gone' when FreeSWITCH no longer has the channel
   * (`-ERR No such channel!`: it ended meanwhile). Other -ERR replies reject.
   */
  async killCall(uuid: string, cause: string): Promise<'killed' | 'gone'> {
    const reply = await this.api(`uuid_kill ${callUuid(uuid)} ${identifier('hangup cause', cause)}`);
    if (reply.startsWith('+OK')) return 'killed';
    if (/no such channel/i.test(reply)) return 'gone';
    throw new EslCommandError(`api uuid_kill ${uuid}`, reply.trim());
  }

  /** Plays a file into a live call (both legs by default). True on +OK. */
  async broadcast(uuid: string, file: string, legs: 'aleg' | 'bleg' | 'both' = 'both'): Promise<boolean> {
    const reply = await this.api(`uuid_broadcast ${callUuid(uuid)} ${promptPath('warning prompt', file)} ${legs}`);
    return reply.startsWith('+OK');
  }

  /** `uuid_displace <uuid> start <file> 0 mux` (src/billing/warning.ts); -ERR rejects with EslCommandError. */
  async displace(uuid: string, file: string): Promise<void> {
    const command = displaceCommand(callUuid(uuid), promptPath('warning prompt', file));
    const reply = await this.api(command);
    if (!reply.startsWith('+OK')) throw new EslCommandError(`api ${command}`, reply.trim());
  }

  /** Says goodbye (`exit`) and closes; safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const socket = this.conn.socket;
    try {
      socket?.end('exit\n\n');
    } catch {
      socket?.destroy();
    }
    setTimeout(() => socket?.destroy(), 1000).unref();
  }
}

/** A call UUID we put into an api command: FreeSWITCH's own form, nothing else. */
export function callUuid(uuid: string): string {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(uuid)) throw new UnsafeValueError('call uuid', `not a call UUID: ${JSON.stringify(uuid.slice(0, 70))}`);
  return uuid;
}
