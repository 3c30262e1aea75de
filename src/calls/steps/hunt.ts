/**
 * Step: hunting a destination group and its failover chain, with the group's strategy, caller
 * memory, company ringback, and the queue when every phone is busy.
 *
 * FreeSWITCH facts this relies on (FREESWITCH.md, switch_ivr_originate.c, switch_ivr_play_say.c):
 * continue_on_fail must be set or a busy leg hangs the caller up; hangup_after_bridge ends the
 * caller's leg with an answered bridge; one dial string takes at most 128 legs; `ringback` is
 * what the caller hears while legs ring; `playback_timeout_sec` bounds a playback (hold music).
 */
import { classifyLeg, dialBatches, huntOutcome, huntPlan, orderDestinations, type HuntStep, type LegOutcome } from '../../domain/routing';
import { CallHungUpError } from '../../esl/errors';
import { buildBridgeString, isPlainVariableValue, presentableCallerId } from '../../esl/safe';
import type { ConfigSnapshot, Tenant } from '../../snapshot/types';
import type { Call } from '../call';
import { takeRotation, withTimeout } from '../call-state';
import type { CallAction } from '../plan';
import { MISSING_PROMPT_TONE, systemPrompt, tenantPrompt, type PromptPlayer } from '../prompt-player';
import type { Logger } from '../../log';

/** How often a queued caller's group is hunted again, and the music they hear meanwhile. */
export const QUEUE_RETRY_S = 15;
export const HOLD_MUSIC = 'local_stream://moh';

export type HuntResult = 'answered' | 'gone' | 'busy' | 'no_answer';

/**
 * Set on every call as it is claimed, in the multiset that sets hotline_handled (call-session.ts):
 * a failed bridge hangs the caller up unless continue_on_fail is set; hangup_after_bridge ends the
 * caller's leg when an answered bridge ends. FreeSWITCH reads neither before a bridge, so a call
 * that never bridges loses nothing, and a call that does reads one 6-9 KB completion event fewer
 * than with a multiset of its own before the first bridge (bench/PROFILE.md).
 */
export const BRIDGING_VARIABLES: Readonly<Record<string, string>> = Object.freeze({ continue_on_fail: 'true', hangup_after_bridge: 'true' });

/**
 * The claim's variables for a call that will be served: BRIDGING_VARIABLES, and what the caller
 * hears while the phones ring, set there for the same reason (no multiset, and no completion
 * event, of its own before the first bridge). Always a ringback: a caller who has heard a prompt
 * (the greeting pre-answers) already has early media, FreeSWITCH passes no phone's 180 on to such
 * a channel (switch_channel_perform_ring_ready returns at once with CF_EARLY_MEDIA), and without
 * `ringback` the originate writes the caller silence for the whole ring (switch_ivr_originate.c:
 * ringback_ok = 0 without ringback data); the phones' own early media is ignored (dialBatch). A
 * caller already answered (by FreeSWITCH: a click-to-call visitor leg; by the daemon before
 * hunting: a PIN, an IVR menu, a queue) hears `transfer_ringback` instead (with CF_ANSWERED the
 * originate takes it before ringback), so both are set, to the same sound (ringbackFile).
 */
export function servedCallVariables(prompts: Pick<PromptPlayer, 'file'>, tenant: Pick<Tenant, 'ringbackPromptId'>, log: Logger): Record<string, string> {
  const file = ringbackFile(prompts, tenant.ringbackPromptId, log);
  return { ...BRIDGING_VARIABLES, ringback: file, transfer_ringback: file };
}

export async function huntGroup(call: Call, groupId: number): Promise<CallAction | null> {
  const preferred = await askCallerMemory(call);
  let result = await huntOnce(call, planHunt(call, groupId, preferred), preferred);
  if (result === 'busy') result = await queue(call, groupId, preferred);
  return finishHunt(call, result, call.tenant.voicemailEnabled ? null : undefined);
}

/**
 * After a hunt: answered or gone ends the call; nobody answering leaves a message in the box
 * (`voicemailBox`: an extension id, null for the tenant's box, undefined for no voicemail) or
 * hears the nobody-answered / all-busy announcement.
 */
