/**
 * One call's outbound event-socket connection, as typed async operations (the CallChannel the
 * call's steps use, plus what the session needs: the handshake, the handled flag, the end).
 *
 * Every operation is a command written in one piece, matched to its own reply (FIFO, replies and
 * api responses alike: FreeSWITCH answers the commands of one socket in order) and, for
 * applications, to its own CHANNEL_EXECUTE_COMPLETE through the Event-UUID we send, which
 * FreeSWITCH echoes as Application-UUID. Everything has a timeout. A hang-up rejects what can no
 * longer complete with CallHungUpError; a dropped socket rejects everything with
 * SocketClosedError. Nothing is left registered after the call.
 */
import type { Socket } from 'node:net';
import { posix } from 'node:path';
import { displaceCommand, recordEnd, type BridgeOutcome, type CallChannel, type DigitCollection, type DigitResult, type PlayEnd, type PlayOptions, type RecordEnd } from './channel';
import { AppRun, CommandGroup, CommandReply, nextEventUuid, OpeningCommands, PendingApps, seconds, type Observe } from './command-waiters';
import { EslConnection } from './connection';
import { CallHungUpError, EslCommandError, SocketClosedError, UnsafeValueError, type EslError } from './errors';
import type { EslEvent } from './event';
import { dtmfDigits, identifier, isTeletone, mediaPath, plainVariableValue, promptPath } from './safe';
import { timerDelay } from '../timer-limit';

/**
 * Events a call controller never reads; `nixevent` stops FreeSWITCH sending them (~6 KB each).
 * What stays: CHANNEL_EXECUTE_COMPLETE (completions), CHANNEL_ANSWER (answer time, spend guard),
 * CHANNEL_HANGUP, CHANNEL_HANGUP_COMPLETE (the CDR's facts) and CHANNEL_BRIDGE when someone
 * listens for it (BRIDGE_EVENTS).
 */
export const UNUSED_EVENTS = [
  'CHANNEL_CREATE', 'CHANNEL_DESTROY', 'CHANNEL_STATE', 'CHANNEL_EXECUTE', 'CHANNEL_OUTGOING',
  'CHANNEL_PARK', 'CHANNEL_UNPARK', 'CHANNEL_UNBRIDGE', 'CHANNEL_APPLICATION', 'TALK', 'NOTALK',
  'DETECTED_SPEECH', 'DTMF', 'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA',
] as const;

/**
 * CHANNEL_BRIDGE says a phone answered while the bridge application still runs: only a
 * click-to-call request follows it (onBridge). A call with no bridge listener when it claims the
 * socket nixes it too (7-9 KB a call).
 */
export const BRIDGE_EVENTS = ['CHANNEL_BRIDGE'] as const;

/** The `nixevent` of a call that reads CHANNEL_BRIDGE, and of one that does not: the same line for every call. */
const NIXEVENT_UNUSED = `nixevent ${UNUSED_EVENTS.join(' ')}`;
const NIXEVENT_ALL_UNREAD = `nixevent ${[...UNUSED_EVENTS, ...BRIDGE_EVENTS].join(' ')}`;

export interface ChannelOptions {
  replyTimeoutMs: number;
  /** Added to every application's own bound before its completion is given up on (ESL_APP_TIMEOUT_MARGIN_MS; default 0). */
  appTimeoutMarginMs?: number;
  lingerS: number;
  /** Largest frame accepted from FreeSWITCH (ESL_MAX_FRAME_BYTES); default 1 MiB. */
  maxFrameBytes?: number;
  /**
   * From its first bridge on, the call's input waits behind calls still being set up
   * (deferred-input.ts; ESL_BRIDGED_INPUT_BUDGET_MS > 0). Default true.
   */
  deferBridgedInput?: boolean;
  /** Called with the command name and seconds it took (replies and completions). */
  observe?: Observe;
}

/**
 * The channel variable freeswitch/dialplan/hotline_after_socket.xml reads when the socket ends
 * with the caller still up: true means "the daemon served this caller: hang up", unset means
 * "nobody took it: second daemon, backup, announcement".
 */
export const HANDLED_VARIABLE = 'hotline_handled';

