/**
 * Whole-call recording (全程录音) for tenants with record_calls: `record_session` to a file named
 * by tenant and day, so the retention job can purge by directory; stereo (caller left, callee
 * right) or mono by RECORD_STEREO. The path goes into the CDR.
 */
import type { CallContext } from '../context';
import { mediaFilePath } from './voicemail';

export async function startRecording(ctx: CallContext): Promise<void> {
  if (!ctx.tenant?.recordCalls || ctx.recordingPath) return;
  const file = mediaFilePath(ctx, '');
  await ctx.channel.setVariables({ RECORD_STEREO: ctx.deps.settings.recordings.stereo ? 'true' : 'false' });
  await ctx.channel.recordSession(file);
  ctx.recordingPath = file;
}
