/**
 * Voicemail (语音信箱, 来话不漏): the caller hears the box's greeting and leaves a message that
 * FreeSWITCH records (`record <path> <max s> <silence threshold> <silence hits>`, `#` ends it);
 * a `voicemails` row keeps the file and its length; outcome `voicemail`. A message of no
 * seconds (the caller hung up at once) is not kept.
 */
import { DateTime } from 'luxon';
import path from 'node:path/posix';
import type { CallContext } from '../context';

/** Longest message, and the silence that ends one (FreeSWITCH record's energy threshold, hits). */
export const VOICEMAIL_MAX_S = 120;
const SILENCE_THRESHOLD = 200;
const SILENCE_HITS = 5;

/** Where a call's recording or message lives: <dir>/<tenant>/<YYYY-MM-DD>/<uuid><suffix>.wav */
export function mediaFilePath(ctx: CallContext, suffix: string): string {
  const tenant = ctx.tenant!;
  const day = DateTime.fromJSDate(ctx.deps.clock(), { zone: tenant.timezone }).toFormat('yyyy-MM-dd');
  return path.join(ctx.deps.settings.recordings.dir, String(tenant.id), day, `${ctx.channel.uuid}${suffix}.wav`);
}

/** `extensionId` null: the tenant's own box. */
export async function leaveVoicemail(ctx: CallContext, extensionId: number | null): Promise<void> {
  const file = mediaFilePath(ctx, '-vm');
  ctx.outcome = 'voicemail';
  await ctx.channel.answer();
  await ctx.play('leave_message');
  await ctx.channel.setVariables({ playback_terminators: '#' });
  const done = await ctx.channel.execute('record', `${file} ${VOICEMAIL_MAX_S} ${SILENCE_THRESHOLD} ${SILENCE_HITS}`, (VOICEMAIL_MAX_S + 10) * 1000);
  const seconds = Number(done.variable('record_seconds') ?? '0');
  if (!Number.isFinite(seconds) || seconds <= 0) {
    ctx.log.info({ file }, 'empty voicemail not kept');
    await ctx.channel.hangup('NORMAL_CLEARING');
    return;
  }
  await ctx.deps.metrics.timeDb('voicemail_insert', () =>
    ctx.deps.knex('voicemails').insert({
      tenant_id: ctx.tenant!.id,
      extension_id: extensionId,
      call_uuid: ctx.channel.uuid,
      caller: ctx.caller.slice(0, 64),
      file_path: file,
      duration_s: Math.round(seconds),
      heard: 0,
    }),
  ).catch((err: unknown) => ctx.log.error({ err, file }, 'voicemail recorded but its row could not be written'));
  await ctx.play('goodbye');
  await ctx.channel.hangup('NORMAL_CLEARING');
}
