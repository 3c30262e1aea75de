/**
 * One click, from the API request to the visitor's phone ringing, and what becomes of an attempt
 * whose visitor never reaches the call flow. Refusals are ClickToCallErrors (errors.ts).
 *
 * Checks, cheapest first: the widget (key, enabled, origin), the visitor number (number.ts), the
 * access number and tenant (routing's identify, as for a dialled call), the tenant's block lists
 * and region blocking (the call flow's screenCaller, on the same number the flow will see), the
 * tenant's caps and balance read-only (capsReached on tenant_usage: the call flow's admission
 * counts the call, not this), FreeSWITCH reachable, then the limits, which count (limits.ts).
 * Then the request row, and `bgapi originate` with a call UUID of our own (origination_uuid):
 * every attempt has its CDR under that UUID, whether the session writes it (the visitor answered)
 * or this module does (busy, no answer, unreachable, or the leg never reached the socket).
 *
 * One owner per CDR: once the visitor's leg reached `&socket(…)` and a call session took it, that
 * session writes the CDR, however late the leg arrived. So the connect watchdog and the sweeper
 * write a `failed` CDR only for a leg that is known not to be served (legState): not taken by a
 * session here, its request not advanced by a session elsewhere, and gone from FreeSWITCH
 * (`uuid_exists` false: while a socket holds the leg, FreeSWITCH keeps the channel). A leg that is
 * still up is waited for; when FreeSWITCH cannot be asked, the watchdog leaves the attempt to the
 * sweeper, which judges by the database alone once the leg could not be waiting any more.
 * The end itself is conditional on dialing/visitor_answered (requests.ts endAttempt) and marks the
 * CDR as owed until spooled; the sweeper writes owed CDRs after CDR_OWED_GRACE_MS.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { capsReached, loadTenantLimits } from '../billing/caps';
import { chargedPeriodStarts, moneyOrNull } from '../billing/usage';
import { hasLimits, withTimeout } from '../calls/call-state';
import { callerNumber } from '../domain/caller-number';
import type { CdrWriter } from '../cdr/writer';
import type { Settings } from '../config';
import { geocode } from '../domain/geo';
import { money } from '../domain/money';
import { identify } from '../domain/routing';
import { screenCaller } from '../domain/screening';
import { EslCommandError } from '../esl/errors';
import { NO_FILTERS } from '../snapshot/build';
import type { ConfigSnapshot } from '../snapshot/types';
import { zonesOf } from '../snapshot/zones';
import { normalizeOrigin, type ClickToCallWidget } from '../snapshot/widgets';
import { unansweredAttemptCdr } from './cdr';
import { ClickToCallError } from './errors';
import { originateCommand } from './leg';
import { admitRequest, clientSubject, deleteExpiredLimits, type LimitCheck } from './limits';
import type { ClickToCallMetrics } from './metrics';
import { checkVisitorNumber } from './number';
import type { JobResult, Originator } from './originator';
import { advanceRequest, clearCdrPending, endAttempt, insertRequest, owedCdrRequests, readRequest, staleRequests, UNSERVED_STATUSES, type RequestRow, type RequestStatus, type VisitorResult } from './requests';

export interface DialerDeps {
  settings: Settings;
  knex: Knex;
  snapshot: () => ConfigSnapshot;
  cdrs: Pick<CdrWriter, 'record'>;
  metrics: ClickToCallMetrics;
  log: Logger;
  clock: () => Date;
  originator: Pick<Originator, 'ready' | 'bgapi' | 'channelExists'>;
  /** host:port FreeSWITCH hands the answered visitor leg to. */
  socketAddress: string;
  /** Is a call session of this daemon serving this request's leg (ClickToCallCalls.isServing)? */
  serving?: (requestId: string) => boolean;
}

/** Where an answered visitor leg is, as far as the daemon can tell (Dialer.legState). */
export type LegState = 'served' | 'alive' | 'gone' | 'unknown';

export interface ClickInput {
  widgetKey: string;
  number: string;
  /** The Origin header, when the browser sent one. */
  origin: string | undefined;
  clientAddress: string;
}

