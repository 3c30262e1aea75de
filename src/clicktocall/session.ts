/**
 * The call flow's side of click-to-call, kept here so the flow itself only gains a few hooks:
 *
 *  - `legOf(data)`: the visitor leg recognised from its CHANNEL_DATA (leg.ts), malformed markers
 *    logged. The call server does it once per connection; the session then takes the visitor as
 *    the caller and the widget's access number as the dialled number, and the plan (plan.ts) gives
 *    the call the widget's answer prompt and no PIN.
 *  - `ClickToCallCalls`: the request's state as the call goes (connecting when the leg reaches the
 *    flow, connected when FreeSWITCH bridges it to an agent, ended with the CDR outcome), and the
 *    click → agent answer time. Database writes are bounded and never hold up the call, but
 *    one: the move to connecting is awaited before the call is planned, since a leg whose request
 *    had already ended (the attempt was given up) must be killed, not served (lateLegVerdict).
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { CdrRecord } from '../cdr/record';
import { withTimeout } from '../calls/call-state';
import { recognizeClickToCall, type ClickToCallLeg } from './leg';
import type { ClickToCallMetrics } from './metrics';
import { advanceRequest, readRequest, type RequestStatus } from './requests';

export function legOf(data: Readonly<Record<string, string>>, log: Logger, callUuid: string): ClickToCallLeg | null {
  const r = recognizeClickToCall(data);
  if (r.kind === 'malformed') log.warn({ call_uuid: callUuid, reason: r.reason }, 'click-to-call marker on a leg that is not one of ours; handled as an ordinary call');
  return r.kind === 'click_to_call' ? r.leg : null;
}

/**
 * May a visitor leg that reached the call flow be served? Not when its request had already ended
 * before the leg came (`advanced` false: the conditional move to `connecting` found it past
 * `visitor_answered`, and the row says `ended`): the dialer gave up on the attempt (its ringing
 * timed out, the watchdog or the sweeper ended it) and wrote its CDR, so this leg is one the
 * visitor answered too late. Served when the database could not tell (null): a visitor is on the
 * line, and the request's own state is no reason to drop a real call.
 */
export function lateLegVerdict(advanced: boolean | null, status: RequestStatus | null): 'serve' | 'given_up' {
  return advanced === false && status === 'ended' ? 'given_up' : 'serve';
}

/** The request of one visitor leg in the call flow: the session says when the call is over. */
export interface RequestProgress {
  /**
   * Resolves once the request is taken (moved to `connecting`): `given_up` when it had already
   * ended (lateLegVerdict). The session then kills the leg without serving or billing it, and
   * calls none of the rest.
   */
  readonly verdict: Promise<'serve' | 'given_up'>;
  /** The call is over and its CDR made: the request ends with the CDR's outcome (resolves when written, bounded). */
  finished(cdr: CdrRecord): Promise<void>;
}

/** How often the end of a request whose `ended` write failed is tried again. */
const DEFAULT_END_RETRY_MS = 30_000;

type EndFields = { endedAt: Date; outcome: string; hangupCause: string | null };

export class ClickToCallCalls {
  /**
   * Requests whose visitor leg reached a call session on this daemon: that session owns the call's
   * CDR, so the dialer's watchdog and sweeper never write one for them (dialer.ts legState). A
   * request leaves the set once its `ended` state is in the database (then the row says so).
   */
  private readonly serving = new Set<string>();
  /**
   * Requests whose call is over but whose `ended` write failed (the database went away): tried
   * again every `endRetryMs` until written. They stay in `serving` meanwhile, so the sweeper
   * never writes a second CDR for a call this daemon served, and the set does not grow for ever.
   */
  private readonly unfinished = new Map<string, EndFields>();
  private retryTimer: NodeJS.Timeout | null = null;
  private retrying = false;
  private stopped = false;

  constructor(
    private readonly knex: Knex,
    private readonly metrics: ClickToCallMetrics,
    private readonly timeoutMs: number,
    private readonly clock: () => Date = () => new Date(),
    private readonly log?: Logger,
    private readonly endRetryMs = DEFAULT_END_RETRY_MS,
  ) {}