export async function finishHunt(call: Call, result: HuntResult, voicemailBox: number | null | undefined): Promise<CallAction | null> {
  if (result === 'answered' || result === 'gone') {
    call.facts.outcome = result === 'answered' ? 'answered' : 'abandoned';
    return null;
  }
  if (voicemailBox !== undefined) {
    // What the call is unless a message is kept (voicemail.ts unkeptOutcome).
    call.facts.outcome = result;
    return { kind: 'voicemail', extensionId: voicemailBox };
  }
  await call.announceAndHangup(result === 'busy' ? 'all_busy' : 'nobody_answered', result === 'busy' ? 'USER_BUSY' : 'NO_ANSWER', result);
  return null;
}

/**
 * The groups a hunt goes through, each ordered by its strategy: round-robin positions from
 * `rotation`, the remembered phone first. `npm run route -- explain` prints the same plan.
 */
export function orderedHuntPlan(
  snapshot: ConfigSnapshot,
  tenant: Tenant,
  groupId: number,
  maxGroups: number,
  order: { rotation: (groupId: number) => number; preferred: string | null; random: () => number },
): HuntStep[] {
  return huntPlan(snapshot, tenant, groupId, maxGroups, (group) =>
    orderDestinations(group, { random: order.random, rotation: order.rotation(group.id), preferred: order.preferred }),
  );
}

/**
 * The hunt's plan, every group ordered by its strategy with the remembered phone first. A
 * round-robin group is ordered from position 0 here: it takes its real position only when the
 * hunt reaches it (`positioned`), so a greeting with a round-robin group only further down the
 * chain no longer holds the first bridge, and a group nobody reaches does not advance its rotation.
 */
function planHunt(call: Call, groupId: number, preferred: string | null): HuntStep[] {
  const { settings, snapshot, random } = call.deps;
  return orderedHuntPlan(snapshot, call.tenant, groupId, settings.calls.maxFailoverGroups, { rotation: () => 0, preferred, random });
}

/**
 * The step as it is dialled: a round-robin group takes the next position of its rotation (one
 * statement, shared by every daemon) and is ordered from it; any other step is as planned. A
 * position is taken only for a call that will ring: the first group waits for the greeting, and a
 * caller who hangs up during it takes none (the next caller gets the phone instead).
 */
async function positioned(call: Call, step: HuntStep, preferred: string | null): Promise<HuntStep> {
  if (step.group.strategy !== 'round_robin') return step;
  const { settings, random, knex, metrics } = call.deps;
  await call.greetingEnded();
  if (call.channel.hungUp) throw new CallHungUpError('bridge', null);
  const id = step.group.id;
  const position = await metrics
    .timeDb('rotation', () => withTimeout('round robin', settings.admission.queryTimeoutMs, takeRotation(knex, id)))
    .catch((err: unknown) => {
      // The rotation is shared by every daemon; without the database a random start still spreads calls.
      call.log.warn({ err: (err as Error).message, group_id: id }, 'round-robin position unavailable; starting at random');
      return Math.floor(random() * 1_000_000);
    });
  return { ...step, destinations: orderDestinations(step.group, { random, rotation: position, preferred }) };
}

/** Caller memory (主叫记忆): the start of the window a caller's last answer is looked for in; null: the tenant or the caller has none. */
export function callerMemorySince(tenant: Tenant, e164: string | null, at: Date): Date | null {
  if (tenant.callerMemoryHours <= 0 || !e164) return null;
  return new Date(at.getTime() - tenant.callerMemoryHours * 3_600_000);
}

/**
 * The call's caller-memory answer, asked once per call: a hunt that follows the greeting asks
 * before the greeting plays (run-action.ts), so the database answers while the caller listens
 * instead of after, when the caller would hear silence until the first leg rings. Never rejects
 * (no answer means the normal order).
 */
export function askCallerMemory(call: Call): Promise<string | null> {
  call.callerMemory ??= rememberedPhone(call);
  return call.callerMemory;
}