export interface RequestView {
  id: string;
  status: RequestStatus;
  /** answered | busy | no_answer | unreachable | failed, once known. */
  visitor?: VisitorResult;
  /** The CDR outcome, once ended. */
  outcome?: string;
}

/** originate's -ERR cause → what happened to the visitor (FreeSWITCH cause names, switch_channel.c). */
export function visitorResultOf(cause: string): VisitorResult {
  if (cause === 'USER_BUSY') return 'busy';
  if (['NO_ANSWER', 'NO_USER_RESPONSE', 'ALLOTTED_TIMEOUT', 'ORIGINATOR_CANCEL', 'PROGRESS_TIMEOUT'].includes(cause)) return 'no_answer';
  return 'unreachable';
}

export class Dialer {
  private readonly inflight = new Set<Promise<void>>();
  /** Pending connect watchdogs, cut short by stop(). */
  private readonly waits = new Set<() => void>();
  /** The background sweep under way (sweepInBackground). */
  private sweeping: Promise<void> | null = null;

  constructor(private readonly deps: DialerDeps) {}

  async click(input: ClickInput): Promise<RequestView> {
    const { settings, knex, metrics, clock, log } = this.deps;
    const snapshot = this.deps.snapshot();
    const widget = snapshot.widgets.get(input.widgetKey);
    if (!widget) throw new ClickToCallError('CTC_ERR_UNKNOWN_WIDGET');
    if (!widget.enabled) throw new ClickToCallError('CTC_ERR_WIDGET_DISABLED');
    if (!originAllowed(widget, input.origin)) throw new ClickToCallError('CTC_ERR_ORIGIN_NOT_ALLOWED', input.origin === undefined ? 'no_origin_header' : undefined);
    const number = checkVisitorNumber(input.number, { allowInternational: widget.allowInternational });
    if (!number.ok) throw new ClickToCallError(number.code, number.reason);
    const id = identify(snapshot, widget.accessNumber);
    if (id.kind !== 'ok') throw new ClickToCallError('CTC_ERR_UNAVAILABLE', id.kind);
    const tenant = id.tenant;
    const visitor = callerNumber(number.dial);
    const geo = geocode(visitor.number);
    const screening = screenCaller(tenant, snapshot.filtersByTenant.get(tenant.id) ?? NO_FILTERS, visitor, geo);
    if (screening.verdict === 'blocked') throw new ClickToCallError('CTC_ERR_NUMBER_BLOCKED');
    const now = clock();
    const bound = settings.admission.queryTimeoutMs;
    if (hasLimits(tenant)) {
      const capped = await this.db('caps', () => withTimeout('caps (read only)', bound, this.capsReasons(tenant.id, now)));
      if (capped.length > 0) throw new ClickToCallError('CTC_ERR_UNAVAILABLE', capped[0]);
    }
    if (!this.deps.originator.ready) throw new ClickToCallError('CTC_ERR_FREESWITCH_UNAVAILABLE');
    const verdict = await this.db('limits', () => withTimeout('limits', bound * 5, admitRequest(knex, limitChecks(widget, tenant.timezone, number.dial, input.clientAddress, settings), now)));
    if (!verdict.ok) throw new ClickToCallError('CTC_ERR_RATE_LIMITED', verdict.scope, verdict.retryAfterS ?? undefined);

    const requestId = randomUUID();
    const callUuid = randomUUID();
    await this.db('request', () => withTimeout('request insert', bound * 5, insertRequest(knex, {
      requestId, callUuid, widgetId: widget.id, tenantId: tenant.id, accessNumber: widget.accessNumber, visitorNumber: number.dial,
      clientAddress: input.clientAddress, webOrigin: input.origin ?? null, node: settings.node.name, requestedAt: now,
    })));
    const attempt: Attempt = {
      requestId, callUuid, tenantId: tenant.id, widgetId: widget.id, accessNumber: widget.accessNumber, homeAreaCode: id.accessNumber.homeAreaCode, visitor: number.dial, requestedAt: now,
    };
    const command = originateCommand({
      callUuid, requestId, widgetId: widget.id, accessNumber: widget.accessNumber, visitor: number.dial,
      callerIdNumber: widget.callerIdNumber ?? widget.accessNumber, clickedAt: now, ringTimeoutS: settings.clickToCall.ringTimeoutS,
      dialTemplate: settings.dial.stringTemplate, socketAddress: this.deps.socketAddress,
    });
    let job: { result: Promise<JobResult> };
    try {
      job = await this.deps.originator.bgapi(command, (settings.clickToCall.ringTimeoutS + settings.clickToCall.connectTimeoutS + 15) * 1000);
    } catch (err) {
      log.warn({ err: (err as Error).message, request_id: requestId }, 'originate not accepted by FreeSWITCH');
      // -ERR: certainly no call; anything else (no reply, connection lost) may have started one,
      // so the sweeper decides once the visitor could no longer be ringing.
      if (err instanceof EslCommandError) await this.endUnanswered(attempt, 'failed', 'NORMAL_TEMPORARY_FAILURE', 'failed');
      throw new ClickToCallError('CTC_ERR_FREESWITCH_UNAVAILABLE');
    }
    metrics.requests.inc({ result: 'accepted' });
    log.info({ request_id: requestId, call_uuid: callUuid, widget_id: widget.id, tenant_id: tenant.id }, 'click-to-call: dialling the visitor');
    this.track(job.result.then((r) => this.onJob(attempt, r)));
    return { id: requestId, status: 'dialing' };
  }

