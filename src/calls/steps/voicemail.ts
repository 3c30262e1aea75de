/**
 * Voicemail (语音信箱, 来话不漏): the caller hears the box's greeting and leaves a message that
 * FreeSWITCH records (`record <path> <max s> <silence threshold> <silence hits>`, `#` ends it);
 * a `voicemails` row keeps the file and its length; outcome `voicemail`.
 *
 * A message is kept only with at least MIN_MESSAGE_MS of it before the silence that ended it
 * (messageMs). One that is not kept is no voicemail: no row, and the call's outcome is what it
 * would have been without the box (unkeptOutcome).
 */
import type { RecordEnd } from '../../esl/channel';
import type { Outcome } from '../../metrics';
import type { Call } from '../call';
import { systemPrompt } from '../prompt-player';
import { mediaFilePath } from './media-path';

/** Longest message, and the silence that ends one (FreeSWITCH record's energy threshold, and seconds below it). */
export const VOICEMAIL_MAX_S = 120;
export const SILENCE_THRESHOLD = 200;
export const SILENCE_HITS = 5;
/** The shortest message kept: anything less is a caller who said nothing (or coughed and left). */
export const MIN_MESSAGE_MS = 1000;

/**
 * Set with playback_terminators before `record`. record_fill_cng makes switch_ivr_record_file
 * (switch_ivr_play_say.c) write comfort noise for the frames the caller's phone sent none for
 * (SFF_CNG: VAD/DTX phones, pauses); without it those frames are left out of the file and of
 * record_ms, so the trailing silence messageMs takes off might not be in record_ms at all, and
 * a message with pauses would play back with them cut out. It changes no silence detection (that
 * reads the caller's frames, not the fill).
 */
export const RECORD_VARIABLES: Readonly<Record<string, string>> = Object.freeze({ playback_terminators: '#', record_fill_cng: 'true' });

/**
 * The message's length (ms): record_ms, less the silence that ended it when it ended on silence.
 * FreeSWITCH does not trim that silence: of the <hits> seconds of frames below the threshold, all
 * but the last (which ends the loop before its write) are in the file, i.e. hits × 1000 less one
 * frame. Pure.
 */
export function messageMs(end: RecordEnd, silenceHitsS: number): number {
  const trailing = end.endedOnSilence ? Math.max(0, silenceHitsS * 1000 - end.frameMs) : 0;
  return Math.max(0, end.ms - trailing);
}

/**
 * The outcome of a call whose message was not kept: what it would have been without the box. A
 * hunt that led here already set busy / no_answer; otherwise a caller who hung up abandoned the
 * call, and one who stayed silent until the daemon hung up was not answered. Pure.
 */
export function unkeptOutcome(before: Outcome, callerLeft: boolean): Outcome {
  if (before === 'busy' || before === 'no_answer') return before;
  return callerLeft ? 'abandoned' : 'no_answer';
}

/** `extensionId` null: the tenant's own box. */
export async function leaveVoicemail(call: Call, extensionId: number | null): Promise<null> {
  const file = mediaFilePath(call, '-vm');
  await call.answer();
  await call.prompts.play([systemPrompt('leave_message')]);
  await call.channel.setVariables(RECORD_VARIABLES);
  const end = await call.channel.record(file, VOICEMAIL_MAX_S, SILENCE_THRESHOLD, SILENCE_HITS);
  const ms = messageMs(end, SILENCE_HITS);
  if (ms < MIN_MESSAGE_MS) {
    call.facts.outcome = unkeptOutcome(call.facts.outcome, call.channel.hungUp);
    call.log.info({ file, message_ms: ms, record_ms: end.ms, ended_on_silence: end.endedOnSilence }, 'voicemail too short, not kept');
    await call.channel.hangup('NORMAL_CLEARING');
    return null;
  }
  call.facts.outcome = 'voicemail';
  call.facts.voicemailKept = true;
  await call.deps.metrics.timeDb('voicemail_insert', () =>
    call.deps.knex('voicemails').insert({
      tenant_id: call.tenant.id,
      extension_id: extensionId,
      call_uuid: call.channel.uuid,
      caller: call.id.caller.slice(0, 64),
      file_path: file,
      duration_s: Math.floor(ms / 1000),
      heard: 0,
    }),
  ).catch((err: unknown) => call.log.error({ err, file }, 'voicemail recorded but its row could not be written'));
  await call.prompts.play([systemPrompt('goodbye')]);
  await call.channel.hangup('NORMAL_CLEARING');
  return null;
}