async function rememberedPhone(call: Call): Promise<string | null> {
  const { callerMemory, callerMemoryInTurn, callerMemoryIndex, clock, metrics } = call.deps;
  const since = callerMemorySince(call.tenant, call.id.geo.e164, clock());
  if (!since) return null;
  // Answered now, in memory, for a caller no phone of the tenant answered (most first callers):
  // like SQLite's in-turn answer, the greeting and the first bridge leave in one write.
  if (callerMemoryIndex?.answeredNone(call.tenant.id, call.id.caller, since)) {
    metrics.countCallerMemoryLookup('memory');
    call.channel.sendAtEndOfTurn();
    return null;
  }
  metrics.countCallerMemoryLookup('database');
  // A database that answers within this turn (SQLite): what this tick writes (the greeting) waits
  // for the first bridge, and FreeSWITCH reads both at once (CallChannel.sendAtEndOfTurn). Before
  // any await: this runs as the lookup is asked, in the greeting's tick.
  if (callerMemoryInTurn) call.channel.sendAtEndOfTurn();
  // Bounded by the lookup itself (caller-memory.ts: CALL_DB_TIMEOUT_MS from the moment it is asked).
  return metrics
    .timeDb('caller_memory', () => callerMemory(call.tenant.id, call.id.caller, since))
    .catch((err: unknown) => {
      call.log.warn({ err: (err as Error).message }, 'caller memory unavailable; normal order');
      return null;
    });
}

/** One pass over the plan. */
async function huntOnce(call: Call, steps: HuntStep[], preferred: string | null): Promise<HuntResult> {
  const legs: LegOutcome[] = [];
  for (const planned of steps) {
    const step = await positioned(call, planned, preferred);
    call.facts.groupId = step.group.id;
    for (const batch of dialBatches(step)) {
      const leg = await dialBatch(call, batch.map((d) => d.number), step.ringTimeoutS, step.group.id);
      legs.push(leg);
      if (leg === 'answered') return 'answered';
      if (leg === 'cancelled' || call.channel.hungUp) return 'gone';
    }
  }
  return huntOutcome(legs) === 'busy' ? 'busy' : 'no_answer';
}

/**
 * Rings the phones — several at once when more than one is given — with one bridge, presenting
 * the original caller number. Records who answered. `groupId` is for the metrics (null: an
 * extension's phones).
 */
export async function dialBatch(call: Call, numbers: readonly string[], ringTimeoutS: number, groupId: number | null): Promise<LegOutcome> {
  const { settings, metrics } = call.deps;
  // Written while the greeting plays (Call.startGreeting): everything below waits behind it in
  // FreeSWITCH's queue, and the phones ring when it ends.
  const greeting = call.writeBehindGreeting();
  // What the caller hears while the phones ring, continue_on_fail and hangup_after_bridge came
  // with the claim (servedCallVariables).
  const callerId = presentableCallerId(call.id.caller);
  // ignore_early_media: a phone's early media (a 183 with SDP: a mobile network's 彩铃 or an
  // announcement before it fails) would otherwise end the originate as if answered
  // (switch_ivr_originate.c check_channel_status: early_ok && CF_EARLY_MEDIA): DIALSTATUS
  // SUCCESS for a phone that never answers, the other phones of a batch cancelled, and
  // leg_timeout no longer counting (it is checked only inside the originate). The caller hears
  // `ringback` instead (set with the claim: servedCallVariables), which FreeSWITCH generates only with it set.
  const vars: Record<string, string | number> = { leg_timeout: ringTimeoutS, ignore_early_media: 'true' };
  if (callerId) vars.origination_caller_id_number = callerId;
  const dialString = buildBridgeString(settings.dial.stringTemplate, numbers, vars);
  if (!call.firstLegDialled) {
    call.firstLegDialled = true;
    // Dialled when written, or when the greeting it waits behind has ended with the caller still
    // there (observed as the daemon reads that completion: one turn after FreeSWITCH started it).
    const dialled = (): void => metrics.callSetupSeconds.observe(call.secondsSinceAccept());
    if (!greeting) {
      if (!call.channel.hungUp) dialled();
    } else {
      greeting.then((callerUp) => callerUp && dialled(), () => undefined);
    }
  }
  // Its time limit counts the wait behind the greeting (EslCallChannel.execute).
  const bridged = call.channel.bridge(dialString, ringTimeoutS * 1000 + settings.calls.maxDurationS * 1000);
  const [result] = await Promise.all([bridged, greeting]);
  const leg = classifyLeg(result.dialStatus, result.disposition);
  const tenantId = call.tenant.id;
  metrics.countLeg(tenantId, groupId, leg);
  call.log.info({ group_id: groupId, destinations: numbers, leg, disposition: result.disposition }, 'leg finished');
  if (leg === 'answered') {
    metrics.timeToAnswerSeconds.observe(call.secondsSinceAccept());
    // With several legs in one bridge, the one that answered is the other leg's destination.
    const other = result.answeredNumber;
    call.facts.answeredBy = numbers.find((n) => n === other) ?? (numbers.length === 1 ? numbers[0] : other);
  }
  return leg;
}