  /** Where a request is; only for the widget it was made through (else "not found"). */
  async status(requestId: string, widgetKey: string): Promise<RequestView> {
    const widget = this.deps.snapshot().widgets.get(widgetKey);
    const row = await this.db('request', () => withTimeout('request read', this.deps.settings.admission.queryTimeoutMs * 5, readRequest(this.deps.knex, requestId)));
    if (!widget) throw new ClickToCallError('CTC_ERR_NOT_FOUND', 'widget');
    if (!row || row.widgetId !== widget.id) throw new ClickToCallError('CTC_ERR_NOT_FOUND', 'request');
    return { id: row.requestId, status: row.status, ...(row.visitorResult ? { visitor: row.visitorResult } : {}), ...(row.outcome ? { outcome: row.outcome } : {}) };
  }

  /**
   * Ends attempts nobody heard back about (the BACKGROUND_JOB was lost with its connection, or the
   * daemon that placed them stopped), with a CDR; writes the CDRs of ended attempts still owed
   * CDR_OWED_GRACE_MS after their end (the daemon that ended them died before spooling, or its
   * spool refused the write); and ends requests of calls whose daemon died.
   */
  async sweep(now: Date = this.deps.clock()): Promise<number> {
    const { knex, settings } = this.deps;
    const ringing = new Date(now.getTime() - (settings.clickToCall.ringTimeoutS + settings.clickToCall.connectTimeoutS + 30) * 1000);
    // Past the longest call and an hour more, no leg of the request can still be up.
    const talking = new Date(now.getTime() - (settings.calls.maxDurationS + 3600) * 1000);
    let ended = 0;
    for (const row of await staleRequests(knex, UNSERVED_STATUSES, ringing)) {
      const attempt = attemptOf(row, this.deps.snapshot());
      // A leg a session serves, or that FreeSWITCH still has, is not ours to end. A daemon that
      // cannot ask FreeSWITCH at all (API_ENABLED without FS_ESL_PASSWORD: it places no call)
      // leaves the others' legs alone too: a session on another daemon may be serving one after a
      // failed write of its request, and a CDR written here first would take the call's place
      // (cdrs keeps the first under a call UUID). It ends a request only once no call could still
      // last (`talking`). With its inbound socket configured but down (FreeSWITCH restarting, its
      // channels gone with it), an unknown leg is ended as before.
      const state = await this.legState(attempt);
      if (state === 'served' || state === 'alive') continue;
      if (state === 'unknown' && settings.freeswitch.inboundPassword === '' && row.requestedAt > talking) continue;
      if (await this.endUnanswered(attempt, row.visitorResult ?? 'failed', null, 'failed', now)) ended++;
    }
    for (const row of await owedCdrRequests(knex, new Date(now.getTime() - CDR_OWED_GRACE_MS))) {
      const end: AttemptEnd = { endedAt: row.endedAt ?? now, outcome: row.outcome === 'abandoned' ? 'abandoned' : 'failed', cause: row.hangupCause };
      this.deps.log.warn({ request_id: row.requestId }, 'click-to-call attempt ended without its CDR; the sweeper writes it');
      if (await this.writeAttemptCdr(attemptOf(row, this.deps.snapshot()), end)) ended++;
    }
    for (const row of await staleRequests(knex, ['connecting', 'connected'], talking)) {
      if (await advanceRequest(knex, row.requestId, 'ended', { endedAt: now, outcome: 'failed' })) ended++;
    }
    await deleteExpiredLimits(knex, now);
    return ended;
  }

