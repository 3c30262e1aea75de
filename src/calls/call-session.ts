/**
 * One call, from the socket FreeSWITCH opened to the CDR. The session takes the call (the
 * handled flag), asks plan.ts what the call will do, and carries the plan out with the steps
 * (src/calls/steps, through run-action.ts). Whatever happens — the caller hangs up at any moment,
 * the socket drops, a bug throws — exactly one CDR is made.
 */
import { rateCdr, CUT_HANGUP_CAUSE } from '../billing/rate-cdr';
import type { LiveCall } from '../billing/live-calls';
import { readSpendHeadroom } from '../billing/usage';
import type { CdrRecord } from '../cdr/record';
import { toDbTimestamp } from '../db/connect';
import type { CallerGeo } from '../domain/geo';
import { microseconds, type EslCallChannel } from '../esl/call-channel';
import { CallHungUpError, EslError, SocketClosedError, UnsafeValueError } from '../esl/errors';
import { Call, CallFacts, type IdentifiedCall } from './call';
import { withTimeout } from './call-state';
import type { CallDeps } from './context';
import { planCall, type CallPlan } from './plan';
import { PromptPlayer, systemPrompt, type PromptRef } from './prompt-player';
import { runAction } from './run-action';
import { SpendGuard, type GuardTimers } from './spend-guard';
import { admit } from './steps/admit';
import { checkPin } from './steps/pin';
import { refuse } from './steps/refuse';

export interface SessionDeps extends CallDeps {
  /** Timers of the spend guard (tests run them on a fake clock). */
  guardTimers?: GuardTimers;
}

export class CallSession {
  readonly acceptedAt: Date;
  readonly facts = new CallFacts();
  private readonly acceptedHr = process.hrtime.bigint();
  private identified: IdentifiedCall | null = null;
  private guard: SpendGuard | null = null;
  private readonly log: CallDeps['log'];

  constructor(
    private readonly channel: EslCallChannel,
    private readonly deps: SessionDeps,
  ) {
    this.acceptedAt = deps.clock();
    this.log = deps.log.child({ call_uuid: channel.uuid });
  }

  get caller(): string {
    return this.channel.data['Caller-Caller-ID-Number'] ?? '';
  }

  get dialed(): string {
    return this.channel.data['Caller-Destination-Number'] ?? '';
  }

  get kindLabel(): string {
    return this.identified?.accessNumber.kind ?? 'unknown';
  }

  /** Runs the call to its end and returns its CDR. Never throws. */
  async run(): Promise<CdrRecord> {
    try {
      await this.flow();
    } catch (err) {
      this.onFlowError(err);
    }
    this.guard?.stop();
    // Whatever the flow did, the call must end: hang up if it is still up, then wait (bounded)
    // for CHANNEL_HANGUP_COMPLETE so the CDR gets FreeSWITCH's own times.
    try {
      await this.channel.hangup(this.facts.outcome === 'failed' ? 'NORMAL_TEMPORARY_FAILURE' : 'NORMAL_CLEARING');
    } catch (err) {
      this.log.warn({ err }, 'hangup at end of call failed');
    }
    await this.channel.waitForEnd(this.deps.settings.esl.replyTimeoutMs);
    this.channel.close();
    return this.buildCdr();
  }

  private async flow(): Promise<void> {
    // Subscribe and set hotline_handled=true in one burst, before anything the caller hears.
    await this.channel.claim();
    const plan = planCall(this.deps.snapshot, { dialed: this.dialed, caller: this.caller, at: this.deps.clock() }, this.deps.random);
    await this.carryOut(plan);
  }

  private async carryOut(plan: CallPlan): Promise<void> {
    const prompts = new PromptPlayer(this.channel, this.deps, this.log);
    switch (plan.kind) {
      case 'not_in_service':
        this.facts.tenantId = plan.tenant?.id ?? null;
        this.log.info({ dialed: this.dialed, reason: plan.reason }, 'number not in service');
        this.facts.outcome = 'announced';
        await prompts.play([systemPrompt('not_in_service')]);
        await this.channel.hangup('UNALLOCATED_NUMBER');
        return;
      case 'suspended':
        this.facts.tenantId = plan.tenant.id;
        this.facts.outcome = 'announced';
        await prompts.play([systemPrompt('suspended')]);
        await this.channel.hangup('CALL_REJECTED');
        return;
      case 'blocked': {
        const call = this.identify(plan.call, null);
        call.log.info({ reason: plan.screening.reason }, 'caller blocked');
        await refuse(call, 'blocked', plan.call.tenant.blockedPromptId);
        return;
      }
      case 'serve': {
        const call = this.identify(plan.call, plan.greeting.prompt);
        if (!(await admit(call))) return;
        if (plan.pin && !(await checkPin(call))) return;
        call.log.debug({ action: plan.route.action.kind, rule_id: plan.route.rule?.id ?? null, reason: plan.route.reason }, 'route');
        await runAction(call, plan.route.action);
        return;
      }
      default: {
        const _never: never = plan;
        return _never;
      }
    }
  }

