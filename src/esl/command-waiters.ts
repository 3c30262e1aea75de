/**
 * What a call's channel waits for after writing a command (call-channel.ts): the command's reply
 * (CommandReply), and for an application also its CHANNEL_EXECUTE_COMPLETE (AppRun), each one
 * object with its own outcome, given to the connection as its ReplyWaiter (connection.ts).
 *
 * Why objects and not closures: a command made a promise, a timer, a Set entry and five closures,
 * and an application an async function's state, two more promises and a second timer on top; at
 * saturation the young generation's collections of them were a tenth of a call's CPU
 * (bench/PROFILE.md, release 41). The replies' timer is the connection's, one a socket.
 */
import { randomUUID } from 'node:crypto';
import type { ReplyWaiter } from './connection';
import { CallHungUpError, EslCommandError, EslTimeoutError } from './errors';
import type { EslEvent } from './event';

/** Called with the command name and seconds it took (replies and completions). */
export type Observe = (command: string, seconds: number, result: 'ok' | 'error' | 'timeout' | 'hangup') => void;

/** What claim() writes first (subscribe, the handled flag), and what is written while their replies are outstanding. */
export type CommandRole = 'opening' | 'behind' | 'plain';

/** The opening commands of a call (claim): being written, replies outstanding, the first failure. */
export class OpeningCommands {
  writing = false;
  outstanding = 0;
  error: Error | null = null;

  /** The role of a command written now. */
  role(): CommandRole {
    return this.writing ? 'opening' : this.outstanding > 0 ? 'behind' : 'plain';
  }

  /**
   * A reply came for a command of `role`: its failure text when FreeSWITCH refused it (-ERR,
   * -USAGE), else null. An opening command's failure is kept for the commands behind it.
   */
  replied(role: CommandRole, command: string, reply: EslEvent): string | null {
    const text = reply.contentType === 'api/response' ? reply.body : (reply.getHeader('Reply-Text') ?? '');
    const failure = text.startsWith('-ERR') || text.startsWith('-USAGE') ? text.trim() : null;
    if (role === 'opening') {
      this.outstanding--;
      if (failure !== null) this.error ??= new EslCommandError(command, failure);
    }
    return failure;
  }
}

/**
 * One command's wait for its reply. -ERR and -USAGE reject with EslCommandError. Pipelined
 * behind a failed opening command, a command rejects with that command's error when its own reply
 * comes: the call was never properly taken (claim()).
 */
export class CommandReply implements ReplyWaiter {
  private readonly started = performance.now();

  constructor(
    readonly command: string,
    private readonly role: CommandRole,
    private readonly opening: OpeningCommands,
    private readonly observe: Observe | undefined,
    private readonly resolve: (reply: EslEvent) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  reply(reply: EslEvent): void {
    const failure = this.opening.replied(this.role, this.command, reply);
    if (failure !== null) {
      this.observe?.(commandName(this.command), seconds(this.started), 'error');
      this.reject(new EslCommandError(this.command, failure));
    } else if (this.role === 'behind' && this.opening.error) {
      this.reject(this.opening.error);
    } else {
      if (isApiCommand(this.command)) this.observe?.(commandName(this.command), seconds(this.started), 'ok');
      this.resolve(reply);
    }
  }

  fail(err: Error): void {
    if (err instanceof EslTimeoutError) this.observe?.(commandName(this.command), seconds(this.started), 'timeout');
    this.reject(err);
  }
}

/**
 * The replies to commands written one after another whose caller waits for all of them
 * (subscribe(): myevents, linger, nixevent). One waiter, held in the connection's line once for
 * each command, and one promise, where each command made a promise, a CommandReply and three
 * closures, and Promise.all one more promise and a closure each (bench/PROFILE.md, release 42).
 * Each reply is taken as CommandReply takes it: the opening commands' bookkeeping, a refusal
 * observed under its command's name, a command written behind a failed opening one failing with
 * that failure. The first failure rejects, as Promise.all did; `taken(i)` hears of each command
 * FreeSWITCH took, also after a failure.
 */
export class CommandGroup implements ReplyWaiter {
  private readonly started = performance.now();
  /** The role each command was written in, in order (OpeningCommands.role() just before its write). */
  private readonly roles: CommandRole[] = [];
  /** Replies and failures handed in: the next is for commands[due]. */
  private due = 0;
  private failed = false;

