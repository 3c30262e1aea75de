/**
 * The outbound event-socket listener: FreeSWITCH connects once per call. Each connection gets
 * TCP_NODELAY before anything is written (modesl-style small writes otherwise wait for delayed
 * ACKs: 89 ms vs 4.6 ms per call setup, FREESWITCH.md), a channel, a CallSession and, always, a CDR.
 *
 * Calls the daemon lets go of on purpose, untouched: a connection that arrives while the daemon
 * drains (SIGTERM), or before any configuration is in force. A configuration routed from the
 * on-disk cache (the daemon started while the database was down, snapshot/store.ts) is in force:
 * those calls are served. The daemon opens this listener only after the first load, so the
 * second case guards a server started on its own. Such a call gets `connect` (the
 * socket application waits for it: freeswitch/README.md), nothing else — no hotline_handled, no
 * prompt — and the socket is closed without a hangup, so FreeSWITCH's fallback
 * (hotline_after_socket.xml: second daemon, backup destination, announcement) takes it. No CDR:
 * whoever serves it writes one.
 *
 * A click-to-call visitor leg (src/clicktocall/leg.ts, recognised here from its channel data) is
 * never handed back while draining: FreeSWITCH originated it with `&socket(…)` as its only
 * application, so there is no dialplan after the socket — a release would hang up a visitor the
 * platform itself just called, without a CDR. It is served like the calls already in progress
 * (and cut at the end of the drain time like them).
 */
import net from 'node:net';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { LiveCall } from '../billing/live-calls';
import { chargedPeriodStarts, costOf } from '../billing/usage';
import type { CallJournal } from '../cdr/journal';
import type { CdrRecord } from '../cdr/record';
import type { CdrWriter } from '../cdr/writer';
import type { Settings } from '../config';
import { openSqliteReader, type SqliteReader } from '../db/sqlite-reader';
import { EslCallChannel, type ChannelOptions } from '../esl/call-channel';
import { deferredInput, type DeferredInputObserver } from '../esl/deferred-input';
import { EslError } from '../esl/errors';
import type { Metrics } from '../metrics';
import type { PromptResolver } from '../prompts';
import { PromptFileStatus, promptFilesInUse, replacedInCalls, seesPromptFiles } from '../prompts/file-check';
import type { ConfigStore } from '../snapshot/store';
import type { ConfigSnapshot } from '../snapshot/types';
import { liveTenantZone } from '../snapshot/zones';
import { legOf, type ClickToCallCalls } from '../clicktocall/session';
import { AcceptHandlesError, closeCopy, copyListeningHandle } from './accept-handles';
import { AnsweredCallersFeed } from './answered-callers-feed';
import { CallerMemory } from './caller-memory';
import { CallSession } from './call-session';
import { QueueBook } from './context';
import { SpendGroups, type GuardTimers } from './spend-guard';

export interface CallServerDeps {
  settings: Settings;
  /** The configuration in force and its loads (the daemon's ConfigStore; the warm-up's fixed snapshot). */
  store: Pick<ConfigStore, 'current' | 'onLoad'>;
  /** Where each call's CDR is spooled (the warm-up's: a writer never started, in a folder of its own). */
  cdrs: CdrWriter;
  metrics: Metrics;
  log: Logger;
  knex: Knex;
  prompts: PromptResolver;
  clock?: () => Date;
  random?: () => number;
  /** Timers of each call's spend guard (tests). */
  guardTimers?: GuardTimers;
  /** Click-to-call request state, for visitor legs (src/clicktocall/session.ts). */
  clickToCall?: ClickToCallCalls;
  /** Where calls in progress are kept for the CDRs of a daemon that stops outright (src/cdr/journal.ts). */
  journal?: CallJournal;
  /**
   * A server of the start-up warm-up (src/warmup/warm-up.ts): it listens on a loopback port of its
   * own (any free one, bound by this process even in a cluster worker, one accept handle) and
   * starts nothing that reads the database or the prompt folder: no caller-memory index, no
   * SQLite reader, no prompt-file checks. The settings are the daemon's own object, so that the
   * code the warm-up compiles sees what real calls see.
   */
  warmUp?: boolean;
}