  /** From here on the call is typed: tenant, access number, geography, pricing. */
  private identify(id: IdentifiedCall, greeting: PromptRef | null): Call {
    this.identified = id;
    this.facts.tenantId = id.tenant.id;
    this.facts.geo = id.geo;
    const log = this.log.child({ tenant_id: id.tenant.id });
    const call = new Call(id, this.channel, this.facts, this.deps, log, greeting, this.acceptedHr);
    this.armSpendGuard(call);
    return call;
  }

  /**
   * Tenants with a prepaid balance or a spend cap: warn and cut the call before the money runs
   * out, counted from the answer (spend-guard.ts). Other calls of the tenant are counted by the
   * per-minute live-call job across every daemon.
   */
  private armSpendGuard(call: Call): void {
    const { tenant, pricing } = call.id;
    const rate = pricing.rate;
    if (!rate || (tenant.balance === null && tenant.maxSpendDay === null && tenant.maxSpendMonth === null)) return;
    const { knex, clock, settings } = this.deps;
    const guard = new SpendGuard({
      rate,
      readHeadroom: () => withTimeout('spend headroom', settings.admission.queryTimeoutMs, readSpendHeadroom(knex, tenant.id, clock())),
      warn: () => this.channel.broadcast(call.prompts.file(systemPrompt('capped'))),
      cut: () => this.channel.kill(CUT_HANGUP_CAUSE),
      log: call.log,
      timers: this.deps.guardTimers,
    });
    this.guard = guard;
    this.channel.onAnswer(() => void guard.answered());
    this.channel.onHangupEvent(() => guard.stop());
  }

  /** What the live-call guard and the caps job need to know about this call right now. */
  liveCall(): LiveCall | null {
    const id = this.identified;
    if (!id || this.channel.hungUp) return null;
    const answeredUs = this.channel.answeredAtUs;
    return {
      uuid: this.channel.uuid,
      tenantId: id.tenant.id,
      startedAt: this.acceptedAt,
      answeredAt: answeredUs ? new Date(answeredUs / 1000) : null,
      callType: id.pricing.callType,
      rate: id.pricing.rate,
      admitted: this.facts.admitted,
    };
  }

  private onFlowError(err: unknown): void {
    if (err instanceof CallHungUpError || (err instanceof SocketClosedError && this.channel.hungUp)) {
      // The caller left mid-step: that is how many calls end, not an error.
      if (!['answered', 'busy', 'no_answer', 'announced', 'blocked', 'capped', 'pin_failed'].includes(this.facts.outcome)) this.facts.outcome = 'abandoned';
      return;
    }
    this.facts.outcome = 'failed';
    if (err instanceof SocketClosedError) this.deps.metrics.eslErrors.inc({ kind: 'socket_closed' });
    if (err instanceof UnsafeValueError) this.deps.metrics.eslErrors.inc({ kind: 'unsafe_value' });
    this.log.error({ err, kind: err instanceof EslError ? err.code : 'BUG' }, 'call flow failed');
  }

  private buildCdr(): CdrRecord {
    const facts = this.facts;
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
      tenant_id: facts.tenantId,
      access_number: this.dialed.replace(/[^0-9+]/g, '').slice(0, 32),
      caller: this.caller,
      caller_region: regionText(facts.geo),
      started_at: toDbTimestamp(started),
      answered_at: answered ? toDbTimestamp(answered) : null,
      ended_at: toDbTimestamp(ended),
      duration_s: Math.max(0, Math.round((ended.getTime() - started.getTime()) / 1000)),
      billsec,
      outcome: facts.outcome,
      hangup_cause: ch.hangupCause ?? final?.getHeader('Hangup-Cause') ?? null,
      answered_by: facts.answeredBy,
      group_id: facts.groupId,
      ivr_path: facts.ivrPath.length > 0 ? facts.ivrPath.join('>') : null,
      cost: null,
      recording_path: facts.recordingPath,
      node: this.deps.settings.node.name,
      admitted: facts.admitted,
    };
    const id = this.identified;
    if (id) {
      const rated = rateCdr(this.deps.snapshot, cdr, id.geo, id.accessNumber.homeAreaCode);
      cdr.cost = rated.cost;
      cdr.call_type = rated.callType;
    }
    return cdr;
  }
}

function regionText(geo: CallerGeo | null): string | null {
  if (!geo) return null;
  return geo.description ?? geo.country ?? null;
}
