/**
 * One call, from the socket FreeSWITCH opened to the CDR. The session takes the call (the
 * handled flag), asks plan.ts what the call will do, and carries the plan out with the steps
 * (src/calls/steps, through run-action.ts). Whatever happens — the caller hangs up at any moment,
 * the socket drops, a bug throws — exactly one CDR is made.
 *
 * A click-to-call visitor leg (recognised by the call server, src/clicktocall/leg.ts) is the same
 * call with the visitor as the caller and the widget's access number as the dialled number; it
 * arrives answered, its plan has the widget's answer prompt and no PIN, its spend guard counts two
 * legs, its CDR says so (origin, widget, ring time, the visitor leg's cost), and its request row
 * follows the call (src/clicktocall/session.ts).
 */
import { billedLegs, CUT_HANGUP_CAUSE } from '../billing/rate-cdr';
import type { ClickToCallLeg } from '../clicktocall/leg';
import type { ClickToCallCalls, RequestProgress } from '../clicktocall/session';
import type { LiveCall } from '../billing/live-calls';
import { chargedPeriodStarts, sharedSpendLeft } from '../billing/usage';
import { sendWarning } from '../billing/warning';
import type { CallJournal, JournalEntry } from '../cdr/journal';
import type { CdrRecord } from '../cdr/record';
import { callerNumber, type CallerNumber } from '../domain/caller-number';
import type { EslCallChannel } from '../esl/call-channel';
import { CallHungUpError, EslError, SocketClosedError, UnsafeValueError } from '../esl/errors';
import { Call, CallFacts, type IdentifiedCall } from './call';
import { withTimeout } from './call-state';
import type { CallDeps } from './context';
import { callCdr, failureText } from './build-cdr';
import { chargedStart } from './cdr-times';
import { journaledLeg, type JournaledCall } from './journaled-call';
import { numberKindLabel, openingPrompts, planCall, type CallPlan, type NumberKindLabel } from './plan';
import { PromptPlayer, systemPrompt, type PromptRef } from './prompt-player';
import { runAction } from './run-action';
import { SpendGuard, type GuardTimers, type SpendGroups } from './spend-guard';
import { admit } from './steps/admit';
import { BRIDGING_VARIABLES, servedCallVariables } from './steps/hunt';
import { checkPin } from './steps/pin';
import { refuse } from './steps/refuse';

/** The hangup cause of a click-to-call leg answered after its attempt was given up. */
export const LATE_LEG_CAUSE = 'ORIGINATOR_CANCEL';

export interface SessionDeps extends CallDeps {
  /** Timers of the spend guard (tests run them on a fake clock). */
  guardTimers?: GuardTimers;
  /** The tenants' answered calls on this daemon, a group a tenant: they spend its money together (one per daemon). */
  spendGroups: SpendGroups;
  /** Click-to-call request state, for visitor legs (src/clicktocall/session.ts). */
  clickToCall?: ClickToCallCalls;
  /** Keeps the call's CDR facts for a restart if the daemon stops outright (src/cdr/journal.ts). */
  journal?: CallJournal;
}

export class CallSession {
  readonly acceptedAt: Date;
  readonly facts = new CallFacts();
  private readonly acceptedHr = process.hrtime.bigint();
  private identified: IdentifiedCall | null = null;
  private guard: SpendGuard | null = null;
  private progress: RequestProgress | null = null;
  /** A click-to-call leg answered after its attempt was given up: killed, no CDR (dropGivenUpLeg). */
  private givenUp = false;
  private readonly log: CallDeps['log'];
  private readonly callerId: CallerNumber;
  /** The number_kind label of every counter of this call, decided once (numberKindLabel). */
  readonly numberKind: NumberKindLabel;
  /** The daemon's own clock when it saw the answer and the hang-up (the CDR's fallback times). */
  private ownAnsweredAt: Date | null = null;
  private ownHungUpAt: Date | null = null;
  /** The call in the journal, from its first note. */
  private journalEntry: JournalEntry | null = null;