export class CallServer {
  private readonly server: net.Server;
  /** More handles of the same listening socket, each accepting one connection a turn (accept-handles.ts). */
  private readonly extraServers: net.Server[] = [];
  private readonly live = new Set<EslCallChannel>();
  private readonly sessions = new Set<CallSession>();
  private readonly running = new Set<Promise<void>>();
  private draining = false;
  private readonly queues: QueueBook;
  /**
   * Prepaid and capped tenants' answered calls here, a group a tenant, planned together
   * (spend-guard.ts); a call that ended counts against the money read until its CDR has charged it.
   */
  readonly spendGroups: SpendGroups;
  /** Caller memory lookups of every call (caller-memory.ts): batched on MariaDB, on the reader on an SQLite file. */
  readonly callerMemory: CallerMemory;
  /**
   * On an SQLite file, the connection caller memory reads on (db/sqlite-reader.ts), opened as this
   * server is built; null: through knex. A file that cannot be opened then (a daemon that started
   * from its configuration cache, the database unreadable) leaves caller memory on knex's
   * connection until the next start: slower, not wrong.
   */
  private readonly callerMemoryReader: SqliteReader | null;
  /** ESL_BRIDGED_INPUT_BUDGET_MS > 0: a bridged call's input waits behind setups (deferred-input.ts). */
  private readonly deferBridgedInput: boolean;
  /** Every call's channel options: the same for each, made once. */
  private readonly channelOptions: ChannelOptions;
  /** The sessions' clock: deps.clock, or the wall clock. */
  private readonly clock: () => Date;
  /** The callers answered recently, kept in memory (answered-callers-feed.ts); null (CALLER_MEMORY_INDEX_HOURS=0, the warm-up): every lookup asks. */
  readonly answeredCallers: AnsweredCallersFeed | null;
  /** The latest check of the prompt files; null when the daemon cannot see FreeSWITCH's files. */
  readonly promptFiles: PromptFileStatus | null;

  constructor(private readonly deps: CallServerDeps) {
    this.queues = new QueueBook((total) => deps.metrics.queueWaiting.set(total));
    this.deferBridgedInput = deps.settings.esl.bridgedInputBudgetMs > 0;
    this.clock = deps.clock ?? (() => new Date());
    const { esl } = deps.settings;
    const { metrics } = deps;
    this.channelOptions = {
      replyTimeoutMs: esl.replyTimeoutMs,
      appTimeoutMarginMs: esl.appTimeoutMarginMs,
      lingerS: esl.lingerS,
      maxFrameBytes: esl.maxFrameBytes,
      deferBridgedInput: this.deferBridgedInput,
      observe: (command, seconds, result) => {
        metrics.observeEslCommand(commandLabel(command), result, seconds);
        if (result === 'timeout') metrics.eslErrors.inc({ kind: 'timeout' });
        else if (result === 'error') metrics.eslErrors.inc({ kind: 'command_failed' });
      },
    };
    this.spendGroups = new SpendGroups(
      () => {
        const since = deps.cdrs.unchargedSince();
        return since === null ? 0 : performance.now() - since;
      },
      // Charged, when the writer gets to them, to the periods of the tenant's zone then (usage.ts).
      (key) => {
        const tenantId = Number(key);
        const zone = liveTenantZone(deps.store.current.tenants, tenantId);
        return deps.cdrs.uncharged(tenantId).map((cdr) => ({ cost: cdr.cost, charged: chargedPeriodStarts(new Date(cdr.startedAtMs), zone), since: cdr.since }));
      },
    );
    this.callerMemoryReader = deps.warmUp ? null : callerMemoryReader(deps.settings, deps.log);
    this.callerMemory = new CallerMemory(deps.knex, { timeoutMs: deps.settings.admission.queryTimeoutMs, reader: this.callerMemoryReader });
    this.answeredCallers = deps.warmUp ? null : answeredCallersFeed(deps.knex, deps.settings, deps.log);
    const feed = this.answeredCallers;
    if (feed) deps.metrics.callerMemoryIndexReadAgeMs = () => feed.readAgeMs();
    this.server = this.listener();
    this.promptFiles = !deps.warmUp && seesPromptFiles(deps.settings) ? this.watchPromptFiles() : null;
  }

  /**
   * Checks the prompt files at start-up (the system prompts, before any configuration) and after
   * every configuration load — from the database or from the cache, and again when the store
   * switches from the cache to the database; each missing or unreadable file is logged once.
   */
  private watchPromptFiles(): PromptFileStatus {
    const { settings, log, metrics, store } = this.deps;
    const status = new PromptFileStatus(
      (p) =>
        replacedInCalls(p.problem)
          ? log.warn({ file: p.path, problem: p.problem, used_by: p.usedBy }, 'prompt file missing: calls get a system prompt or a tone instead')
          : log.warn({ file: p.path, problem: p.problem, used_by: p.usedBy }, 'prompt file not usable as this daemon sees it (FreeSWITCH may still play it): calls still play it'),
      (counts) => metrics.setPromptFileProblems(counts),
    );
    const check = (snapshot: ConfigSnapshot | null): void => {
      void status.refresh(() => promptFilesInUse(settings, snapshot)).catch((err: unknown) => log.error({ err }, 'prompt file check failed'));
    };
    // onLoad calls back at once when a configuration is already in force; check the system
    // prompts alone only when none is.
    if (this.snapshotOrNull() === null) check(null);
    store.onLoad((snapshot) => check(snapshot));
    return status;
  }