export class EslCallChannel implements CallChannel {
  readonly uuid: string;
  /** The CHANNEL_DATA headers FreeSWITCH sent in reply to `connect`. */
  readonly data: Readonly<Record<string, string>>;
  hungUp = false;
  hangupCause: string | null = null;
  /** Microsecond epoch stamps as FreeSWITCH reports them. */
  answeredAtUs: number | null = null;
  /** The final CHANNEL_HANGUP_COMPLETE, with billsec and every variable. */
  hangupComplete: EslEvent | null = null;
  closed = false;
  /** hotline_handled=true was sent (claim) and not taken back (release). */
  handled = false;
  /**
   * FreeSWITCH sent this call's text/disconnect-notice (Content-Disposition linger or disconnect):
   * the channel is gone. The only sign of a caller who hung up before `myevents` took effect.
   */
  disconnectNoticed = false;

  /** Events whose Unique-ID was not this call's: ignored (counted for the logs). */
  foreignEvents = 0;
  /** Why the socket was lost, when the daemon dropped it (a frame too large, an unframeable stream). */
  failure: EslError | null = null;

  /** Applications written and not yet settled. */
  private readonly apps = new PendingApps();
  private readonly endWaiters: Array<() => void> = [];
  private readonly hangupListeners: Array<() => void> = [];
  private readonly answerListeners: Array<() => void> = [];
  private readonly bridgeListeners: Array<() => void> = [];
  /** The opening commands (claim): being written, replies outstanding, the first failure. */
  private readonly opening = new OpeningCommands();
  /** FreeSWITCH acknowledged `linger`: from then on it keeps the socket after a hangup. */
  private lingering = false;
  /** subscribe() was sent: this call's events (an application's completion) reach us. */
  private subscribed = false;

  private constructor(
    readonly conn: EslConnection,
    private readonly socket: Socket,
    data: Record<string, string>,
    private readonly options: ChannelOptions,
  ) {
    this.data = data;
    this.uuid = data['Unique-ID'] ?? '';
    // A leg FreeSWITCH answered before handing it over (an originated click-to-call leg) gets no
    // CHANNEL_ANSWER: its answer time is in the channel data (outbound-originated-leg-to-socket.log).
    this.answeredAtUs = microseconds(data['Caller-Channel-Answered-Time']);
    conn.handlers = { event: (e) => this.onEvent(e), notice: (e) => this.onNotice(e) };
    // The stream may have broken in the very read that carried the connect reply.
    this.failure = conn.framer.broken;
    conn.on('esl::protocol-error', (err: EslError) => {
      this.failure ??= err;
    });
  }

  /**
   * One event of the socket, dispatched by name. Only this call's own: an event whose Unique-ID
   * is anything else (`*`, another call's UUID: events of every channel reach a socket until
   * `myevents` takes effect, FREESWITCH.md) is ignored, whatever it says.
   */
  private onEvent(e: EslEvent): void {
    if (e.getHeader('Unique-ID') !== this.uuid) {
      this.foreignEvents++;
      return;
    }
    switch (e.name) {
      case 'CHANNEL_EXECUTE_COMPLETE':
        this.onExecuteComplete(e);
        return;
      case 'CHANNEL_ANSWER':
        this.answeredAtUs = microseconds(e.getHeader('Caller-Channel-Answered-Time')) ?? this.answeredAtUs;
        for (const fn of this.answerListeners) fn();
        return;
      case 'CHANNEL_BRIDGE':
        for (const fn of this.bridgeListeners) fn();
        return;
      case 'CHANNEL_HANGUP':
        this.onHangup(e.getHeader('Hangup-Cause') ?? null);
        return;
      case 'CHANNEL_HANGUP_COMPLETE':
        this.onHangupComplete(e);
        return;
      default:
        // Subscribed by myevents but not read (nixevent missed it): nothing to do.
        return;
    }
  }