  constructor(
    private readonly commands: readonly string[],
    private readonly opening: OpeningCommands,
    private readonly observe: Observe | undefined,
    private readonly taken: (index: number) => void,
    private readonly resolve: () => void,
    private readonly reject: (err: Error) => void,
  ) {}

  /** The command whose reply is due next (the connection names it in its errors). */
  get command(): string {
    return this.commands[Math.min(this.due, this.commands.length - 1)];
  }

  /** commands[i] was written in `role`; the writes go in order. */
  written(role: CommandRole): void {
    this.roles.push(role);
  }

  /** A command could not be written (the socket is gone): the group fails; those not written are not. */
  notWritten(err: Error): void {
    this.settle(err);
  }

  reply(reply: EslEvent): void {
    const index = this.due++;
    const command = this.commands[index];
    const role = this.roles[index] ?? 'plain';
    const failure = this.opening.replied(role, command, reply);
    if (failure !== null) {
      this.observe?.(commandName(command), seconds(this.started), 'error');
      this.settle(new EslCommandError(command, failure));
    } else if (role === 'behind' && this.opening.error) {
      this.settle(this.opening.error);
    } else {
      this.taken(index);
      if (this.due === this.commands.length) this.settle(null);
    }
  }

  fail(err: Error): void {
    const command = this.commands[Math.min(this.due++, this.commands.length - 1)];
    if (err instanceof EslTimeoutError) this.observe?.(commandName(command), seconds(this.started), 'timeout');
    this.settle(err);
  }

  /** The first failure rejects; success once every command's reply took it. */
  private settle(err: Error | null): void {
    if (this.failed) return;
    if (err === null) {
      this.resolve();
      return;
    }
    this.failed = true;
    this.reject(err);
  }
}

/**
 * An application written with `sendmsg`. Its outcome is the first of its completion (matched by
 * the Event-UUID FreeSWITCH echoes as Application-UUID), its own bound passing, the hang-up and
 * the socket's close; it is given to the caller once the sendmsg's reply says FreeSWITCH took it.
 * A reply refusing it (-ERR: FreeSWITCH answers `-ERR invalid session id` to a sendmsg that
 * crossed the hang-up, after CHANNEL_HANGUP_COMPLETE), none in time, or the failed opening
 * command it was written behind is what the caller gets instead, whatever came first: as when the
 * application waited for its reply and then for its completion. The sendmsg's failures are
 * observed under `sendmsg`, the application's outcomes under its own name.
 */
export class AppRun implements ReplyWaiter {
  private readonly started = performance.now();
  private timer: NodeJS.Timeout | null = null;
  /** Written with event-lock: nothing queued behind it starts before it ends, at the latest then (performance.now() ms). */
  lockedUntil: number | null = null;
  /** What the sendmsg's reply said so far. */
  private replied: 'waiting' | 'taken' | 'refused' = 'waiting';
  /** The application's outcome, once it is no longer pending: its completion, or why not. */
  private outcome: EslEvent | Error | null = null;