  /** `leg`: a click-to-call visitor leg (call-server.ts recognises it from the channel data). */
  constructor(
    private readonly channel: EslCallChannel,
    private readonly deps: SessionDeps,
    private readonly leg: ClickToCallLeg | null = null,
  ) {
    this.acceptedAt = deps.clock();
    this.log = deps.log.child({ call_uuid: channel.uuid });
    this.callerId = callerNumber(leg?.visitor ?? channel.data['Caller-Caller-ID-Number']);
    deps.metrics.countCallerNumber(this.callerId.form);
    this.numberKind = numberKindLabel(deps.snapshot, this.dialed);
    // A leg handed over answered (click-to-call) gets no CHANNEL_ANSWER: answered as accepted.
    if (channel.answeredAtUs !== null) this.ownAnsweredAt = this.acceptedAt;
    // A click-to-call leg is journaled once its attempt's verdict lets it be served (identify): a
    // leg answered after its attempt was given up gets no CDR of its own (dropGivenUpLeg).
    if (!leg) this.journalFacts();
    channel.onAnswer(() => {
      this.ownAnsweredAt ??= deps.clock();
      this.journalFacts();
    });
    channel.onHangupEvent(() => {
      this.ownHungUpAt ??= deps.clock();
      this.journalFacts();
    });
  }

  /**
   * Who calls. On a click-to-call leg FreeSWITCH puts the visitor's number in both the caller and
   * the destination fields (the originate's caller-ID flip): the leg's own variables say who is who.
   * Normalised once (callerNumber): the raw caller ID goes nowhere — not the plan, the CDR, a log
   * line or a command.
   */
  get caller(): string {
    return this.callerId.number;
  }

  /** The number dialled; for a click-to-call, the widget's access number. */
  get dialed(): string {
    return this.leg?.accessNumber ?? this.channel.data['Caller-Destination-Number'] ?? '';
  }


  /**
   * Runs the call to its end and returns its CDR; null for a click-to-call leg answered after its
   * attempt was given up (killed unserved: the attempt's CDR is the dialer's). Never throws.
   */
  async run(): Promise<CdrRecord | null> {
    try {
      await this.flow();
    } catch (err) {
      this.onFlowError(err);
    }
    if (this.givenUp) {
      this.channel.close();
      return null;
    }
    if (this.facts.outcome === 'failed' && this.facts.failureReason === null) {
      // No step decided the outcome (every deliberate failure names its reason): the caller hung
      // up before one could (say, between admission and the first application), or a bug.
      if (this.callerLeft) this.facts.outcome = 'abandoned';
      else this.facts.failureReason = 'the call flow ended without an outcome';
    }
    this.guard?.stop();
    // Whatever the flow did, the call must end: hang up if it is still up, then wait (bounded)
    // for CHANNEL_HANGUP_COMPLETE so the CDR gets FreeSWITCH's own times.
    try {
      const cause = this.facts.outcome === 'failed' ? 'NORMAL_TEMPORARY_FAILURE' : 'NORMAL_CLEARING';
      // A flow that failed may leave applications queued in FreeSWITCH (a bridge behind the
      // event-locked greeting): the hangup application would wait behind them, and the bridge
      // would ring the phones first. uuid_kill acts at once (M8).
      if (this.channel.pendingApplications > 0) await this.channel.kill(cause);
      else await this.channel.hangup(cause);
    } catch (err) {
      this.log.warn({ err }, 'hangup at end of call failed');
    }
    await this.channel.waitForEnd(this.deps.settings.esl.replyTimeoutMs);
    this.channel.close();
    return this.buildCdr();
  }

  /**
   * The call's CDR, charging `charged`, was handed to the CDR writer at `at` (performance.now), or
   * there is none (`charged` 0): the tenant's other calls here count what it cost until the writer
   * has charged it (SpendGroup).
   */
  cdrHandedIn(at: number, charged = 0): void {
    this.guard?.handedIn(at, charged);
  }

