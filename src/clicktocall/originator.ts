/**
 * The daemon's own long-lived connection to FreeSWITCH's INBOUND event socket (FS_ESL_*), for
 * click-to-call originates: authenticated, subscribed to BACKGROUND_JOB only (plain), and
 * reconnecting with backoff when it drops. One command in flight at a time is not needed:
 * command/replies come back in order (FIFO), and each `bgapi` carries a Job-UUID of our own that
 * FreeSWITCH uses for the job (mod_event_socket.c: `job-uuid` header) and repeats on its
 * BACKGROUND_JOB event, so the result is matched to the attempt without waiting for the reply.
 *
 * Wire format, as captured (test/fixtures/esl/inbound-originate-to-socket.log):
 *   FS:  Content-Type: auth/request                      us: auth <password>
 *   FS:  Reply-Text: +OK accepted                          us: event plain BACKGROUND_JOB
 *   FS:  Reply-Text: +OK event listener enabled plain      us: bgapi originate …\nJob-UUID: <ours>
 *   FS:  Reply-Text: +OK Job-UUID: <ours>                  … later, an event:
 *   FS:  Content-Type: text/event-plain; Event-Name: BACKGROUND_JOB, Job-UUID, and a body
 *        `+OK <channel uuid>\n` (answered) or `-ERR <CAUSE>\n` (USER_BUSY, NO_ANSWER, …).
 * Only BACKGROUND_JOB is subscribed: CHANNEL_* events without `myevents` would bring every
 * channel on the box (~6 KB each) to this socket.
 *
 * A BACKGROUND_JOB is sent once, to the connection that ran the job: if the connection drops
 * while a visitor rings, the result is lost (`lost`); the call itself still reaches the outbound
 * socket when the visitor answers, and the sweeper ends attempts nobody hears back about.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { Logger } from 'pino';
import { EslAuthError } from '../billing/freeswitch-inbound';
import { EslCommandError, EslTimeoutError, SocketClosedError } from '../esl/errors';
import { frameToEvent, type EslEvent } from '../esl/event';
import { EslFramer } from '../esl/parser';
import { assertHeaderValue } from '../esl/safe';

export type JobResult =
  | { kind: 'answered'; uuid: string }
  | { kind: 'failed'; cause: string }
  /** No BACKGROUND_JOB came: the connection dropped or the job outlived its timeout. */
  | { kind: 'lost' };

export interface OriginatorOptions {
  host: string;
  port: number;
  password: string;
  /** Bound on connect + auth and on each command/reply. */
  timeoutMs: number;
  /** Reconnect backoff: first wait, doubled up to the maximum. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  log: Logger;
  /** Told when the connection comes up (true) or goes down (false). */
  onState?: (connected: boolean) => void;
}

interface PendingReply {
  resolve(reply: EslEvent): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

interface PendingJob {
  resolve(result: JobResult): void;
  timer: NodeJS.Timeout;
}

/** FreeSWITCH's result text of an originate job → a result. */
export function parseJobBody(body: string): JobResult {
  const text = body.trim();
  const ok = /^\+OK ([A-Za-z0-9-]{1,64})$/.exec(text);
  if (ok) return { kind: 'answered', uuid: ok[1] };
  const err = /^-ERR ([A-Z_]{1,64})$/.exec(text);
  return { kind: 'failed', cause: err ? err[1] : 'NORMAL_TEMPORARY_FAILURE' };
}

export class Originator {
  private socket: net.Socket | null = null;
  private framer = new EslFramer();
  private state: 'idle' | 'auth' | 'subscribe' | 'ready' = 'idle';
  private replies: PendingReply[] = [];
  private readonly jobs = new Map<string, PendingJob>();
  private retryTimer: NodeJS.Timeout | null = null;
  private backoffMs: number;
  private stopped = false;
  private connectTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: OriginatorOptions) {
    this.backoffMs = options.reconnectMinMs ?? 500;
  }

