/**
 * The outbound event-socket listener: FreeSWITCH connects once per call. Each connection gets
 * TCP_NODELAY before anything is written (modesl-style small writes otherwise wait for delayed
 * ACKs: 89 ms vs 4.6 ms per call setup, FREESWITCH.md), a channel, a CallSession and, always, a CDR.
 */
import net from 'node:net';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { LiveCall } from '../billing/live-calls';
import type { CdrWriter } from '../cdr/writer';
import type { Settings } from '../config';
import { EslCallChannel } from '../esl/call-channel';
import { EslError } from '../esl/errors';
import type { Metrics } from '../metrics';
import type { PromptResolver } from '../prompts';
import type { ConfigStore } from '../snapshot/store';
import { CallSession } from './call-session';
import { QueueBook } from './context';

export interface CallServerDeps {
  settings: Settings;
  store: ConfigStore;
  cdrs: CdrWriter;
  metrics: Metrics;
  log: Logger;
  knex: Knex;
  prompts: PromptResolver;
  clock?: () => Date;
  random?: () => number;
}

export class CallServer {
  private readonly server: net.Server;
  private readonly live = new Set<EslCallChannel>();
  private readonly sessions = new Set<CallSession>();
  private readonly running = new Set<Promise<void>>();
  private draining = false;
  private readonly queues: QueueBook;

  constructor(private readonly deps: CallServerDeps) {
    this.queues = new QueueBook((total) => deps.metrics.queueWaiting.set(total));
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => deps.log.error({ err }, 'ESL listener error'));
  }

  async listen(): Promise<{ host: string; port: number }> {
    const { listenHost, listenPort, listenBacklog } = this.deps.settings.esl;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      // With Node's default backlog (511), 942-1,848 of 5,000 simultaneous connects never got our
      // `connect` within FreeSWITCH's 25 s (npm run bench:burst); the kernel caps it at somaxconn.
      this.server.listen({ port: listenPort, host: listenHost, backlog: listenBacklog }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as net.AddressInfo;
    this.deps.log.info({ host: address.address, port: address.port }, 'outbound event socket listening');
    return { host: address.address, port: address.port };
  }

  /** This daemon's calls in progress, for the live-call guard and the caps job. */
  liveCalls(): LiveCall[] {
    const out: LiveCall[] = [];
    for (const s of this.sessions) {
      const live = s.liveCall();
      if (live) out.push(live);
    }
    return out;
  }

  get activeCalls(): number {
    return this.running.size;
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.deps.metrics.eslConnections.inc();
    const done = this.handle(socket).finally(() => this.running.delete(done));
    this.running.add(done);
  }

  private async handle(socket: net.Socket): Promise<void> {
    const { settings, metrics, log } = this.deps;
    let channel: EslCallChannel;
    try {
      channel = await EslCallChannel.open(socket, {
        replyTimeoutMs: settings.esl.replyTimeoutMs,
        lingerS: settings.esl.lingerS,
        observe: (command, seconds, result) => {
          metrics.eslCommandSeconds.observe({ command: commandLabel(command), result }, seconds);
          if (result === 'timeout') metrics.eslErrors.inc({ kind: 'timeout' });
          else if (result === 'error') metrics.eslErrors.inc({ kind: 'command_failed' });
        },
      });
    } catch (err) {
      // No channel data means no call UUID: nothing to write a CDR for; FreeSWITCH's dialplan
      // goes on to its fallback when the socket application returns.
      metrics.eslErrors.inc({ kind: 'handshake' });
      log.warn({ err: err instanceof EslError ? err.message : err }, 'outbound socket handshake failed');
      socket.destroy();
      return;
    }
    this.live.add(channel);
    channel.conn.on('esl::protocol-error', (err: Error) => {
      metrics.eslErrors.inc({ kind: 'protocol' });
      log.warn({ call_uuid: channel.uuid, err: err.message }, 'ESL stream could not be framed; dropping this call socket');
    });
    channel.conn.on('esl::listener-error', (err: Error) => log.error({ call_uuid: channel.uuid, err }, 'ESL event handler threw'));
    metrics.activeCalls.inc();
    const session = new CallSession(channel, {
      settings,
      snapshot: this.deps.store.current,
      metrics,
      log,
      clock: this.deps.clock ?? (() => new Date()),
      random: this.deps.random ?? Math.random,
      knex: this.deps.knex,
      queues: this.queues,
      prompts: this.deps.prompts,
    });
    metrics.callsStarted.inc({ number_kind: kindOf(session, this.deps.store) });
    this.sessions.add(session);
    try {
      const cdr = await session.run();
      const stats = channel.conn.stats;
      if (stats.malformedValues > 0) metrics.eslErrors.inc({ kind: 'malformed_value' }, stats.malformedValues);
      if (stats.malformedEvents > 0) metrics.eslErrors.inc({ kind: 'malformed_event' }, stats.malformedEvents);
      metrics.callsEnded.inc({ outcome: cdr.outcome, number_kind: kindOf(session, this.deps.store) });
      metrics.tenantCallsEnded.inc({ tenant: metrics.tenantLabel(cdr.tenant_id), outcome: cdr.outcome });
      if (cdr.billsec > 0) {
        metrics.talkSeconds.inc({ number_kind: kindOf(session, this.deps.store) }, cdr.billsec);
        metrics.tenantTalkSeconds.inc({ tenant: metrics.tenantLabel(cdr.tenant_id) }, cdr.billsec);
      }
      await this.deps.cdrs.record(cdr).catch((err: unknown) => {
        // The spool is the last line of defence; if even it fails, the CDR is in the log.
        log.error({ err, cdr }, 'CDR could not be spooled');
      });
    } finally {
      metrics.activeCalls.dec();
      this.live.delete(channel);
      this.sessions.delete(session);
    }
  }

  /**
   * Stops taking calls, lets live ones finish for up to drainMs, then hangs up the rest and
   * waits (bounded) for their CDRs.
   */
  async stop(drainMs: number): Promise<void> {
    this.draining = true;
    // close() stops accepting at once; its callback would wait for every live call, so do not await it.
    this.server.close();
    const all = Promise.allSettled([...this.running]);
    const drained = await Promise.race([all.then(() => true), delay(drainMs).then(() => false)]);
    if (!drained) {
      this.deps.log.warn({ calls: this.live.size }, 'drain time over; hanging up remaining calls');
      await Promise.allSettled([...this.live].map((c) => c.hangupNow('SYSTEM_SHUTDOWN')));
      const ended = await Promise.race([all.then(() => true), delay(this.deps.settings.esl.replyTimeoutMs + 1000).then(() => false)]);
      if (!ended) for (const c of this.live) c.destroy();
      await all;
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

const KNOWN_COMMANDS = new Set(['connect', 'myevents', 'linger', 'nixevent', 'sendmsg', 'answer', 'multiset', 'playback', 'play_and_get_digits', 'bridge', 'record_session', 'hangup']);

/** Keeps the command label a small fixed set. */
function commandLabel(command: string): string {
  return KNOWN_COMMANDS.has(command) ? command : 'other';
}

function kindOf(session: CallSession, store: ConfigStore): string {
  const kind = session.kindLabel;
  if (kind !== 'unknown') return kind;
  // Before identification the session does not know yet; look the number up the same way.
  const digits = session.dialed.replace(/[^0-9]/g, '');
  return store.current.accessNumbers.get(digits)?.kind ?? 'unknown';
}