  /**
   * A click-to-call's request ends with the call's CDR, once the call server has spooled it: a
   * daemon that dies between the two leaves the CDR in the spool (replayed at restart) and the
   * request unended (the sweeper ends it later), never an ended request whose CDR is lost to a
   * crash. A spool that refused the CDR (a full disk: the CDR is then in the error log only)
   * does not keep the request open: the visitor's page shows how the call ended, not a call in
   * progress for hours. Its failure is logged and must not cost anything else.
   */
  async finishRequest(cdr: CdrRecord): Promise<void> {
    await this.progress?.finished(cdr).catch((err: unknown) => this.log.error({ err }, 'click-to-call request could not be updated'));
  }

  private async flow(): Promise<void> {
    // First, so the request ends with the CDR whatever happens next (run() never skips finished()).
    if (this.leg) this.progress = this.deps.clickToCall?.started(this.leg, this.channel, this.log) ?? null;
    if (this.progress && (await this.progress.verdict) === 'given_up') {
      await this.dropGivenUpLeg();
      return;
    }
    const facts = { dialed: this.dialed, caller: this.caller, at: this.deps.clock(), clickToCall: this.leg };
    let plan: CallPlan;
    try {
      plan = planCall(this.deps.snapshot, facts, this.deps.random);
    } catch (err) {
      // Claimed all the same, as before the plan came first: the failure path then hangs the
      // caller up on a channel it subscribed to (the hangup's completion, the CDR's times).
      void this.channel.claim(BRIDGING_VARIABLES);
      throw err;
    }
    const prompts = new PromptPlayer(this.channel, this.deps, this.log);
    // Subscribe and set hotline_handled=true (with the bridging variables, and a served call's
    // ringback) in one write, before anything the caller hears. Not awaited: what the plan sends
    // next goes right behind it, and FreeSWITCH answers in order; a failed opening command fails
    // the next command instead (EslCallChannel.claim).
    void this.channel.claim(plan.kind === 'serve' ? servedCallVariables(prompts, plan.call.tenant, this.log) : BRIDGING_VARIABLES);
    await this.carryOut(plan, prompts);
  }

