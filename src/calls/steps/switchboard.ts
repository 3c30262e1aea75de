/**
 * The switchboard (总机): "dial the extension followed by #, 0 for the operator". Extensions of
 * any length, ended by # or the inter-digit timeout; an unknown extension is re-prompted a few
 * times; an extension's phones ring in order with the tenant's ring time; nobody answering goes
 * to the member's voicemail (or the announcement).
 */
import type { CallContext } from '../context';
import { dialBatch, finishHunt, huntGroup, type HuntResult } from './hunt';

export const SWITCHBOARD_TRIES = 3;

export async function switchboard(ctx: CallContext): Promise<void> {
  await ctx.channel.answer();
  for (let attempt = 1; attempt <= SWITCHBOARD_TRIES; attempt++) {
    const digits = await ctx.channel.playAndGetDigits({
      min: 1,
      max: 16,
      tries: 1,
      timeoutMs: 8000,
      terminators: '#',
      file: filePrompt(ctx, 'enter_extension'),
      invalidFile: 'silence_stream://250',
      variable: 'hotline_extension',
      regexp: '^[0-9]+$',
      digitTimeoutMs: 3000,
      promptMs: 10_000,
    });
    if (digits === '') {
      if (attempt < SWITCHBOARD_TRIES) await ctx.play('invalid_entry');
      continue;
    }
    ctx.ivrPath.push(digits);
    if (digits === '0') {
      await operator(ctx);
      return;
    }
    if (await dialExtension(ctx, digits)) return;
    if (attempt < SWITCHBOARD_TRIES) await ctx.play('invalid_entry');
  }
  await ctx.announceAndHangup('goodbye', 'NORMAL_CLEARING', 'announced');
}

/** Rings an extension's phones in order; false when no such extension exists. */
export async function dialExtension(ctx: CallContext, ext: string): Promise<boolean> {
  const tenant = ctx.tenant!;
  const extension = ctx.snapshot.extensionsByTenant.get(tenant.id)?.get(ext);
  if (!extension) {
    ctx.log.info({ ext }, 'unknown extension');
    return false;
  }
  await ringExtension(ctx, extension.id);
  return true;
}

export async function ringExtension(ctx: CallContext, extensionId: number): Promise<void> {
  const tenant = ctx.tenant!;
  const extension = [...(ctx.snapshot.extensionsByTenant.get(tenant.id)?.values() ?? [])].find((e) => e.id === extensionId);
  if (!extension) {
    await ctx.announceAndHangup('service_unavailable', 'NORMAL_TEMPORARY_FAILURE', 'failed');
    return;
  }
  let result: HuntResult = 'no_answer';
  let allBusy = extension.phones.length > 0;
  for (const phone of extension.phones) {
    const leg = await dialBatch(ctx, [phone], tenant.ringTimeoutS, null);
    if (leg === 'answered') {
      result = 'answered';
      break;
    }
    if (leg === 'cancelled' || ctx.channel.hungUp) {
      result = 'gone';
      break;
    }
    if (leg !== 'busy') allBusy = false;
  }
  if (result === 'no_answer' && allBusy) result = 'busy';
  await finishHunt(ctx, result, extension.voicemailEnabled ? extension.id : undefined);
}

/** "0 for the operator": the tenant's operator group, or an apology when there is none. */
export async function operator(ctx: CallContext): Promise<void> {
  const groupId = ctx.tenant!.operatorGroupId;
  if (groupId === null) {
    await ctx.announceAndHangup('service_unavailable', 'NORMAL_CLEARING', 'announced');
    return;
  }
  await huntGroup(ctx, groupId);
}

/** play_and_get_digits needs a file: a TTS prompt spoken by FreeSWITCH falls back to the system file. */
export function filePrompt(ctx: CallContext, name: Parameters<CallContext['playable']>[1], promptId: number | null = null): string {
  const p = ctx.playable(promptId, name);
  return p.app === 'playback' ? p.arg : ctx.playable(null, name).arg;
}
