/**
 * One call, from the socket FreeSWITCH opened to the CDR. The session only coordinates: the
 * decisions come from pure functions in src/domain, the ESL work from EslCallChannel. Whatever
 * happens — caller hangs up at any moment, socket drops, a bug throws — exactly one CDR is made.
 */
import type { Logger } from 'pino';
import type { Settings } from '../config';
import { classifyLeg, chooseRule, huntOutcome, huntPlan, identify, type LegOutcome } from '../domain/routing';
import type { EslCallChannel } from '../esl/call-channel';
import { microseconds } from '../esl/call-channel';
import { CallHungUpError, EslError, SocketClosedError } from '../esl/errors';
import { buildDialString, presentableCallerId } from '../esl/safe';
import type { Metrics, Outcome } from '../metrics';
import type { ConfigSnapshot, RoutingRule, Tenant } from '../snapshot/types';
import { sqlTimestamp, type CdrRecord } from '../cdr/record';
import { systemPrompt } from './prompts';

export interface SessionDeps {
  settings: Settings;
  snapshot: ConfigSnapshot;
  metrics: Metrics;
  log: Logger;
  clock: () => Date;
  random: () => number;
  /** Decides region/schedule conditions of a rule for this call. */
  ruleMatches?: (rule: RoutingRule, tenant: Tenant) => boolean;
}

/** Longest a prompt is expected to play; bounds playback completions. */
const PROMPT_MAX_MS = 120_000;