  private async carryOut(plan: CallPlan, prompts: PromptPlayer): Promise<void> {
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
        const call = this.identify(plan.call, []);
        call.log.info({ reason: plan.screening.reason }, 'caller blocked');
        await refuse(call, 'blocked', plan.call.tenant.blockedPromptId);
        return;
      }
      case 'serve': {
        const call = this.identify(plan.call, openingPrompts(plan));
        if (!(await admit(call))) return;
        this.journalFacts();
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

  /**
   * The visitor answered after the attempt was given up: the leg is killed at once, unclaimed
   * (hotline_handled never set), not planned, admitted, bridged or billed, and gets no CDR of its
   * own. ORIGINATOR_CANCEL: the cause FreeSWITCH gives a leg whose originator went away.
   */
  private async dropGivenUpLeg(): Promise<void> {
    this.givenUp = true;
    this.log.warn({ request_id: this.leg?.requestId }, 'click-to-call visitor answered after the attempt was given up; the leg is killed unserved');
    try {
      await this.channel.kill(LATE_LEG_CAUSE);
    } catch (err) {
      // uuid_kill unanswered: the hangup application, on the same socket.
      this.log.warn({ err }, 'uuid_kill of a given-up visitor leg failed; hanging up');
      await this.channel.hangup(LATE_LEG_CAUSE).catch((e: unknown) => this.log.warn({ err: e }, 'hangup of a given-up visitor leg failed'));
    }
  }

  /** From here on the call is typed: tenant, access number, geography, pricing. */
  private identify(id: IdentifiedCall, greeting: readonly PromptRef[]): Call {
    this.identified = id;
    this.facts.tenantId = id.tenant.id;
    this.facts.geo = id.geo;
    // Added to the call's own logger rather than a child of it: pino derives a child with
    // Object.create, which makes V8 turn the parent into a prototype, and doing that to a fresh
    // logger on every call cost ~8 µs a call (a child of a child and one line: 11 µs;
    // setBindings and the line: 3.3 µs; bench/PROFILE.md, release 8).
    this.log.setBindings({ tenant_id: id.tenant.id });
    const call = new Call(id, this.channel, this.facts, this.deps, this.log, greeting, this.acceptedHr);
    this.armSpendGuard(call);
    this.journalFacts();
    return call;
  }

  /** The call's CDR facts changed (it began, was identified, admitted, answered, hung up): journaled at the next flush, as they are then. */
  private journalFacts(): void {
    const journal = this.deps.journal;
    if (!journal) return;
    this.journalEntry ??= journal.track(this.channel.uuid, () => this.journaledCall());
    journal.note(this.journalEntry);
  }

  /** The call leaves the journal: its CDR is spooled (or could not be, and is in the log). */
  journalEnded(): void {
    if (this.journalEntry) this.deps.journal?.end(this.journalEntry);
  }

  /** What the journal keeps of the call, read when it writes. */
  private journaledCall(): JournaledCall {
    const { facts } = this;
    return {
      v: 1,
      uuid: this.channel.uuid,
      dialed: this.dialed,
      caller: this.caller,
      node: this.deps.settings.node.name,
      acceptedMs: this.acceptedAt.getTime(),
      answeredMs: this.ownAnsweredAt?.getTime() ?? null,
      hungUpMs: this.ownHungUpAt?.getTime() ?? null,
      tenantId: facts.tenantId,
      groupId: facts.groupId,
      answeredBy: facts.answeredBy,
      ivrPath: facts.ivrPath,
      recordingPath: facts.recordingPath,
      admitted: facts.admitted,
      rating: this.identified ? { homeAreaCode: this.identified.accessNumber.homeAreaCode } : null,
      leg: journaledLeg(this.leg),
    };
  }

  /**
   * Tenants with a prepaid balance or a spend cap: warn and cut the call before the money runs
   * out, counted from the answer (spend-guard.ts), together with the tenant's other calls here. Its calls on other daemons are counted by the per-minute live-call job.
   */
  private armSpendGuard(call: Call): void {
    const { tenant, pricing } = call.id;
    const rate = pricing.rate;
    if (!rate || (tenant.balance === null && tenant.maxSpendDay === null && tenant.maxSpendMonth === null)) return;
    const { knex, clock, settings } = this.deps;
    // The CDR is charged to the day and month it started in: the headroom is that period's, at the
    // answer and at the cut alike. Read at the time of reading, a call past the tenant's midnight
    // took the new day's headroom at its cut and ran on past the old day's spend cap.
    const chargedAt = chargedStart((name) => this.channel.data[name], this.acceptedAt, clock());
    const guard = new SpendGuard({
      rate,
      legs: billedLegs(call.id.clickToCall !== null),
      groupOf: () => this.deps.spendGroups.of(String(tenant.id)),
      charged: chargedPeriodStarts(chargedAt, tenant.timezone),
      readLeft: () => withTimeout('spend headroom', settings.admission.queryTimeoutMs, sharedSpendLeft(knex, tenant.id, chargedAt, tenant.timezone)),
      warn: () => this.warn(call),
      cut: () => this.channel.kill(CUT_HANGUP_CAUSE),
      log: call.log,
      timers: this.deps.guardTimers,
      cutCheckTimeoutMs: settings.admission.queryTimeoutMs,
    });
    this.guard = guard;
    const answeredUs = this.channel.answeredAtUs;
    if (answeredUs === null) this.channel.onAnswer(() => void guard.answered());
    else {
      // Handed over answered (a click-to-call visitor leg): no CHANNEL_ANSWER will come. Count from
      // FreeSWITCH's answer time; a leg is handed over within CLICK_TO_CALL_CONNECT_TIMEOUT_S or
      // its attempt is failed, which bounds what a clock disagreement can take.
      const agoMs = Math.min(this.deps.clock().getTime() - answeredUs / 1000, this.deps.settings.clickToCall.connectTimeoutS * 1000);
      void guard.answered(agoMs);
    }
    this.channel.onHangupEvent(() => guard.stop());
  }

  /** The spend guard's warning (billing/warning.ts: mixed in over an event-locked prompt, else broadcast). */
  private async warn(call: Call): Promise<void> {
    const ch = this.channel;
    const transport = { displace: (f: string) => ch.displace(f), broadcast: (f: string) => ch.broadcast(f) };
    const way = await sendWarning(transport, call.prompts.file(systemPrompt('capped')), ch.promptLocked);
    call.log.info({ way }, 'spend warning sent');
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
      legs: billedLegs(id.clickToCall !== null),
      promptLocked: this.channel.promptLocked,
    };
  }