  /**
   * One sweep in the background (the sweeper's interval), unless one is still under way: a slow
   * database never runs two at once. It is waited for like an attempt's handling (stop(), idle()):
   * a sweep that ended a request in the database and had not yet spooled its CDR when the daemon
   * stopped would have found the CDR writer stopped, and the ended request is never swept again.
   */
  sweepInBackground(now?: Date): void {
    if (this.sweeping) return;
    const run = this.sweep(now)
      .then(
        () => undefined,
        (err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'click-to-call sweep failed'),
      )
      .finally(() => {
        this.sweeping = null;
        this.inflight.delete(run);
      });
    this.sweeping = run;
    this.inflight.add(run);
  }

  /**
   * Shutdown: connect watchdogs stop waiting without judging (the leg may still reach a socket;
   * if it does not, the sweeper of any daemon ends the attempt), then every handler settles.
   */
  async stop(): Promise<void> {
    for (const cancel of [...this.waits]) cancel();
    await this.idle();
  }

  /** Settles once every job result being handled now is (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** True when `ms` passed, false when stop() cut the wait short. */
  private wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (elapsed: boolean): void => {
        clearTimeout(timer);
        this.waits.delete(cancel);
        resolve(elapsed);
      };
      const cancel = (): void => done(false);
      const timer = setTimeout(() => done(true), ms);
      this.waits.add(cancel);
    });
  }

  private track(work: Promise<void>): void {
    const p = work.catch((err: unknown) => this.deps.log.error({ err }, 'click-to-call attempt handling failed')).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  private async onJob(attempt: Attempt, result: JobResult): Promise<void> {
    const { metrics, clock, knex, settings } = this.deps;
    if (result.kind === 'lost') return; // the sweeper ends it once the visitor could not be ringing any more
    const now = clock();
    if (result.kind === 'failed') {
      const visitor = visitorResultOf(result.cause);
      metrics.visitorLegs.inc({ result: visitor });
      await this.endUnanswered(attempt, visitor, result.cause, 'abandoned', now);
      return;
    }
    metrics.visitorLegs.inc({ result: 'answered' });
    metrics.visitorAnswerSeconds.observe(Math.max(0, (now.getTime() - attempt.requestedAt.getTime()) / 1000));
    await advanceRequest(knex, attempt.requestId, 'visitor_answered', { visitorAnsweredAt: now, visitorResult: 'answered' });
    // FreeSWITCH now runs &socket(…): the leg should reach an outbound socket (any daemon) within
    // connectTimeoutS. Judged then, and again every connectTimeoutS while FreeSWITCH still has the
    // leg (a daemon slow to take it), up to the longest call; a leg a session took is never judged.
    const stepMs = settings.clickToCall.connectTimeoutS * 1000;
    const giveUp = now.getTime() + settings.calls.maxDurationS * 1000;
    for (;;) {
      if (!(await this.wait(stepMs))) return;
      const state = await this.legState(attempt);
      if (state === 'alive' && clock().getTime() < giveUp) {
        this.deps.log.warn({ request_id: attempt.requestId, socket: this.deps.socketAddress }, 'the answered visitor leg has not reached a call session yet; FreeSWITCH still has it');
        continue;
      }
      // served: its session owns the CDR; unknown (FreeSWITCH cannot be asked) or still alive at the
      // longest call: the sweeper judges later.
      if (state !== 'gone') return;
      this.deps.log.error({ request_id: attempt.requestId, socket: this.deps.socketAddress }, 'the answered visitor leg never reached the outbound socket');
      await this.endUnanswered(attempt, 'answered', 'NORMAL_TEMPORARY_FAILURE', 'failed');
      return;
    }
  }

  /**
   * Where an attempt's leg is: `served` when a call session took it (here: in memory, at once; on
   * another daemon: its request advanced past visitor_answered) or it ended; else FreeSWITCH is
   * asked whether the channel still exists: `alive`, `gone`, or `unknown` when it cannot say.
   */
  async legState(a: Pick<Attempt, 'requestId' | 'callUuid'>): Promise<LegState> {
    const { knex, originator } = this.deps;
    const servedHere = (): boolean => this.deps.serving?.(a.requestId) ?? false;
    if (servedHere()) return 'served';
    const row = await readRequest(knex, a.requestId);
    if (!row || (row.status !== 'dialing' && row.status !== 'visitor_answered')) return 'served';
    const exists = await originator.channelExists(a.callUuid);
    // A session that took the leg while FreeSWITCH was asked: the leg was not gone.
    if (servedHere()) return 'served';
    if (exists === null) return 'unknown';
    return exists ? 'alive' : 'gone';
  }

  /**
   * Ends an attempt that never reached the call flow (only from dialing or visitor_answered: a
   * session that took the leg meanwhile owns the call and its CDR), and writes its CDR: only if
   * this call ended it. The end marks the CDR as owed in the same UPDATE; a CDR not spooled here
   * (the daemon dies, the spool refuses) is written by a sweeper later (sweep).
   */
  private async endUnanswered(a: Attempt, visitor: VisitorResult, cause: string | null, outcome: 'abandoned' | 'failed', now: Date = this.deps.clock()): Promise<boolean> {
    const ended = await endAttempt(this.deps.knex, a.requestId, { endedAt: now, visitorResult: visitor, outcome, hangupCause: cause });
    if (!ended) return false;
    await this.writeAttemptCdr(a, { endedAt: now, outcome, cause });
    return true;
  }

  /**
   * The CDR of an attempt this daemon ended, then the mark cleared; true once done. Exactly one
   * row whoever writes it: cdrs is idempotent by call_uuid, and a CDR already there is not redone.
   */
  private async writeAttemptCdr(a: Attempt, end: AttemptEnd): Promise<boolean> {
    const { knex, cdrs, settings, log } = this.deps;
    try {
      // The call's own CDR already landed (a session elsewhere served it but could not advance the request).
      if (!(await knex('cdrs').where({ call_uuid: a.callUuid }).first('id'))) {
        await cdrs.record(unansweredAttemptCdr({
          callUuid: a.callUuid, tenantId: a.tenantId, widgetId: a.widgetId, accessNumber: a.accessNumber,
          homeAreaCode: a.homeAreaCode, visitor: a.visitor, visitorGeo: geocode(a.visitor), requestedAt: a.requestedAt, endedAt: end.endedAt,
          cause: end.cause ?? 'NORMAL_TEMPORARY_FAILURE', outcome: end.outcome, node: settings.node.name,
        }, this.deps.snapshot()));
      }
      await clearCdrPending(knex, a.requestId);
      return true;
    } catch (err) {
      log.warn({ err: (err as Error).message, request_id: a.requestId }, 'CDR of an ended click-to-call attempt not written; a sweeper writes it');
      return false;
    }
  }

  private async capsReasons(tenantId: number, now: Date): Promise<string[]> {
    const [limits] = await loadTenantLimits(this.deps.knex, [tenantId], { zoneOf: zonesOf(() => this.deps.snapshot().tenants) });
    if (!limits) return [];
    const { day, month } = chargedPeriodStarts(now, limits.zone);
    const rows: Array<{ period_kind: string; period_start: string; calls: unknown; spend: unknown }> = await this.deps.knex('tenant_usage')
      .where({ tenant_id: tenantId })
      .andWhere((q) => void q.where({ period_kind: 'day', period_start: day }).orWhere({ period_kind: 'month', period_start: month }))
      .select('period_kind', 'period_start', 'calls', 'spend');
    const of = (kind: string): { calls: number; spend: number } => {
      const r = rows.find((x) => x.period_kind === kind);
      return { calls: Number(r?.calls ?? 0), spend: moneyOrNull(r?.spend) ?? 0 };
    };
    return capsReached(limits, { callsDay: of('day').calls, callsMonth: of('month').calls, spendDay: money(of('day').spend), spendMonth: money(of('month').spend), liveCost: money(0) }).map((f) => f.reason);
  }

  private async db<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message, what }, 'click-to-call: database did not answer');
      throw new ClickToCallError('CTC_ERR_DATABASE');
    }
  }
}