  constructor(
    /** The sendmsg line. */
    readonly command: string,
    readonly app: string,
    private readonly arg: string,
    /** Its Event-UUID. */
    readonly id: string,
    private readonly role: CommandRole,
    private readonly opening: OpeningCommands,
    private readonly apps: PendingApps,
    private readonly observe: Observe | undefined,
    private readonly resolve: (completion: EslEvent) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  /** Pending from now on, given up after `boundMs`; `eventLock` holds what is queued behind it until then at most. */
  start(boundMs: number, eventLock: boolean): void {
    if (eventLock) this.lockedUntil = performance.now() + boundMs;
    this.timer = setTimeout(() => this.expire(boundMs), boundMs);
    this.apps.add(this);
  }

  /** The sendmsg reply: +OK gives the caller the outcome, now or when it comes. */
  reply(reply: EslEvent): void {
    const failure = this.opening.replied(this.role, this.command, reply);
    if (failure !== null) {
      this.refused(new EslCommandError(this.command, failure));
      this.observe?.('sendmsg', seconds(this.started), 'error');
    } else if (this.role === 'behind' && this.opening.error) {
      this.refused(this.opening.error);
    } else {
      this.replied = 'taken';
      if (this.outcome !== null) this.deliver(this.outcome);
    }
  }

  /** The sendmsg reply will not come (the connection's reply timeout, the socket's close), or the sendmsg could not be written. */
  fail(err: Error): void {
    this.refused(err);
    if (err instanceof EslTimeoutError) this.observe?.('sendmsg', seconds(this.started), 'timeout');
  }

  /** Its CHANNEL_EXECUTE_COMPLETE. */
  complete(event: EslEvent): void {
    this.ended(event);
  }

  /** The hang-up or the socket's close: it will not complete. */
  settle(err: Error): void {
    this.ended(err);
  }

  private expire(boundMs: number): void {
    this.timer = null;
    if (this.ended(new EslTimeoutError(`${this.app} ${this.arg}`.trim(), boundMs))) this.observe?.(this.app, seconds(this.started), 'timeout');
  }

  /**
   * The application is no longer pending; its outcome goes to the caller once the reply took it.
   * False when it was not pending (settled already): `outcome` is dropped.
   */
  private ended(outcome: EslEvent | Error): boolean {
    if (!this.apps.forget(this)) return false;
    this.stopTimer();
    this.outcome = outcome;
    if (this.replied === 'taken') this.deliver(outcome);
    return true;
  }

  private deliver(outcome: EslEvent | Error): void {
    if (outcome instanceof Error) {
      this.reject(outcome);
      if (outcome instanceof CallHungUpError) this.observe?.(this.app, seconds(this.started), 'hangup');
    } else {
      this.resolve(outcome);
      this.observe?.(this.app, seconds(this.started), 'ok');
    }
  }

  /** The reply did not take it: the caller gets `err`, and the application is pending no more. */
  private refused(err: Error): void {
    if (this.replied !== 'waiting') return;
    this.replied = 'refused';
    if (this.apps.forget(this)) this.stopTimer();
    this.reject(err);
  }

  private stopTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** A channel's applications written and not yet settled (queued or running in FreeSWITCH), by Event-UUID. */
export class PendingApps {
  private readonly byId = new Map<string, AppRun>();
  /** Of them, written with event-lock. */
  private locked = 0;

  get size(): number {
    return this.byId.size;
  }

  /** An event-locked application is pending. */
  get anyLocked(): boolean {
    return this.locked > 0;
  }

  get(id: string): AppRun | undefined {
    return this.byId.get(id);
  }

  private has(run: AppRun): boolean {
    return this.byId.get(run.id) === run;
  }

  add(run: AppRun): void {
    this.byId.set(run.id, run);
    if (run.lockedUntil !== null) this.locked++;
  }

  /** Takes `run` out; false when it was not pending (settled already). */
  forget(run: AppRun): boolean {
    if (!this.has(run)) return false;
    this.byId.delete(run.id);
    if (run.lockedUntil !== null) this.locked--;
    return true;
  }

  /**
   * How long an application written now may wait in FreeSWITCH's queue before it starts: until
   * the event-locked applications still pending have ended, at most their own bounds (an instant
   * `multiset` written behind a 40 s greeting is not given up on after 15 s).
   */
  heldForMs(): number {
    if (this.locked === 0) return 0;
    let until = 0;
    for (const run of this.byId.values()) if (run.lockedUntil !== null && run.lockedUntil > until) until = run.lockedUntil;
    return Math.max(0, until - performance.now());
  }

  /** Rejects every pending application with the error `errorFor` gives it. */
  settleAll(errorFor: (run: AppRun) => Error): void {
    for (const run of [...this.byId.values()]) run.settle(errorFor(run));
  }
}

/**
 * The first 24 characters of a random (version 4) UUID, drawn once for the process: its version
 * and variant digits are in them.
 */
const EVENT_UUID_PREFIX = randomUUID().slice(0, 24);
let eventUuidSerial = 0;

/**
 * A new Event-UUID for a sendmsg, shaped as a UUID: the process's random prefix and a serial in
 * the last twelve hex digits (2^48 applications before it repeats). It only has to tell a
 * socket's applications apart (FreeSWITCH echoes it as the completion's Application-UUID);
 * randomUUID() built each from sixteen pieces, about 400 bytes of strings (bench/PROFILE.md,
 * release 41).
 */
export function nextEventUuid(): string {
  eventUuidSerial = (eventUuidSerial + 1) % 2 ** 48;
  return EVENT_UUID_PREFIX + eventUuidSerial.toString(16).padStart(12, '0');
}

/** Seconds since `started` (performance.now() ms). */
export function seconds(started: number): number {
  return (performance.now() - started) / 1000;
}

function isApiCommand(command: string): boolean {
  return command.startsWith('api ') || command.startsWith('bgapi ');
}

/** The name a command is observed by: its first word, or an `api`'s command. */
function commandName(command: string): string {
  const words = command.split(' ', 2);
  return isApiCommand(command) && words[1] ? words[1] : words[0];
}