  /**
   * Takes over a socket FreeSWITCH opened for a call: `connect` (modesl) and its CHANNEL_DATA
   * reply. Rejects if the peer does not answer; then there is no call UUID to record anything for.
   */
  static async open(socket: Socket, options: ChannelOptions): Promise<EslCallChannel> {
    const conn = new EslConnection(socket, { maxFrameBytes: options.maxFrameBytes, replyTimeoutMs: options.replyTimeoutMs });
    const started = performance.now();
    // FreeSWITCH's disconnect notice can come in the same read as the connect reply (a caller who
    // hangs up at once): listen from the start, not from when the channel object exists.
    const notices: EslEvent[] = [];
    conn.handlers = { event: () => undefined, notice: (e) => notices.push(e) };
    const data = await new Promise<Record<string, string>>((resolve, reject) => {
      const onError = (): void => undefined; // 'close' follows, and the connection fails the waiter
      socket.on('error', onError);
      // The connection settles a waiter once: its reply, its timeout or the close.
      const fail = (err: Error): void => {
        socket.off('error', onError);
        socket.destroy();
        reject(err);
      };
      try {
        conn.request(undefined, undefined, {
          command: 'connect',
          reply: (reply) => {
            if (!reply.getHeader('Unique-ID')) return fail(new SocketClosedError('connect (reply carried no channel data)'));
            socket.off('error', onError);
            resolve(reply.headers);
          },
          fail,
        });
      } catch (err) {
        fail(err as Error);
      }
    });
    options.observe?.('connect', seconds(started), 'ok');
    const channel = new EslCallChannel(conn, socket, data, options);
    // The constructor took over the connection's handlers; replay what came before it.
    for (const e of notices) channel.onNotice(e);
    channel.watchSocket();
    return channel;
  }