/** How long an ended attempt's CDR may stay owed before a sweeper writes it (its own writer had a minute). */
export const CDR_OWED_GRACE_MS = 60_000;

/** What an attempt is, as its CDR needs it: the request row's identity, the access number's area code. */
interface Attempt {
  requestId: string;
  callUuid: string;
  tenantId: number;
  widgetId: number;
  accessNumber: string;
  /** The access number's home_area_code (local vs long distance), from the snapshot. */
  homeAreaCode: string | null;
  visitor: string;
  requestedAt: Date;
}

interface AttemptEnd {
  endedAt: Date;
  outcome: 'abandoned' | 'failed';
  cause: string | null;
}

/**
 * An attempt from its request row (the sweeper: the daemon that placed it may be gone). The area
 * code is the access number's in the snapshot, as when the call was placed; an access number no
 * longer configured has none (the call type is then long distance or mobile, never guessed local).
 */
export function attemptOf(row: RequestRow, snapshot: ConfigSnapshot): Attempt {
  const id = identify(snapshot, row.accessNumber);
  return {
    requestId: row.requestId, callUuid: row.callUuid, tenantId: row.tenantId, widgetId: row.widgetId, accessNumber: row.accessNumber,
    homeAreaCode: id.kind === 'unknown_number' ? null : id.accessNumber.homeAreaCode, visitor: row.visitorNumber, requestedAt: row.requestedAt,
  };
}

