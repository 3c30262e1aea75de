/**
 * Voicemail (语音信箱, 来话不漏): the caller hears the box's greeting and leaves a message that
 * FreeSWITCH records (`record <path> <max s> <silence threshold> <silence hits>`, `#` ends it);
 * a `voicemails` row keeps the file and its length; outcome `voicemail`. A message of no
 * seconds (the caller hung up at once) is not kept.
 */
import type { Call } from '../call';
import { systemPrompt } from '../prompt-player';
import { mediaFilePath } from './media-path';

/** Longest message, and the silence that ends one (FreeSWITCH record's energy threshold, and seconds below it). */
export const VOICEMAIL_MAX_S = 120;
const SILENCE_THRESHOLD = 200;
const SILENCE_HITS = 5;

/** `extensionId` null: the tenant's own box. */
export async function leaveVoicemail(call: Call, extensionId: number | null): Promise<null> {
  const file = mediaFilePath(call, '-vm');
  call.facts.outcome = 'voicemail';
  await call.answer();
  await call.prompts.play([systemPrompt('leave_message')]);
  await call.channel.setVariables({ playback_terminators: '#' });
  const seconds = await call.channel.record(file, VOICEMAIL_MAX_S, SILENCE_THRESHOLD, SILENCE_HITS);
  if (seconds <= 0) {
    call.log.info({ file }, 'empty voicemail not kept');
    await call.channel.hangup('NORMAL_CLEARING');
    return null;
  }
  call.facts.voicemailKept = true;
  await call.deps.metrics.timeDb('voicemail_insert', () =>
    call.deps.knex('voicemails').insert({
      tenant_id: call.tenant.id,
      extension_id: extensionId,
      call_uuid: call.channel.uuid,
      caller: call.id.caller.slice(0, 64),
      file_path: file,
      duration_s: Math.round(seconds),
      heard: 0,
    }),
  ).catch((err: unknown) => call.log.error({ err, file }, 'voicemail recorded but its row could not be written'));
  await call.prompts.play([systemPrompt('goodbye')]);
  await call.channel.hangup('NORMAL_CLEARING');
  return null;
}