  /** The configuration in force, or null before the first load. */
  private snapshotOrNull(): ConfigSnapshot | null {
    try {
      return this.deps.store.current;
    } catch {
      return null;
    }
  }

  /** This daemon's metrics of the process's deferred input; one that throws is logged and no longer told. */
  private readonly deferredInputMetrics: DeferredInputObserver = {
    turn: (longestWaitMs, overdueItems) => {
      try {
        this.deps.metrics.deferredInput.turn(longestWaitMs, overdueItems);
      } catch (err) {
        deferredInput.unwatch(this.deferredInputMetrics);
        this.deps.log.error({ err }, 'deferred input metrics failed; no longer reported until a restart');
      }
    },
  };

  async listen(): Promise<{ host: string; port: number }> {
    const { listenBacklog } = this.deps.settings.esl;
    // The warm-up's port is bound by this process (exclusive): in cluster workers Node shares a
    // port 0 between the workers' first such listen calls, and the two warm-ups would be handed
    // each other's calls.
    const [listenHost, listenPort, exclusive] = this.deps.warmUp ? ['127.0.0.1', 0, true] : [this.deps.settings.esl.listenHost, this.deps.settings.esl.listenPort, false];
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      // With Node's default backlog (511), 942-1,848 of 5,000 simultaneous connects never got our
      // `connect` within FreeSWITCH's 25 s (npm run bench:burst); the kernel caps it at somaxconn.
      this.server.listen({ port: listenPort, host: listenHost, backlog: listenBacklog, exclusive }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    // 0 in a cluster worker under round-robin: it holds no socket, the primary accepts for it.
    const acceptHandles = 1 + (await this.addAcceptHandles(this.deps.warmUp ? 0 : this.deps.settings.esl.acceptHandles - 1));
    this.answeredCallers?.start();
    // The process has one deferred-input queue; the daemon's metrics report it, the warm-up's do not.
    if (this.deferBridgedInput) deferredInput.setBudget(this, this.deps.settings.esl.bridgedInputBudgetMs);
    if (!this.deps.warmUp) deferredInput.watch(this.deferredInputMetrics);
    const address = this.server.address() as net.AddressInfo;
    this.deps.log.info({ accept_handles: acceptHandles, host: address.address, port: address.port }, 'outbound event socket listening');
    return { host: address.address, port: address.port };
  }

  private listener(): net.Server {
    const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    server.on('error', (err) => this.deps.log.error({ err }, 'ESL listener error'));
    return server;
  }

  /**
   * `count` more handles on the listening socket (ESL_ACCEPT_HANDLES - 1); returns how many were
   * added, -1 when this process owns no socket (a round-robin cluster worker). When they cannot be
   * had the daemon goes on with the handles it has and a warning: calls are served either way, new
   * ones just wait longer for `connect` under load.
   */
  private async addAcceptHandles(count: number): Promise<number> {
    if (count <= 0) return 0;
    let copies: object[];
    try {
      copies = await copyListeningHandle(this.server, count, { timeoutMs: ACCEPT_HANDLES_TIMEOUT_MS });
    } catch (err) {
      // A cluster worker under round-robin scheduling owns no socket: the primary accepts for it.
      if (err instanceof AcceptHandlesError && err.code === 'NOT_A_SOCKET') return -1;
      this.deps.log.warn({ err }, 'could not add accept handles to the ESL listener; accepting one connection a turn');
      return 0;
    }
    for (const [i, handle] of copies.entries()) {
      const server = this.listener();
      try {
        // listen() on a copy calls listen(2) on the one socket again: without the backlog (Node.js
        // takes it only as an argument beside a handle) it would shrink to Node's default, 511.
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(handle, this.deps.settings.esl.listenBacklog, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        server.close();
        for (const rest of copies.slice(i + 1)) closeCopy(rest);
        this.deps.log.warn({ err, accept_handles: 1 + this.extraServers.length }, 'an accept handle could not listen; going on with those that do');
        break;
      }
      this.extraServers.push(server);
    }
    return this.extraServers.length;
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
    this.deps.metrics.eslConnections.inc();
    const done = this.handle(socket).finally(() => this.running.delete(done));
    this.running.add(done);
  }

  private async handle(socket: net.Socket): Promise<void> {
    const { settings, metrics, log } = this.deps;
    let channel: EslCallChannel;
    try {
      channel = await EslCallChannel.open(socket, this.channelOptions);
    } catch (err) {
      // No channel data means no call UUID: nothing to write a CDR for; FreeSWITCH's dialplan
      // goes on to its fallback when the socket application returns.
      metrics.eslErrors.inc({ kind: 'handshake' });
      log.warn({ err: err instanceof EslError ? err.message : err }, 'outbound socket handshake failed');
      socket.destroy();
      return;
    }
    const snapshot = this.snapshotOrNull();
    const leg = legOf(channel.data, log, channel.uuid);
    if ((this.draining && !leg) || !snapshot) {
      await this.release(channel, snapshot ? 'draining' : 'no_configuration');
      return;
    }
    this.live.add(channel);
    channel.conn.on('esl::listener-error', (err: Error) => log.error({ call_uuid: channel.uuid, err }, 'ESL event handler threw'));
    metrics.activeCalls.inc();
    const session = new CallSession(channel, {
      settings,
      snapshot,
      metrics,
      log,
      clock: this.clock,
      random: this.deps.random ?? Math.random,
      knex: this.deps.knex,
      callerMemory: this.callerMemory.lookup,
      callerMemoryInTurn: this.callerMemory.answersInTurn,
      callerMemoryIndex: this.answeredCallers,
      queues: this.queues,
      prompts: this.deps.prompts,
      promptFiles: this.promptFiles,
      guardTimers: this.deps.guardTimers,
      spendGroups: this.spendGroups,
      clickToCall: this.deps.clickToCall,
      journal: this.deps.journal,
    }, leg);
    metrics.callStarted(session.numberKind);
    this.sessions.add(session);
    let unspooled = false;
    let noCdr = true;
    try {
      const cdr = await session.run();
      // A click-to-call leg answered after its attempt was given up: killed unserved, the
      // attempt's CDR already written by the dialer. Counted ended as it was counted started
      // (started minus ended is what dashboards read as calls in progress): a failed call.
      if (cdr === null) {
        metrics.callEnded('failed', session.numberKind);
        return;
      }
      // The CDR first: nothing that follows (metrics, logs) may keep it from the spool. A spool
      // that refuses it (a full disk) leaves it held in the writer's memory until it takes it
      // (CdrWriter.record): the call ends now, but stays in the journal until then, so a daemon
      // killed meanwhile still makes its CDR from the journal at the next start.
      const notSpooled = (err: unknown): void => log.error({ err, cdr }, 'CDR could not be spooled');
      // One instant for the writer and the spend guard: the tenant's other calls count this one
      // until the writer has charged every CDR handed in by then (CdrWriter.unchargedSince); until
      // the writer has it, against every read.
      const handedAt = performance.now();
      const recorded = await this.deps.cdrs.record(cdr, { kept: () => session.journalEnded(), failed: notSpooled }, handedAt).catch((err: unknown) => {
        // Held no more (past the most held, or the writer stopping): the CDR is in the log, and the call in the journal.
        notSpooled(err);
        return 'failed' as const;
      });
      // A CDR the writer did not take is charged at the next start (from the journal): its call
      // counts against every read here until then.
      noCdr = false;
      if (recorded !== 'failed') session.cdrHandedIn(handedAt, chargeOf(cdr));
      // At once: a daemon stopped from here on must not make the call a second CDR from the journal.
      if (recorded === 'spooled') session.journalEnded();
      else unspooled = true;
      this.answeredCallers?.noteCdr(cdr);
      await session.finishRequest(cdr);
      const failure = channel.failure;
      if (failure) {
        // Counted once the call is over: the stream may have broken in the read that carried the connect reply.
        metrics.eslErrors.inc({ kind: 'protocol' });
        log.warn({ call_uuid: channel.uuid, code: failure.code, err: failure.message }, 'ESL stream refused or could not be framed; this call\'s socket was dropped');
      }
      if (channel.foreignEvents > 0) log.info({ call_uuid: channel.uuid, events: channel.foreignEvents }, 'events of other channels on this call\'s socket ignored');
      const stats = channel.conn.stats;
      if (stats.malformedValues > 0) metrics.eslErrors.inc({ kind: 'malformed_value' }, stats.malformedValues);
      if (stats.malformedEvents > 0) metrics.eslErrors.inc({ kind: 'malformed_event' }, stats.malformedEvents);
      metrics.callEnded(cdr.outcome, session.numberKind, cdr);
    } finally {
      // Whatever happened above (a given-up click-to-call leg has no CDR): nothing left to recover,
      // but for a CDR the spool never took, which the journal keeps for the next start.
      if (!unspooled) session.journalEnded();
      // No CDR (a given-up click-to-call leg, which has no spend guard today): a guard's peers
      // must not wait for one for good. A no-op once handed in, and without a guard.
      if (noCdr) session.cdrHandedIn(performance.now());
      metrics.activeCalls.dec();
      this.live.delete(channel);
      this.sessions.delete(session);
    }
  }

  /** Hands a call we did not touch back to FreeSWITCH's fallback (see the header). */
  private async release(channel: EslCallChannel, reason: 'draining' | 'no_configuration'): Promise<void> {
    this.deps.metrics.callsReleased.inc({ reason });
    this.deps.log.warn({ call_uuid: channel.uuid, reason }, 'call handed back to FreeSWITCH\'s fallback');
    await channel.release();
  }

  /**
   * Stops taking calls, lets live ones finish for up to drainMs, then cuts the rest at once
   * (`api uuid_kill … SYSTEM_SHUTDOWN`: whatever plays or rings) and waits (bounded) for their CDRs.
   */
  async stop(drainMs: number): Promise<void> {
    this.draining = true;
    const feedStopped = this.answeredCallers?.stop();
    // close() stops accepting at once; its callback would wait for every live call, so do not await it.
    for (const server of [this.server, ...this.extraServers]) server.close();
    const all = Promise.allSettled([...this.running]);
    const drained = await Promise.race([all.then(() => true), delay(drainMs).then(() => false)]);
    if (!drained) {
      this.deps.log.warn({ calls: this.live.size }, 'drain time over; cutting remaining calls');
      await Promise.allSettled([...this.live].map((c) => c.kill('SYSTEM_SHUTDOWN')));
      const ended = await Promise.race([all.then(() => true), delay(this.deps.settings.esl.replyTimeoutMs + 1000).then(() => false)]);
      if (!ended) for (const c of this.live) c.destroy();
      await all;
    }
    await feedStopped;
    deferredInput.unwatch(this.deferredInputMetrics);
    deferredInput.clearBudget(this);
    this.closeReader();
  }

  /**
   * Closes caller memory's SQLite connection (after the last call, or when the daemon's start
   * failed after this server was built). A lookup asked later fails, and its call hunts in the
   * normal order. Safe to call twice.
   */
  closeReader(): void {
    this.callerMemoryReader?.close();
  }
}

/**
 * Caller memory's own read-only connection to an SQLite file. One that cannot be opened costs
 * speed, not calls: the lookups go through knex's connection, as on `sqlite::memory:`.
 */
function callerMemoryReader(settings: Settings, log: Logger): SqliteReader | null {
  try {
    return openSqliteReader(settings.database.url);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'caller memory cannot open its own connection to the SQLite file; it reads through the shared one');
    return null;
  }
}

/** The answered-callers feed, unless CALLER_MEMORY_INDEX_HOURS is 0. */
function answeredCallersFeed(knex: Knex, settings: Settings, log: Logger): AnsweredCallersFeed | null {
  const { indexHours, indexBitsPerHour, indexPollMs } = settings.callerMemory;
  if (indexHours === 0) return null;
  return new AnsweredCallersFeed(knex, { hours: indexHours, bitsPerHour: indexBitsPerHour, pollMs: indexPollMs }, log.child({ component: 'answered-callers' }));
}

/** Bound on getting the extra accept handles at start-up (a child process started and answered). */
const ACCEPT_HANDLES_TIMEOUT_MS = 10_000;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

const KNOWN_COMMANDS = new Set([
  'connect', 'myevents', 'linger', 'nixevent', 'sendmsg', 'answer', 'set', 'unset', 'multiset', 'playback', 'speak',
  'play_and_get_digits', 'bridge', 'record_session', 'record', 'mkdir', 'hangup', 'uuid_kill', 'uuid_broadcast', 'uuid_displace',
]);

/** Keeps the command label a small fixed set. */
function commandLabel(command: string): string {
  return KNOWN_COMMANDS.has(command) ? command : 'other';
}

/** What a CDR charges, as the writer will (0 when its cost does not read: the guard's own count stands). */
function chargeOf(cdr: CdrRecord): number {
  try {
    return costOf(cdr);
  } catch {
    return 0;
  }
}
