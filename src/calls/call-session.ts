/**
 * One call, from the socket FreeSWITCH opened to the CDR. The session only coordinates the
 * steps (src/calls/steps), which carry out decisions made by pure functions in src/domain.
 * Whatever happens — the caller hangs up at any moment, the socket drops, a bug throws — exactly
 * one CDR is made.
 */
import { callPricing, callCutPlan, CUT_HANGUP_CAUSE, rateCdr, warningPrompt } from '../billing/rate-cdr';
import type { LiveCall } from '../billing/live-calls';
import { readSpendHeadroom } from '../billing/usage';
import type { CdrRecord } from '../cdr/record';
import { withTimeout } from './call-state';
import { toDbTimestamp } from '../db/connect';
import { geocode, isGeoDataLoaded, normalizeCaller, type CallerGeo } from '../domain/geo';
import { checkRule, chooseRule, identify } from '../domain/routing';
import { microseconds, type EslCallChannel } from '../esl/call-channel';
import { CallHungUpError, EslError, SocketClosedError, UnsafeValueError } from '../esl/errors';
import { CallContext, type CallDeps } from './context';
import { admit } from './steps/admit';
import { greet } from './steps/greet';
import { huntGroup } from './steps/hunt';
import { runMenu } from './steps/ivr';
import { checkPin } from './steps/pin';
import { startRecording } from './steps/record';
import { switchboard } from './steps/switchboard';
import { leaveVoicemail } from './steps/voicemail';
import { screen } from './steps/screen';
import { addClickToCall } from '../clicktocall/cdr';
import { greetVisitor } from '../clicktocall/session';
import { money } from '../domain/money';

export type SessionDeps = CallDeps;

export class CallSession {
  readonly acceptedAt: Date;
  readonly ctx: CallContext;

  constructor(
    private readonly channel: EslCallChannel,
    private readonly deps: CallDeps,
  ) {
    this.acceptedAt = deps.clock();
    this.ctx = new CallContext(channel, deps);
  }

  get dialed(): string {
    return this.ctx.dialed;
  }

  get kindLabel(): string {
    return this.ctx.accessNumber?.kind ?? 'unknown';
  }

  /** Runs the call to its end and returns its CDR. Never throws. */
  async run(): Promise<CdrRecord> {
    try {
      await this.flow();
    } catch (err) {
      this.onFlowError(err);
    }
    // Whatever the flow did, the call must end: hang up if it is still up, then wait (bounded)
    // for CHANNEL_HANGUP_COMPLETE so the CDR gets FreeSWITCH's own times.
    try {
      await this.channel.hangup(this.ctx.outcome === 'failed' ? 'NORMAL_TEMPORARY_FAILURE' : 'NORMAL_CLEARING');
    } catch (err) {
      this.ctx.log.warn({ err }, 'hangup at end of call failed');
    }
    await this.channel.waitForEnd(this.deps.settings.esl.replyTimeoutMs);
    this.channel.close();
    const cdr = this.buildCdr();
    if (this.ctx.clickToCall) await this.deps.clickToCall?.finished(this.ctx, cdr);
    return cdr;
  }

  private async flow(): Promise<void> {
    const ctx = this.ctx;
    await this.channel.subscribe();
    if (ctx.clickToCall) this.deps.clickToCall?.started(ctx);
    const id = identify(ctx.snapshot, ctx.dialed);
    if (id.kind === 'unknown_number' || id.kind === 'number_disabled' || id.kind === 'tenant_closed') {
      ctx.tenant = id.kind === 'unknown_number' ? null : id.tenant;
      ctx.log.info({ dialed: ctx.dialed, reason: id.kind }, 'number not in service');
      await ctx.announceAndHangup('not_in_service', 'UNALLOCATED_NUMBER', 'announced');
      return;
    }
    ctx.tenant = id.tenant;
    ctx.accessNumber = id.accessNumber;
    if (id.kind === 'tenant_suspended') {
      await ctx.announceAndHangup('suspended', 'CALL_REJECTED', 'announced');
      return;
    }
    ctx.geo = callerGeo(ctx.caller);
    ctx.pricing = callPricing(ctx.snapshot, id.tenant.id, ctx.geo, id.accessNumber.homeAreaCode);
    // A channel handed over already answered (a click-to-call visitor leg) sends no CHANNEL_ANSWER.
    if (this.channel.answeredAtUs !== null) this.armSpendGuard();
    else this.channel.onAnswer(() => this.armSpendGuard());
    if (!(await screen(ctx))) return;
    if (!(await admit(ctx))) return;
    // The tenant's own web page invited the visitor: no PIN; they hear the widget's answer prompt.
    if (ctx.clickToCall) await greetVisitor(ctx);
    else if (!(await checkPin(ctx))) return;
    await greet(ctx);
    await this.route();
  }

