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
import { buildBridgeString, presentableCallerId } from '../../esl/safe';
import { leaveVoicemail } from './voicemail';
import type { Tenant } from '../../snapshot/types';
import { lastAnsweredBy, takeRotation, withTimeout } from '../call-state';
import type { CallContext } from '../context';

/** How often a queued caller's group is hunted again, and the music they hear meanwhile. */
export const QUEUE_RETRY_S = 15;
export const HOLD_MUSIC = 'local_stream://moh';

export type HuntResult = 'answered' | 'gone' | 'busy' | 'no_answer';

export async function huntGroup(ctx: CallContext, groupId: number): Promise<void> {
  const tenant = ctx.tenant!;
  const preferred = await rememberedPhone(ctx, tenant);
  let result = await huntOnce(ctx, await planHunt(ctx, tenant, groupId, preferred));
  if (result === 'busy') result = await queue(ctx, tenant, groupId, preferred);
  await finishHunt(ctx, result, tenant.voicemailEnabled ? null : undefined);
}

/**
 * After a hunt: answered or gone ends the call; nobody answering leaves a message in the box
 * (`voicemailBox`: an extension id, null for the tenant's box, undefined for no voicemail) or
 * hears the nobody-answered / all-busy announcement.
 */
export async function finishHunt(ctx: CallContext, result: HuntResult, voicemailBox: number | null | undefined): Promise<void> {
  if (result === 'answered' || result === 'gone') {
    ctx.outcome = result === 'answered' ? 'answered' : 'abandoned';
    return;
  }
  if (voicemailBox !== undefined) {
    await leaveVoicemail(ctx, voicemailBox);
    return;
  }
  await ctx.announceAndHangup(result === 'busy' ? 'all_busy' : 'nobody_answered', result === 'busy' ? 'USER_BUSY' : 'NO_ANSWER', result);
}

/** The hunt plan with each group ordered by its strategy (round-robin positions from the database). */
async function planHunt(ctx: CallContext, tenant: Tenant, groupId: number, preferred: string | null): Promise<HuntStep[]> {
  const { settings, snapshot, random, knex, metrics } = ctx.deps;
  const rotations = new Map<number, number>();
  for (const step of huntPlan(snapshot, tenant, groupId, settings.calls.maxFailoverGroups)) {
    if (step.group.strategy !== 'round_robin') continue;
    const id = step.group.id;
    const position = await metrics
      .timeDb('rotation', () => withTimeout('round robin', settings.admission.queryTimeoutMs, takeRotation(knex, id)))
      .catch((err: unknown) => {
        // The rotation is shared by every daemon; without the database a random start still spreads calls.
        ctx.log.warn({ err: (err as Error).message, group_id: id }, 'round-robin position unavailable; starting at random');
        return Math.floor(random() * 1_000_000);
      });
    rotations.set(id, position);
  }
  return huntPlan(snapshot, tenant, groupId, settings.calls.maxFailoverGroups, (group) =>
    orderDestinations(group, { random, rotation: rotations.get(group.id) ?? 0, preferred }),
  );
}

/** Caller memory (主叫记忆): the phone that answered this caller last time, within the window. */
async function rememberedPhone(ctx: CallContext, tenant: Tenant): Promise<string | null> {
  if (tenant.callerMemoryHours <= 0 || !ctx.geo?.e164) return null;
  const { knex, clock, settings, metrics } = ctx.deps;
  const since = new Date(clock().getTime() - tenant.callerMemoryHours * 3_600_000);
  return metrics
    .timeDb('caller_memory', () => withTimeout('caller memory', settings.admission.queryTimeoutMs, lastAnsweredBy(knex, tenant.id, ctx.caller, since)))
    .catch((err: unknown) => {
      ctx.log.warn({ err: (err as Error).message }, 'caller memory unavailable; normal order');
      return null;
    });
}

/** One pass over the plan. */
async function huntOnce(ctx: CallContext, steps: HuntStep[]): Promise<HuntResult> {
  const legs: LegOutcome[] = [];
  for (const step of steps) {
    ctx.groupId = step.group.id;
    for (const batch of dialBatches(step)) {
      const leg = await dialBatch(ctx, batch.map((d) => d.number), step.ringTimeoutS, step.group.id);
      legs.push(leg);
      if (leg === 'answered') return 'answered';
      if (leg === 'cancelled' || ctx.channel.hungUp) return 'gone';
    }
  }
  return huntOutcome(legs) === 'busy' ? 'busy' : 'no_answer';
}