/**
 * The tenant's company ringback, else the system ringback.wav (the prompt player's one decision,
 * with the file check); when that is known to be missing, FreeSWITCH's own Chinese ringing tone
 * (teletone markup, as vars.xml's cn-ring: 450 Hz, 1 s on, 4 s off), which needs no file.
 */
export function ringbackFile(prompts: Pick<PromptPlayer, 'file'>, ringbackPromptId: number | null, log: Logger): string {
  const file = prompts.file(tenantPrompt(ringbackPromptId, 'ringback'));
  if (file === MISSING_PROMPT_TONE) return RINGBACK_TONE;
  if (isPlainVariableValue(file)) return file;
  // A path FreeSWITCH can play but a channel variable may not carry (a DBA named the file with an
  // apostrophe): every call of the tenant failed on the multiset. The system ringback instead.
  log.warn({ prompt_id: ringbackPromptId, file }, 'ringback file cannot be set as a channel variable; the system ringback instead');
  const system = prompts.file(systemPrompt('ringback'));
  return system !== MISSING_PROMPT_TONE && isPlainVariableValue(system) ? system : RINGBACK_TONE;
}

/** Ringback when no file can play: China's ringing tone (GB/T 15279; FreeSWITCH vars.xml cn-ring). */
export const RINGBACK_TONE = '%(1000,4000,450)';

/**
 * Every phone was busy: wait in the first group's queue (if it has one) with hold music, hunting
 * again every QUEUE_RETRY_S until someone answers or queue_timeout_s runs out. A full queue is
 * "all lines busy" at once.
 */
async function queue(call: Call, groupId: number, preferred: string | null): Promise<HuntResult> {
  const group = call.snapshot.groups.get(groupId);
  const { queues, clock, metrics } = call.deps;
  if (!group || group.maxQueue <= 0) return 'busy';
  if (queues.size(groupId) >= group.maxQueue) {
    call.log.info({ group_id: groupId, waiting: queues.size(groupId) }, 'queue full');
    return 'busy';
  }
  queues.enter(groupId);
  const entered = clock().getTime();
  const deadline = entered + group.queueTimeoutS * 1000;
  try {
    await call.answer();
    for (;;) {
      const left = Math.ceil((deadline - clock().getTime()) / 1000);
      if (left <= 0) return 'busy';
      await call.channel.setVariables({ playback_timeout_sec: Math.max(2, Math.min(QUEUE_RETRY_S, left)) });
      await call.channel.playback(HOLD_MUSIC, (QUEUE_RETRY_S + 5) * 1000);
      await call.channel.setVariables({ playback_timeout_sec: 0 });
      const result = await huntOnce(call, planHunt(call, groupId, preferred), preferred);
      if (result !== 'busy' && result !== 'no_answer') return result;
    }
  } finally {
    queues.leave(groupId);
    metrics.queueWaitSeconds.observe((clock().getTime() - entered) / 1000);
  }
}