  /**
   * The visitor leg reached the call flow on this daemon. `onBridge` registers for the leg's
   * CHANNEL_BRIDGE (kept subscribed: it is not in the nixevent list of esl/call-channel.ts): the
   * bridge application itself completes only when the conversation ends, the event comes when an
   * agent answers.
   */
  started(leg: ClickToCallLeg, channel: { onBridge(fn: () => void): void }, log: Logger): RequestProgress {
    this.serving.add(leg.requestId);
    const chain = new Chain(this.timeoutMs, (err) => log.warn({ err: (err as Error).message }, 'click-to-call request state not updated'));
    let advanced: boolean | null = null;
    const taken = chain.push(async () => {
      advanced = await advanceRequest(this.knex, leg.requestId, 'connecting', { visitorAnsweredAt: leg.visitorAnsweredAt ?? this.clock(), visitorResult: 'answered' });
    });
    const verdict = taken.then(async () => {
      if (advanced !== false) return lateLegVerdict(advanced, null);
      const row = await withTimeout('click-to-call request read', this.timeoutMs, readRequest(this.knex, leg.requestId)).catch((err: unknown) => {
        log.warn({ err: (err as Error).message }, 'click-to-call request not read; the leg is served');
        return null;
      });
      const v = lateLegVerdict(advanced, row?.status ?? null);
      if (v === 'given_up') this.serving.delete(leg.requestId);
      return v;
    });
    let bridged = false;
    channel.onBridge(() => {
      if (bridged) return;
      bridged = true;
      const now = this.clock();
      this.metrics.agentAnswerSeconds.observe(Math.max(0, (now.getTime() - leg.clickedAt.getTime()) / 1000));
      void chain.push(() => advanceRequest(this.knex, leg.requestId, 'connected', { connectedAt: now }));
    });
    return {
      verdict,
      finished: async (cdr) => {
        const end: EndFields = { endedAt: this.clock(), outcome: cdr.outcome, hangupCause: cdr.hangup_cause };
        // The row now says ended (by us, or by someone before): nobody judges it again.
        if (await chain.push(() => this.end(leg.requestId, end))) return;
        this.unfinished.set(leg.requestId, end);
        if (this.stopped) return; // shutting down: the sweeper ends it after a restart
        log.warn({ request_id: leg.requestId, retry_s: this.endRetryMs / 1000 }, 'click-to-call request not ended in the database; trying again');
        this.retryTimer ??= setInterval(() => void this.retryEnds(), this.endRetryMs).unref();
      },
    };
  }

  /** Is a call session of this daemon serving (or did it serve) this request's visitor leg? */
  isServing(requestId: string): boolean {
    return this.serving.has(requestId);
  }

  /** Requests whose `ended` state is still to be written (a database outage). */
  get unfinishedCount(): number {
    return this.unfinished.size;
  }

  /** Stops the retries (daemon stop); what is unfinished stays for the sweeper after a restart. */
  stop(): void {
    this.stopped = true;
    this.pauseRetries();
  }

  private pauseRetries(): void {
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.retryTimer = null;
  }

  private async end(requestId: string, end: EndFields): Promise<void> {
    await advanceRequest(this.knex, requestId, 'ended', end);
    this.serving.delete(requestId);
    this.unfinished.delete(requestId);
  }

  /**
   * One pass over the unfinished requests, in the order they ended. A request whose row stays
   * locked does not hold up the others; a lost connection fails them all, once each.
   */
  private async retryEnds(): Promise<void> {
    if (this.retrying) return;
    this.retrying = true;
    let failed = 0;
    let lastError = '';
    try {
      for (const [requestId, end] of [...this.unfinished]) {
        try {
          await withTimeout('click-to-call request update', this.timeoutMs, this.end(requestId, end));
          this.log?.info({ request_id: requestId }, 'click-to-call request ended in the database after a retry');
        } catch (err) {
          failed++;
          lastError = (err as Error).message;
        }
      }
      if (failed > 0) this.log?.warn({ err: lastError, unfinished: this.unfinished.size }, 'click-to-call requests still not ended in the database');
      if (this.unfinished.size === 0) this.pauseRetries();
    } finally {
      this.retrying = false;
    }
  }
}

/** Updates of one request, in order (a later state never overtakes an earlier one), each bounded. */
class Chain {
  private tail: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly timeoutMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Queues one update; resolves true once it is written, false when it failed (logged). */
  push(work: () => Promise<unknown>): Promise<boolean> {
    const done = this.tail.then(() => withTimeout('click-to-call request update', this.timeoutMs, work())).then(
      () => true,
      (err: unknown) => {
        this.onError(err);
        return false;
      },
    );
    this.tail = done;
    return done;
  }
}