export class CallSession {
  readonly acceptedAt: Date;
  private readonly acceptedHr = process.hrtime.bigint();
  private outcome: Outcome = 'failed';
  private tenantId: number | null = null;
  private groupId: number | null = null;
  private answeredBy: string | null = null;
  private numberKind: 'hotline' | 'switchboard' | 'unknown' = 'unknown';
  private firstLegDialled = false;
  private readonly log: Logger;

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
      await this.channel.hangup(this.outcome === 'failed' ? 'NORMAL_TEMPORARY_FAILURE' : 'NORMAL_CLEARING');
    } catch (err) {
      this.log.warn({ err }, 'hangup at end of call failed');
    }
    await this.channel.waitForEnd(this.deps.settings.esl.replyTimeoutMs);
    this.channel.close();
    return this.buildCdr();
  }

  private async flow(): Promise<void> {
    await this.channel.subscribe();
    const { snapshot } = this.deps;
    const id = identify(snapshot, this.dialed);
    if (id.kind === 'unknown_number' || id.kind === 'number_disabled' || id.kind === 'tenant_closed') {
      this.tenantId = id.kind === 'unknown_number' ? null : id.tenant.id;
      this.log.info({ dialed: this.dialed, reason: id.kind }, 'number not in service');
      await this.announceAndHangup('not_in_service', 'UNALLOCATED_NUMBER', 'announced');
      return;
    }
    this.tenantId = id.tenant.id;
    this.numberKind = id.accessNumber.kind;
    if (id.kind === 'tenant_suspended') {
      await this.announceAndHangup('suspended', 'CALL_REJECTED', 'announced');
      return;
    }
    const { tenant, accessNumber } = id;
    const rules = snapshot.rulesByTenant.get(tenant.id) ?? [];
    const matches = this.deps.ruleMatches ?? ((rule: RoutingRule) => rule.regions === null && rule.scheduleId === null);
    const choice = chooseRule(rules, accessNumber.id, (rule) => matches(rule, tenant), this.deps.random);
    if (!choice) {
      this.log.warn({ tenant_id: tenant.id }, 'no routing rule matches this call');
      await this.announceAndHangup('service_unavailable', 'NORMAL_TEMPORARY_FAILURE', 'failed');
      return;
    }
    const { rule } = choice;
    this.log.debug({ rule_id: rule.id, action: rule.action }, 'routing rule chosen');
    switch (rule.action) {
      case 'group':
        await this.hunt(tenant, rule.targetId!);
        return;
      case 'announce': {
        const prompt = snapshot.prompts.get(rule.targetId!);
        await this.play(prompt?.file ?? systemPrompt(this.deps.settings, 'service_unavailable'));
        this.outcome = 'announced';
        await this.channel.hangup('NORMAL_CLEARING');
        return;
      }
      case 'reject':
        this.outcome = 'blocked';
        await this.channel.hangup('CALL_REJECTED');
        return;
      default:
        // ivr, switchboard and voicemail are carried out by their own flows (the switchboard
        // issue); until a tenant's rule can be served, the caller hears why, and the CDR says failed.
        this.log.warn({ rule_id: rule.id, action: rule.action }, 'routing action not available on this daemon');
        await this.announceAndHangup('service_unavailable', 'NORMAL_TEMPORARY_FAILURE', 'failed');
    }
  }

  /** Hunts the group and its failover chain; nobody answering ends in an announcement. */
  private async hunt(tenant: Tenant, groupId: number): Promise<void> {
    const { settings, snapshot } = this.deps;
    const steps = huntPlan(snapshot, tenant, groupId, settings.calls.maxFailoverGroups);
    // A failed bridge hangs the caller up unless continue_on_fail is set; hangup_after_bridge
    // ends the caller's leg when an answered bridge ends (FREESWITCH.md "sendmsg and execute").
    await this.channel.setVariables({ continue_on_fail: 'true', hangup_after_bridge: 'true' });
    const callerId = presentableCallerId(this.caller);
    const legs: LegOutcome[] = [];
    for (const step of steps) {
      this.groupId = step.group.id;
      for (const destination of step.destinations) {
        const vars: Record<string, string | number> = { leg_timeout: step.ringTimeoutS };
        if (callerId) vars.origination_caller_id_number = callerId;
        const dialString = buildDialString(settings.dial.stringTemplate, destination.number, vars);
        if (!this.firstLegDialled) {
          this.firstLegDialled = true;
          this.deps.metrics.callSetupSeconds.observe(Number(process.hrtime.bigint() - this.acceptedHr) / 1e9);
        }
        const result = await this.channel.bridge(dialString, step.ringTimeoutS * 1000 + settings.calls.maxDurationS * 1000);
        const leg = classifyLeg(result.dialStatus, result.disposition);
        legs.push(leg);
        this.deps.metrics.legs.inc({ group: this.deps.metrics.groupLabel(tenant.id, step.group.id), result: leg });
        this.log.info({ group_id: step.group.id, destination: destination.number, leg, disposition: result.disposition }, 'leg finished');
        if (leg === 'answered') {
          this.deps.metrics.timeToAnswerSeconds.observe(Number(process.hrtime.bigint() - this.acceptedHr) / 1e9);
          this.answeredBy = destination.number;
          this.outcome = 'answered';
          return;
        }
        if (leg === 'cancelled' || this.channel.hungUp) {
          this.outcome = 'abandoned';
          return;
        }
      }
    }
    const outcome = huntOutcome(legs);
    this.outcome = outcome;
    await this.announceAndHangup(outcome === 'busy' ? 'all_busy' : 'nobody_answered', outcome === 'busy' ? 'USER_BUSY' : 'NO_ANSWER', outcome);
  }

  private async announceAndHangup(prompt: string, cause: string, outcome: Outcome): Promise<void> {
    this.outcome = outcome;
    await this.play(systemPrompt(this.deps.settings, prompt));
    await this.channel.hangup(cause);
  }

  private async play(file: string): Promise<void> {
    const response = await this.channel.playback(file, PROMPT_MAX_MS);
    if (response !== 'FILE PLAYED') this.log.warn({ file, response }, 'prompt did not play');
  }

  private onFlowError(err: unknown): void {
    if (err instanceof CallHungUpError || (err instanceof SocketClosedError && this.channel.hungUp)) {
      // The caller left mid-step: that is how many calls end, not an error.
      if (this.outcome === 'failed' || !['answered', 'busy', 'no_answer'].includes(this.outcome)) this.outcome = 'abandoned';
      return;
    }
    this.outcome = 'failed';
    const kind = err instanceof EslError ? err.code : 'BUG';
    this.log.error({ err, kind }, 'call flow failed');
  }

  private buildCdr(): CdrRecord {
    const ch = this.channel;
    const final = ch.hangupComplete;
    const header = (name: string): string | undefined => final?.getHeader(name) ?? ch.data[name];
    const now = this.deps.clock();
    const startedUs = microseconds(header('Caller-Channel-Created-Time'));
    const answeredUs = microseconds(final?.getHeader('Caller-Channel-Answered-Time')) ?? ch.answeredAtUs;
    const endedUs = microseconds(final?.getHeader('Caller-Channel-Hangup-Time'));
    const started = startedUs ? new Date(startedUs / 1000) : this.acceptedAt;
    const ended = endedUs ? new Date(endedUs / 1000) : now;
    const answered = answeredUs ? new Date(answeredUs / 1000) : null;
    const billsecVar = final?.variable('billsec');
    const billsec = billsecVar && /^\d+$/.test(billsecVar) ? Number(billsecVar) : answered ? Math.max(0, Math.round((ended.getTime() - answered.getTime()) / 1000)) : 0;
    return {
      call_uuid: ch.uuid,
      tenant_id: this.tenantId,
      access_number: this.dialed.replace(/[^0-9+]/g, '').slice(0, 32),
      caller: this.caller,
      caller_region: null,
      started_at: sqlTimestamp(started),
      answered_at: answered ? sqlTimestamp(answered) : null,
      ended_at: sqlTimestamp(ended),
      duration_s: Math.max(0, Math.round((ended.getTime() - started.getTime()) / 1000)),
      billsec,
      outcome: this.outcome,
      hangup_cause: ch.hangupCause ?? final?.getHeader('Hangup-Cause') ?? null,
      answered_by: this.answeredBy,
      group_id: this.groupId,
      ivr_path: null,
      cost: null,
      recording_path: null,
      node: this.deps.settings.node.name,
    };
  }

  get kindLabel(): string {
    return this.numberKind;
  }
}