  /** Connected, authenticated and subscribed: originates can go out. */
  get ready(): boolean {
    return this.state === 'ready';
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Resolves once ready (or rejects after `timeoutMs`). */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (this.ready) {
          clearInterval(poll);
          resolve();
        } else if (Date.now() - started > timeoutMs) {
          clearInterval(poll);
          reject(new EslTimeoutError('inbound event socket ready', timeoutMs));
        }
      }, 10);
    });
  }

  /**
   * Sends `bgapi <command>` with a Job-UUID of our own. Resolves when FreeSWITCH accepted the job
   * (`+OK Job-UUID`), with the job's eventual result; rejects when it is not connected
   * (SocketClosedError), refuses the command (EslCommandError) or does not reply (EslTimeoutError).
   */
  async bgapi(command: string, jobTimeoutMs: number): Promise<{ jobUuid: string; result: Promise<JobResult> }> {
    if (!this.ready || !this.socket) throw new SocketClosedError('bgapi (inbound event socket not connected)');
    const jobUuid = randomUUID();
    const result = new Promise<JobResult>((resolve) => {
      const timer = setTimeout(() => {
        this.jobs.delete(jobUuid);
        resolve({ kind: 'lost' });
      }, jobTimeoutMs);
      timer.unref();
      this.jobs.set(jobUuid, { resolve, timer });
    });
    try {
      const reply = await this.send(`bgapi ${assertHeaderValue('bgapi command', command)}\nJob-UUID: ${jobUuid}`);
      const text = reply.getHeader('Reply-Text') ?? '';
      if (!text.startsWith('+OK')) throw new EslCommandError(`bgapi ${command.split(' ', 1)[0]}`, text);
    } catch (err) {
      this.settleJob(jobUuid, { kind: 'lost' });
      throw err;
    }
    return { jobUuid, result };
  }

  /**
   * `api uuid_exists <uuid>` (mod_commands.c: the body is `true` or `false`): does FreeSWITCH still
   * have this channel? null when it cannot be asked (not connected, no reply, another answer).
   */
  async channelExists(uuid: string): Promise<boolean | null> {
    if (!this.ready || !this.socket || !/^[A-Za-z0-9-]{1,64}$/.test(uuid)) return null;
    try {
      const reply = await this.send(`api uuid_exists ${uuid}`);
      const body = reply.body.trim();
      return body === 'true' ? true : body === 'false' ? false : null;
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'inbound event socket: uuid_exists not answered');
      return null;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    if (socket && !socket.destroyed) {
      socket.end('exit\n\n');
      setTimeout(() => socket.destroy(), 1000).unref();
    }
    this.down(new SocketClosedError('stopped'));
  }

  // ---- connection

  private connect(): void {
    if (this.stopped) return;
    const { host, port, timeoutMs } = this.options;
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    this.socket = socket;
    this.framer = new EslFramer();
    this.state = 'auth';
    this.connectTimer = setTimeout(() => {
      this.options.log.warn({ host, port }, 'inbound event socket: no auth handshake in time; reconnecting');
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (err) => this.options.log.warn({ err: err.message, host, port }, 'inbound event socket error'));
    socket.once('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.down(new SocketClosedError('inbound event socket closed'));
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer) return;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.reconnectMaxMs ?? 10_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, wait);
    this.retryTimer.unref();
  }

  private down(err: Error): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    const wasReady = this.state === 'ready';
    this.state = 'idle';
    for (const r of this.replies.splice(0)) {
      clearTimeout(r.timer);
      r.reject(err);
    }
    // Their BACKGROUND_JOB can only come on the connection that ran them.
    for (const id of [...this.jobs.keys()]) this.settleJob(id, { kind: 'lost' });
    if (wasReady) this.options.onState?.(false);
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    for (const frame of this.framer.push(chunk)) {
      const { event } = frameToEvent(frame, this.framer);
      this.onMessage(socket, event);
    }
    if (this.framer.broken) {
      this.options.log.error({ err: this.framer.broken.message }, 'inbound event socket stream cannot be framed; reconnecting');
      socket.destroy();
    }
  }

  private onMessage(socket: net.Socket, event: EslEvent): void {
    const type = event.contentType;
    if (type === 'auth/request') {
      socket.write(`auth ${assertHeaderValue('inbound event socket password', this.options.password)}\n\n`);
      return;
    }
    if (type === 'api/response') {
      // The answer to an `api` command: in order with the command/replies (FIFO).
      const pending = this.replies.shift();
      if (pending) {
        clearTimeout(pending.timer);
        pending.resolve(event);
      }
      return;
    }
    if (type === 'command/reply') {
      const text = event.getHeader('Reply-Text') ?? '';
      if (this.state === 'auth') {
        if (!text.startsWith('+OK')) {
          this.options.log.error({ err: new EslAuthError(text).message }, 'FreeSWITCH refused the inbound event socket password');
          socket.destroy();
          return;
        }
        this.state = 'subscribe';
        socket.write('event plain BACKGROUND_JOB\n\n');
        return;
      }
      if (this.state === 'subscribe') {
        if (!text.startsWith('+OK')) {
          this.options.log.error({ reply: text }, 'FreeSWITCH refused the BACKGROUND_JOB subscription');
          socket.destroy();
          return;
        }
        if (this.connectTimer) clearTimeout(this.connectTimer);
        this.state = 'ready';
        this.backoffMs = this.options.reconnectMinMs ?? 500;
        this.options.log.info({ host: this.options.host, port: this.options.port }, 'inbound event socket ready for click-to-call originates');
        this.options.onState?.(true);
        return;
      }
      const pending = this.replies.shift();
      if (pending) {
        clearTimeout(pending.timer);
        pending.resolve(event);
      }
      return;
    }
    if (type === 'text/event-plain' && event.name === 'BACKGROUND_JOB') {
      const id = event.getHeader('Job-UUID');
      if (id) this.settleJob(id, parseJobBody(event.body));
      return;
    }
    if (type === 'text/disconnect-notice') socket.end();
  }

  private send(text: string): Promise<EslEvent> {
    const socket = this.socket!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.replies.indexOf(pending);
        if (i >= 0) this.replies.splice(i, 1);
        const err = new EslTimeoutError(text.split('\n', 1)[0].slice(0, 60), this.options.timeoutMs);
        reject(err);
        // A reply that never came would be matched to the next command: start over.
        socket.destroy();
        this.down(err);
      }, this.options.timeoutMs);
      const pending: PendingReply = { resolve, reject, timer };
      this.replies.push(pending);
      socket.write(`${text}\n\n`);
    });
  }

  private settleJob(id: string, result: JobResult): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.delete(id);
    clearTimeout(job.timer);
    job.resolve(result);
  }
}
