/** Where a call's recording or voicemail lives: <dir>/<tenant>/<YYYY-MM-DD>/<uuid><suffix>.wav */
import { DateTime } from 'luxon';
import path from 'node:path/posix';
import type { Call } from '../call';

export function mediaFilePath(call: Call, suffix: string): string {
  const day = DateTime.fromJSDate(call.deps.clock(), { zone: call.tenant.timezone }).toFormat('yyyy-MM-dd');
  return path.join(call.deps.settings.recordings.dir, String(call.tenant.id), day, `${call.channel.uuid}${suffix}.wav`);
}