/** Empty list = any origin. A browser always sends Origin on a cross-origin POST; curl need not. */
export function originAllowed(widget: Pick<ClickToCallWidget, 'allowedOrigins'>, origin: string | undefined): boolean {
  if (widget.allowedOrigins.length === 0) return true;
  const normal = origin === undefined ? null : normalizeOrigin(origin);
  return normal !== null && widget.allowedOrigins.includes(normal);
}

function limitChecks(widget: ClickToCallWidget, zone: string, visitor: string, client: string, settings: Settings): LimitCheck[] {
  const perClient = (n: number): number | null => (n === 0 ? null : n);
  return [
    { scope: 'visitor_minute', subject: visitor, limit: widget.maxPerVisitorMinute, zone },
    { scope: 'visitor_day', subject: visitor, limit: widget.maxPerVisitorDay, zone },
    { scope: 'client_minute', subject: clientSubject(client), limit: perClient(settings.clickToCall.maxPerClientMinute), zone },
    { scope: 'client_day', subject: clientSubject(client), limit: perClient(settings.clickToCall.maxPerClientDay), zone },
    { scope: 'widget_minute', subject: String(widget.id), limit: widget.maxPerWidgetMinute, zone },
    { scope: 'widget_day', subject: String(widget.id), limit: widget.maxPerWidgetDay, zone },
  ];
}