  /**
   * `myevents plain` (only this call's events, else every channel's reach every socket),
   * `linger` (keep the socket after hangup so CHANNEL_HANGUP_COMPLETE still arrives) and
   * `nixevent` for the events we never read. Sent together; FreeSWITCH answers in order.
   */
  subscribe(): Promise<void> {
    this.subscribed = true;
    const commands = ['myevents plain', `linger ${this.options.lingerS}`, this.bridgeListeners.length === 0 ? NIXEVENT_ALL_UNREAD : NIXEVENT_UNUSED];
    if (this.closed) return Promise.reject(this.failure ?? new SocketClosedError(commands[0]));
    return new Promise<void>((resolve, reject) => {
      // One waiter for the three replies (CommandGroup); FreeSWITCH answers them in order.
      const group = new CommandGroup(commands, this.opening, this.options.observe, (taken) => {
        if (taken === 1) this.lingering = true;
      }, resolve, reject);
      for (const command of commands) {
        const role = this.opening.role();
        try {
          this.conn.request(undefined, undefined, group, command);
        } catch (err) {
          group.notWritten(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        group.written(role);
        if (role === 'opening') this.opening.outstanding++;
      }
    });
  }

  /**
   * Takes the call: subscribe, and `multiset hotline_handled=true` in the same write, before
   * anything the caller can hear (the dialplan's fallback then hangs up instead of offering the
   * caller to another daemon if we die mid-call). `variables` the flow wants on every call go in
   * the same multiset: one application, one completion event. An instant application: whatever
   * we queue next runs right behind it.
   *
   * Pipelined: the flow need not wait for these replies before its next command. FreeSWITCH
   * answers a socket's commands in order, so a later command's reply arrives after them; if one
   * of them failed, every command written while they were outstanding rejects with that error
   * when its own reply comes (command()). The returned promise (replies in; the set's completion
   * is not waited for) is for callers that want to wait anyway.
   */
  claim(variables: Readonly<Record<string, string>> = {}): Promise<void> {
    // Checked before anything is sent: a value multiset cannot carry throws here, to the caller,
    // instead of leaving the call claimed without hotline_handled.
    const argument = multisetArgument(claimVariables(variables));
    let subscribed: Promise<void>;
    this.opening.writing = true;
    try {
      subscribed = this.subscribe();
      const set = this.execute('multiset', argument, this.options.replyTimeoutMs);
      set.catch(() => undefined);
    } finally {
      this.opening.writing = false;
    }
    this.handled = true;
    subscribed.catch(() => undefined);
    return subscribed;
  }

  /**
   * Lets go of a caller who is still up, on purpose, so FreeSWITCH's fallback takes the call
   * (hotline_after_socket.xml: second daemon, backup destination, announcement): takes the
   * handled flag back (`unset`, also when it was never set), waits for that application's
   * completion, then closes the socket WITHOUT hanging up.
   *
   * Why wait even for a call never claimed: in mod_event_socket.c the `socket` application
   * parks the channel only once it sees the listener CONNECTED (socket_function polls for it,
   * switch_cond_next between looks), and switch_ivr_park sets CF_CONTROLLED itself; the listener
   * thread clears CF_CONTROLLED once, when the socket ends (listener_run). A socket closed right
   * after the connect reply can end before the park starts: the park then sets the flag nobody
   * clears again and holds the caller in silence until they hang up, never reaching the
   * fallback. An application's completion comes from inside the park loop (switch_ivr_park
   * parses the queued sendmsg), so after it the close ends the park.
   */
  async release(): Promise<void> {
    if (!this.hungUp && !this.closed) {
      try {
        // Not claimed: subscribe first, or the completion would never reach this socket.
        if (!this.subscribed) await this.subscribe();
        await this.execute('unset', HANDLED_VARIABLE, this.options.replyTimeoutMs);
        this.handled = false;
      } catch {
        // The socket or the call is gone (or FreeSWITCH did not answer in time): close anyway.
      }
    }
    this.close();
  }

  /** Registers a listener for the call being answered (the caller's leg). */
  onAnswer(fn: () => void): void {
    this.answerListeners.push(fn);
  }

  /**
   * Registers a listener for CHANNEL_BRIDGE: the caller's leg was bridged to another, i.e. a
   * phone answered (the bridge application completes only when the conversation is over).
   * Register before claim(): a call with no bridge listener then nixes CHANNEL_BRIDGE.
   */
  onBridge(fn: () => void): void {
    this.bridgeListeners.push(fn);
  }

  /** Registers a listener for the caller's hang-up (fires at most once). */
  onHangupEvent(fn: () => void): void {
    if (this.hungUp) process.nextTick(fn);
    else this.hangupListeners.push(fn);
  }

  /**
   * Sends one command and waits for its reply; -ERR rejects with EslCommandError. No reply within
   * replyTimeoutMs rejects with EslTimeoutError and drops the socket (connection.ts).
   */
  command(command: string, headers?: Record<string, string>, body?: string): Promise<EslEvent> {
    if (this.closed) return Promise.reject(this.failure ?? new SocketClosedError(command));
    const role = this.opening.role();
    return new Promise<EslEvent>((resolve, reject) => {
      try {
        this.conn.request(headers, body, new CommandReply(command, role, this.opening, this.options.observe, resolve, reject));
        if (role === 'opening') this.opening.outstanding++;
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** `api <command>` on this call's own `full` socket; resolves with the response body. */
  async api(command: string): Promise<string> {
    const reply = await this.command(`api ${command}`);
    return reply.body;
  }

  /**
   * Runs a dialplan application and resolves with its CHANNEL_EXECUTE_COMPLETE. The argument
   * goes as a text/plain body. `timeoutMs` bounds the application itself (ring time, prompt);
   * the channel's appTimeoutMarginMs is added for FreeSWITCH's own delays, and so is the time it
   * may wait in FreeSWITCH's queue behind an event-locked application of ours still pending
   * (heldForMs). `eventLock` sends `event-lock: true` (PlayOptions).
   */
  execute(app: string, arg: string, timeoutMs: number, eventLock = false): Promise<EslEvent> {
    // Thrown in the executor: a bad name or a gone call rejects, as from an async function.
    return new Promise<EslEvent>((resolve, reject) => {
      identifier('application', app);
      if (this.closed) throw this.failure ?? new SocketClosedError(app);
      if (this.hungUp) throw new CallHungUpError(app, this.hangupCause);
      const command = `sendmsg ${this.uuid}`;
      const run = new AppRun(command, app, arg, nextEventUuid(), this.opening.role(), this.opening, this.apps, this.options.observe, resolve, reject);
      run.start(timerDelay(this.apps.heldForMs() + timeoutMs + (this.options.appTimeoutMarginMs ?? 0)), eventLock);
      const headers: Record<string, string> = { 'call-command': 'execute', 'execute-app-name': app, 'Event-UUID': run.id };
      if (eventLock) headers['event-lock'] = 'true';
      try {
        this.conn.request(headers, arg, run);
        if (this.opening.writing) this.opening.outstanding++;
      } catch (err) {
        run.fail(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  async answer(): Promise<void> {
    await this.execute('answer', '', this.options.replyTimeoutMs);
  }

  /** Sets channel variables in one application (`multiset`); values are checked, never expanded. */
  async setVariables(vars: Record<string, string | number | boolean>): Promise<void> {
    await this.execute('multiset', multisetArgument(vars), this.options.replyTimeoutMs);
  }

  /**
   * Plays a file. On an unanswered channel FreeSWITCH pre-answers (early media), so an
   * announcement before answer costs the caller nothing (switch_ivr_play_say.c).
   * Resolves with Application-Response (FILE PLAYED, FILE NOT FOUND …) and whether the caller
   * was still up when it ended.
   */
  async playback(file: string, maxMs: number, options: PlayOptions = {}): Promise<PlayEnd> {
    return playEnd(await this.execute('playback', promptPath('prompt file', file), maxMs + this.options.replyTimeoutMs, options.eventLock));
  }

  /**
   * FreeSWITCH's `speak engine|voice|text` (mod_dptools). The text was cleaned of everything
   * FreeSWITCH would expand or split by the prompt resolver; control characters are refused here.
   */
  async speak(arg: string, maxMs: number, options: PlayOptions = {}): Promise<PlayEnd> {
    // eslint-disable-next-line no-control-regex -- refusing control characters is the point
    if (/[\u0000-\u001f]/.test(arg) || arg.includes('${') || arg.split('|').length !== 3) {
      throw new UnsafeValueError('speak argument', 'must be engine|voice|text without control characters or ${');
    }
    return playEnd(await this.execute('speak', arg, maxMs + this.options.replyTimeoutMs, options.eventLock));
  }

  /**
   * play_and_get_digits <min> <max> <tries> <timeout_ms> <terminators> <file> <invalid_file>
   * <var_name> <regexp> [<digit_timeout_ms>]; the digits come back in variable_<var_name>
   * (unset when nothing valid was keyed), with read_result and how long it took — a try whose
   * prompt could not be opened returns at once and leaves read_result unset.
   */
  async playAndGetDigits(opts: DigitCollection): Promise<DigitResult> {
    const arg = playAndGetDigitsArgument(opts);
    const budget = opts.tries * (opts.promptMs + opts.timeoutMs + opts.max * opts.digitTimeoutMs) + this.options.replyTimeoutMs;
    const started = performance.now();
    const event = await this.execute('play_and_get_digits', arg, budget);
    const result = event.variable('read_result');
    return {
      digits: dtmfDigits(event.variable(opts.variable)),
      readResult: result === 'success' || result === 'timeout' || result === 'failure' ? result : null,
      elapsedMs: seconds(started) * 1000,
    };
  }

  /** Bridges to a dial string built by buildDialString (continue_on_fail must be set first). */
  async bridge(dialString: string, timeoutMs: number): Promise<BridgeOutcome> {
    // The caller hears ringback from here on: what FreeSWITCH sends next (an answer, the hang-up,
    // the completion, the CDR's facts) waits behind calls still in silence (deferred-input.ts).
    if (this.options.deferBridgedInput !== false) this.conn.deferInput();
    const event = await this.execute('bridge', dialString, timeoutMs);
    const disposition = event.variable('originate_disposition') ?? '';
    const dialStatus = event.variable('DIALSTATUS') ?? '';
    return {
      disposition,
      dialStatus,
      answered: dialStatus === 'SUCCESS' || disposition === 'SUCCESS',
      answeredNumber: event.getHeader('Other-Leg-Destination-Number') ?? null,
    };
  }

  async recordSession(path: string): Promise<void> {
    await this.execute('record_session', mediaPath('recording path', path), this.options.replyTimeoutMs);
  }

  /**
   * `record <path> <max s> <threshold> <hits>` (voicemail); resolves with record_ms and how it
   * ended (RecordEnd: read from the completion, which FreeSWITCH sends before the hang-up's
   * CHANNEL_HANGUP_COMPLETE when the caller hangs up mid-message). Its
   * folder is made first with mod_dptools `mkdir`, written in the same burst: `record` opens its
   * file in a folder that must exist and hangs the caller up with DESTINATION_OUT_OF_ORDER when it
   * cannot (switch_ivr_record_file; record_session makes its folders, record does not).
   */
  async record(path: string, maxS: number, silenceThreshold: number, silenceHits: number): Promise<RecordEnd> {
    const argument = recordArgument(path, maxS, silenceThreshold, silenceHits);
    const folder = this.execute('mkdir', recordFolder(path), this.options.replyTimeoutMs);
    folder.catch(() => undefined);
    const done = await this.execute('record', argument, (maxS + 10) * 1000);
    await folder;
    return recordEnd((name) => done.variable(name));
  }

  /** Hangs up with a Q.850 cause name; a no-op once the call is gone. */
  async hangup(cause: string): Promise<void> {
    if (this.hungUp || this.closed) return;
    identifier('hangup cause', cause);
    try {
      await this.execute('hangup', cause, this.options.replyTimeoutMs);
    } catch (err) {
      if (!(err instanceof CallHungUpError || err instanceof SocketClosedError)) throw err;
    }
  }

  /**
   * Ends the call now, whatever is playing, collecting or bridged: `api uuid_kill` runs in the
   * socket thread (mod_event_socket.c api_exec, mod_commands.c kill_function). A `sendmsg`
   * hangup would be queued behind an event-locked prompt such as our own uuid_broadcast warning
   * (the capture daemon-spend-cut-during-warning-broadcast: 6 s late). For cuts and shutdown.
   */
  async kill(cause: string): Promise<'killed' | 'gone'> {
    if (this.hungUp || this.closed) return 'gone';
    identifier('hangup cause', cause);
    try {
      await this.api(`uuid_kill ${this.uuid} ${cause}`);
      return 'killed';
    } catch (err) {
      // `-ERR No such channel!`: it ended on its own meanwhile.
      if (err instanceof EslCommandError && /no such channel/i.test(err.replyText)) return 'gone';
      throw err;
    }
  }

  /**
   * `bgapi uuid_broadcast <uuid> <file> both`: FreeSWITCH plays the file to both legs over
   * whatever runs (a bridge goes on underneath); resolves once FreeSWITCH took the job.
   */
  async broadcast(file: string): Promise<void> {
    // promptPath, as for every other prompt: a tone stands in for a file known to be missing.
    await this.command(`bgapi uuid_broadcast ${this.uuid} ${promptPath('broadcast prompt', file)} both`);
  }

  /**
   * `api uuid_displace <uuid> start <file> 0 mux` on the call's own socket: the file is mixed into
   * what the caller hears from the next frame, whatever runs, and removes itself at its end
   * (switch_ivr_async.c switch_ivr_displace_session; src/billing/warning.ts). -ERR rejects.
   */
  async displace(file: string): Promise<void> {
    await this.api(displaceCommand(this.uuid, promptPath('warning prompt', file)));
  }

  /** See CallChannel. */
  sendAtEndOfTurn(): void {
    this.conn.flushAtEndOfTurn();
  }

  /** An event-locked application of ours is pending (queued or playing): see CallChannel. */
  get promptLocked(): boolean {
    return this.apps.anyLocked;
  }

  /** Waits (bounded) for CHANNEL_HANGUP_COMPLETE or the socket's end, whichever comes first. */
  waitForEnd(timeoutMs: number): Promise<void> {
    if (this.hangupComplete || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.endWaiters.push(done);
    });
  }

  /** Ends the socket; FreeSWITCH closes its side. Safe to call twice. */
  close(): void {
    if (!this.closed) this.conn.end();
  }

  /** Hard close, for shutdown. */
  destroy(): void {
    this.socket.destroy();
  }

  private watchSocket(): void {
    this.socket.on('error', () => undefined); // 'close' follows and does the work
    // The socket's end and close as the connection passes them on: after the data that came
    // before them, also when this call's input waits behind other calls' (bridge()).
    // FreeSWITCH ends the socket itself when the channel hangs up before `linger` took effect
    // (A7 in test/peer/fake-freeswitch.ts): the caller left, no CHANNEL_HANGUP will say so.
    this.conn.once('esl::end', () => {
      if (!this.lingering && !this.closed) this.onHangup(this.hangupCause);
    });
    this.conn.once('esl::close', () => this.onClose());
    if (this.socket.destroyed) this.onClose();
  }

  /** A disconnect notice naming another session (Controlled-Session-UUID) is not this call's. */
  /** A message that is neither a reply nor an event: FreeSWITCH's disconnect notice is the one we read. */
  onNotice(event: EslEvent): void {
    if (event.contentType === 'text/disconnect-notice') this.onDisconnectNotice(event);
  }

  private onDisconnectNotice(event: EslEvent): void {
    const session = event.outer['Controlled-Session-UUID'];
    if (session === undefined || session === this.uuid) this.disconnectNoticed = true;
  }

  private onExecuteComplete(event: EslEvent): void {
    const id = event.getHeader('Application-UUID');
    // Not ours (the dialplan's own `socket`), or already given up on: no run.
    if (id) this.apps.get(id)?.complete(event);
  }

  /** Applications written and not yet completed (queued or running in FreeSWITCH). */
  get pendingApplications(): number {
    return this.apps.size;
  }

  private onHangup(cause: string | null): void {
    if (this.hungUp) return;
    this.hungUp = true;
    this.hangupCause = cause;
    // Applications already running still complete (a bridge reports ORIGINATOR_CANCEL after the
    // hangup); queued ones never start. CHANNEL_HANGUP_COMPLETE tells which was which.
    for (const fn of this.hangupListeners.splice(0)) fn();
  }

  private onHangupComplete(event: EslEvent): void {
    this.onHangup(event.getHeader('Hangup-Cause') ?? null);
    this.hangupComplete = event;
    this.apps.settleAll((run) => new CallHungUpError(run.app, this.hangupCause));
    for (const fn of this.endWaiters.splice(0)) fn();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    // A socket the daemon dropped for bad input fails what waited with that reason (its code).
    const failure = this.failure;
    this.apps.settleAll((run) => failure ?? new SocketClosedError(run.app));
    for (const fn of this.endWaiters.splice(0)) fn();
    for (const fn of this.hangupListeners.splice(0)) fn();
    this.answerListeners.length = 0;
    this.bridgeListeners.length = 0;
    this.conn.handlers = null;
    this.conn.removeAllListeners();
  }

}

/** What claim() sets: the handled flag first, then the flow's own variables. */
export function claimVariables(variables: Readonly<Record<string, string>>): Record<string, string> {
  return { [HANDLED_VARIABLE]: 'true', ...variables };
}

/** `multiset a=1 b=2`: values are checked, never expanded; multiset splits on spaces. */
export function multisetArgument(vars: Record<string, string | number | boolean>): string {
  return Object.entries(vars)
    .map(([name, value]) => {
      // A ringback tone (teletone markup) has commas, which a dial string would split, but multiset does not.
      const text = isTeletone(String(value)) ? String(value) : plainVariableValue(name, String(value));
      if (/\s/.test(text)) throw new Error(`variable ${name} has whitespace; multiset splits on spaces`);
      return `${identifier('variable', name)}=${text}`;
    })
    .join(' ');
}

/** The argument of play_and_get_digits, every part checked. */
export function playAndGetDigitsArgument(opts: DigitCollection): string {
  if (!/^[0-9*#]*$/.test(opts.terminators) || opts.terminators === '') throw new Error('terminators must be keypad symbols');
  // Braces are regexp quantifiers here; only `${` would be expanded by FreeSWITCH.
  if (/\s/.test(opts.regexp) || opts.regexp.includes('${')) throw new Error('regexp must not contain whitespace or ${');
  return [
    opts.min, opts.max, opts.tries, opts.timeoutMs, opts.terminators,
    promptPath('prompt file', opts.file), promptPath('invalid prompt file', opts.invalidFile),
    identifier('digits variable', opts.variable), opts.regexp, opts.digitTimeoutMs,
  ].join(' ');
}

/** The folder `record` writes its file in, for `mkdir` (M11 in test/peer/channel-model.ts). */
export function recordFolder(path: string): string {
  return posix.dirname(mediaPath('recording path', path));
}

/** `record <path> <max s> <threshold> <hits>`. */
export function recordArgument(path: string, maxS: number, silenceThreshold: number, silenceHits: number): string {
  return `${mediaPath('recording path', path)} ${Math.trunc(maxS)} ${Math.trunc(silenceThreshold)} ${Math.trunc(silenceHits)}`;
}

/**
 * A prompt's completion: its Application-Response, and whether the caller was still up, as
 * FreeSWITCH says in the completion itself (Answer-State hangup: the caller left during it; the
 * captured completions after a hang-up say so). Read from the event, not from `hungUp`: a
 * hang-up in the same read as the completion is processed before the waiting step resumes.
 */
function playEnd(event: EslEvent): PlayEnd {
  return { response: event.getHeader('Application-Response') ?? '', callerUp: event.getHeader('Answer-State') !== 'hangup' };
}

/** FreeSWITCH time stamps are microseconds since the epoch; 0 means "never". */
export function microseconds(value: string | undefined): number | null {
  // At most 17 digits (as cdr-times.ts epochMs): any such value is a valid Date. A damaged
  // Caller-Channel-Answered-Time of 20 digits made an Invalid Date that failed the live-call
  // job's publish of every call on the node, minute after minute.
  if (!value || !/^[0-9]{1,17}$/.test(value)) return null;
  const n = Number(value);
  return n === 0 || !Number.isSafeInteger(n) ? null : n;
}