  private async route(): Promise<void> {
    const ctx = this.ctx;
    const tenant = ctx.tenant!;
    const rules = ctx.snapshot.rulesByTenant.get(tenant.id) ?? [];
    const now = this.deps.clock();
    const choice = chooseRule(rules, ctx.accessNumber!.id, (rule) => checkRule(ctx.snapshot, tenant, rule, ctx.geo!, now).matches, this.deps.random);
    if (!choice) {
      if (ctx.accessNumber!.kind === 'switchboard') {
        // A switchboard number without rules is just that: the switchboard.
        await startRecording(ctx);
        await switchboard(ctx);
        return;
      }
      ctx.log.warn({ tenant_id: tenant.id }, 'no routing rule matches this call');
      await ctx.announceAndHangup('service_unavailable', 'NORMAL_TEMPORARY_FAILURE', 'failed');
      return;
    }
    const { rule } = choice;
    ctx.log.debug({ rule_id: rule.id, action: rule.action }, 'routing rule chosen');
    if (rule.action !== 'reject' && rule.action !== 'announce') await startRecording(ctx);
    switch (rule.action) {
      case 'group':
        await huntGroup(ctx, rule.targetId!);
        return;
      case 'announce':
        await ctx.announceAndHangup(ctx.playable(rule.targetId, 'service_unavailable'), 'NORMAL_CLEARING', 'announced');
        return;
      case 'reject':
        ctx.outcome = 'blocked';
        await this.channel.hangup('CALL_REJECTED');
        return;
      case 'ivr':
        await runMenu(ctx, rule.targetId!);
        return;
      case 'switchboard':
        await switchboard(ctx);
        return;
      case 'voicemail':
        await leaveVoicemail(ctx, rule.targetId);
        return;
    }
  }

  /** What the live-call guard and the caps job need to know about this call right now. */
  liveCall(): LiveCall | null {
    const ctx = this.ctx;
    if (!ctx.tenant || !ctx.pricing || this.channel.hungUp) return null;
    const answeredUs = this.channel.answeredAtUs;
    return {
      uuid: this.channel.uuid,
      tenantId: ctx.tenant.id,
      startedAt: this.acceptedAt,
      answeredAt: answeredUs ? new Date(answeredUs / 1000) : null,
      callType: ctx.pricing.callType,
      rate: ctx.pricing.rate,
      admitted: ctx.admitted,
    };
  }

  /**
   * Like mod_nibblebill: when an answered call of a tenant with a prepaid balance or a spend cap
   * would run the money out, warn the caller (uuid_broadcast over this call's own `full` socket)
   * and hang up (OUTGOING_CALL_BARRED) just before it does. Other calls of the tenant are counted
   * by the per-minute live-call guard across every daemon.
   */
  private armSpendGuard(): void {
    const ctx = this.ctx;
    const tenant = ctx.tenant;
    if (!tenant || !ctx.pricing?.rate || (tenant.balance === null && tenant.maxSpendDay === null && tenant.maxSpendMonth === null)) return;
    const { knex, clock, settings } = this.deps;
    const headroom = withTimeout('spend headroom', settings.admission.queryTimeoutMs, readSpendHeadroom(knex, tenant.id, clock())).catch(() => null);
    void headroom.then((headroom) => {
      // A click-to-call runs two legs at this rate (the visitor's and the agent's): half the money lasts.
      const plan = callCutPlan(ctx.pricing!.rate, ctx.clickToCall && headroom !== null ? money(Math.floor(headroom / 2)) : headroom);
      if (plan.cutAfterS === null || this.channel.hungUp) return;
      ctx.log.info({ warn_after_s: plan.warnAfterS, cut_after_s: plan.cutAfterS }, 'spend guard armed');
      const timers = [
        plan.warnAfterS === null ? null : setTimeout(() => {
          void this.channel.command(`bgapi uuid_broadcast ${this.channel.uuid} ${warningPrompt(settings)} both`).catch(() => undefined);
        }, plan.warnAfterS * 1000),
        setTimeout(() => {
          ctx.log.warn('balance or spend cap reached: cutting the call');
          void this.channel.hangupNow(CUT_HANGUP_CAUSE).catch(() => undefined);
        }, plan.cutAfterS * 1000),
      ];
      this.channel.onHangupEvent(() => timers.forEach((t) => t && clearTimeout(t)));
    });
  }