  /**
   * The channel is gone from FreeSWITCH's side: a hang-up event, or (a caller who hung up before
   * `myevents` took effect sends none) FreeSWITCH's disconnect notice.
   */
  private get callerLeft(): boolean {
    return this.channel.hungUp || this.channel.disconnectNoticed;
  }

  private onFlowError(err: unknown): void {
    if (err instanceof CallHungUpError || (err instanceof SocketClosedError && this.callerLeft)) {
      // The caller left mid-step (or before the daemon's subscription took effect: no hang-up
      // event then, only FreeSWITCH's disconnect notice): how many calls end, not an error.
      const settled = ['answered', 'busy', 'no_answer', 'announced', 'blocked', 'capped', 'pin_failed'].includes(this.facts.outcome)
        || (this.facts.outcome === 'voicemail' && this.facts.voicemailKept);
      if (!settled) this.facts.outcome = 'abandoned';
      return;
    }
    this.facts.outcome = 'failed';
    // The error's code only for ESL errors: their messages may quote what came from the wire.
    this.facts.failureReason = err instanceof EslError ? `call flow failed: ${err.code}` : failureText('call flow failed', err);
    if (err instanceof SocketClosedError) this.deps.metrics.eslErrors.inc({ kind: 'socket_closed' });
    if (err instanceof UnsafeValueError) this.deps.metrics.eslErrors.inc({ kind: 'unsafe_value' });
    this.log.error({ err, kind: err instanceof EslError ? err.code : 'BUG' }, 'call flow failed');
  }

  private buildCdr(): CdrRecord {
    const ch = this.channel;
    const final = ch.hangupComplete;
    const built = callCdr({
      uuid: ch.uuid,
      dialed: this.dialed,
      caller: this.caller,
      facts: this.facts,
      header: (name) => final?.getHeader(name) ?? ch.data[name],
      own: { accepted: this.acceptedAt, answered: this.ownAnsweredAt, hungUp: this.ownHungUpAt, now: this.deps.clock() },
      hangupCause: ch.hangupCause,
      // A socket the daemon dropped for bad input (ESL_FRAME_TOO_LARGE …) has no FreeSWITCH cause: the code says why.
      failureCode: ch.failure?.code ?? null,
      node: this.deps.settings.node.name,
      snapshot: this.deps.snapshot,
      rating: this.identified ? { geo: this.identified.geo, homeAreaCode: this.identified.accessNumber.homeAreaCode } : null,
      leg: this.leg,
    });
    if (built.failure !== null) this.log.error({ reason: built.failure }, 'CDR could not be built from the call: recorded as failed');
    else if (built.rejected.length > 0) this.log.warn({ rejected: built.rejected }, 'FreeSWITCH times or seconds not usable: the daemon\'s clock used instead');
    return built.cdr;
  }
}