/**
 * Rings the phones — several at once when more than one is given — with one bridge, presenting
 * the original caller number. Records who answered. `groupId` is for the metrics (null: an
 * extension's phones).
 */
export async function dialBatch(ctx: CallContext, numbers: readonly string[], ringTimeoutS: number, groupId: number | null): Promise<LegOutcome> {
  const { settings, metrics } = ctx.deps;
  if (!ctx.bridgingReady) {
    ctx.bridgingReady = true;
    const ringbackId = ctx.tenant?.ringbackPromptId ?? null;
    const ringback = ringbackId === null ? null : ctx.playable(ringbackId, 'ringback');
    // A failed bridge hangs the caller up unless continue_on_fail is set; hangup_after_bridge
    // ends the caller's leg when an answered bridge ends; ringback is what the caller hears.
    await ctx.channel.setVariables({
      continue_on_fail: 'true',
      hangup_after_bridge: 'true',
      ...(ringback?.app === 'playback' ? { ringback: ringback.arg } : {}),
    });
  }
  const callerId = presentableCallerId(ctx.caller);
  const vars: Record<string, string | number> = { leg_timeout: ringTimeoutS };
  if (callerId) vars.origination_caller_id_number = callerId;
  const dialString = buildBridgeString(settings.dial.stringTemplate, numbers, vars);
  if (!ctx.firstLegDialled) {
    ctx.firstLegDialled = true;
    metrics.callSetupSeconds.observe(ctx.secondsSinceAccept());
  }
  const result = await ctx.channel.bridge(dialString, ringTimeoutS * 1000 + settings.calls.maxDurationS * 1000);
  const leg = classifyLeg(result.dialStatus, result.disposition);
  const tenantId = ctx.tenant?.id ?? null;
  metrics.legs.inc({ tenant: metrics.tenantLabel(tenantId), group: groupId === null ? 'extension' : metrics.groupLabel(tenantId, groupId), result: leg });
  ctx.log.info({ group_id: groupId, destinations: numbers, leg, disposition: result.disposition }, 'leg finished');
  if (leg === 'answered') {
    metrics.timeToAnswerSeconds.observe(ctx.secondsSinceAccept());
    // With several legs in one bridge, the one that answered is the other leg's destination.
    const other = result.event.getHeader('Other-Leg-Destination-Number');
    ctx.answeredBy = numbers.find((n) => n === other) ?? (numbers.length === 1 ? numbers[0] : other ?? null);
  }
  return leg;
}

/**
 * Every phone was busy: wait in the first group's queue (if it has one) with hold music, hunting
 * again every QUEUE_RETRY_S until someone answers or queue_timeout_s runs out. A full queue is
 * "all lines busy" at once.
 */
async function queue(ctx: CallContext, tenant: Tenant, groupId: number, preferred: string | null): Promise<HuntResult> {
  const group = ctx.snapshot.groups.get(groupId);
  const { queues, clock, metrics } = ctx.deps;
  if (!group || group.maxQueue <= 0) return 'busy';
  if (queues.size(groupId) >= group.maxQueue) {
    ctx.log.info({ group_id: groupId, waiting: queues.size(groupId) }, 'queue full');
    return 'busy';
  }
  queues.enter(groupId);
  const entered = clock().getTime();
  const deadline = entered + group.queueTimeoutS * 1000;
  try {
    await ctx.channel.answer();
    for (;;) {
      const left = Math.ceil((deadline - clock().getTime()) / 1000);
      if (left <= 0) return 'busy';
      await ctx.channel.setVariables({ playback_timeout_sec: Math.max(2, Math.min(QUEUE_RETRY_S, left)) });
      await ctx.channel.playback(HOLD_MUSIC, (QUEUE_RETRY_S + 5) * 1000);
      await ctx.channel.setVariables({ playback_timeout_sec: 0 });
      const result = await huntOnce(ctx, await planHunt(ctx, tenant, groupId, preferred));
      if (result !== 'busy' && result !== 'no_answer') return result;
    }
  } finally {
    queues.leave(groupId);
    metrics.queueWaitSeconds.observe((clock().getTime() - entered) / 1000);
  }
}