  private onFlowError(err: unknown): void {
    const ctx = this.ctx;
    if (err instanceof CallHungUpError || (err instanceof SocketClosedError && this.channel.hungUp)) {
      // The caller left mid-step: that is how many calls end, not an error.
      if (!['answered', 'busy', 'no_answer', 'announced', 'blocked', 'capped', 'pin_failed'].includes(ctx.outcome)) ctx.outcome = 'abandoned';
      return;
    }
    ctx.outcome = 'failed';
    if (err instanceof SocketClosedError) this.deps.metrics.eslErrors.inc({ kind: 'socket_closed' });
    if (err instanceof UnsafeValueError) this.deps.metrics.eslErrors.inc({ kind: 'unsafe_value' });
    ctx.log.error({ err, kind: err instanceof EslError ? err.code : 'BUG' }, 'call flow failed');
  }

  private buildCdr(): CdrRecord {
    const ctx = this.ctx;
    const ch = this.channel;
    const final = ch.hangupComplete;
    const now = this.deps.clock();
    const startedUs = microseconds(final?.getHeader('Caller-Channel-Created-Time') ?? ch.data['Caller-Channel-Created-Time']);
    const answeredUs = microseconds(final?.getHeader('Caller-Channel-Answered-Time')) ?? ch.answeredAtUs;
    const endedUs = microseconds(final?.getHeader('Caller-Channel-Hangup-Time'));
    const started = startedUs ? new Date(startedUs / 1000) : this.acceptedAt;
    const ended = endedUs ? new Date(endedUs / 1000) : now;
    const answered = answeredUs ? new Date(answeredUs / 1000) : null;
    const billsecVar = final?.variable('billsec');
    const billsec = billsecVar && /^\d+$/.test(billsecVar) ? Number(billsecVar) : answered ? Math.max(0, Math.round((ended.getTime() - answered.getTime()) / 1000)) : 0;
    const cdr: CdrRecord = {
      call_uuid: ch.uuid,
      tenant_id: ctx.tenant?.id ?? null,
      access_number: ctx.dialed.replace(/[^0-9+]/g, '').slice(0, 32),
      caller: ctx.caller,
      caller_region: regionText(ctx.geo),
      started_at: toDbTimestamp(started),
      answered_at: answered ? toDbTimestamp(answered) : null,
      ended_at: toDbTimestamp(ended),
      duration_s: Math.max(0, Math.round((ended.getTime() - started.getTime()) / 1000)),
      billsec,
      outcome: ctx.outcome,
      hangup_cause: ch.hangupCause ?? final?.getHeader('Hangup-Cause') ?? null,
      answered_by: ctx.answeredBy,
      group_id: ctx.groupId,
      ivr_path: ctx.ivrPath.length > 0 ? ctx.ivrPath.join('>') : null,
      cost: null,
      recording_path: ctx.recordingPath,
      node: this.deps.settings.node.name,
      admitted: ctx.admitted,
    };
    if (ctx.tenant && ctx.geo) {
      const rated = rateCdr(ctx.snapshot, cdr, ctx.geo, ctx.accessNumber?.homeAreaCode ?? null);
      cdr.cost = rated.cost;
      cdr.call_type = rated.callType;
    }
    if (ctx.clickToCall) addClickToCall(cdr, ctx.clickToCall, ctx.snapshot, ctx.geo ?? callerGeo(ctx.caller), ctx.accessNumber?.homeAreaCode ?? null);
    return cdr;
  }
}

/** Geography of the caller; an unusable number (or data not loaded) is simply unknown. */
function callerGeo(caller: string): CallerGeo {
  if (isGeoDataLoaded()) return geocode(caller);
  // Without the geocoding data the number itself still tells whether the caller is anonymous.
  return { e164: normalizeCaller(caller), country: null, province: null, city: null, areaCode: null, isMobile: false, description: null };
}

function regionText(geo: CallerGeo | null): string | null {
  if (!geo) return null;
  return geo.description ?? geo.country ?? null;
}
