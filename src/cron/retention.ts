/**
 * The retention job: recordings, voicemails and (when configured) CDRs older than their ages are
 * deleted, and cron_runs older than 30 days. Everything goes in batches of a few hundred rows,
 * each its own short statement, with a pause between batches: the cdrs table is never locked for
 * longer than one small batch, and calls keep writing their CDRs meanwhile.
 *
 * Files are deleted only inside RECORDINGS_DIR (a path elsewhere is left alone and logged):
 * a bad row must not make the daemon delete arbitrary files. A file already gone is fine.
 * Recordings: the file goes, cdrs.recording_path becomes NULL, the CDR stays. Voicemails: the
 * file and the row go. CDRs (RETENTION_CDR_DAYS > 0): the row and its recording file go.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { fromDbTimestamp, toDbTimestamp } from '../db/connect';
import { startedAtKey, startedAtPage, type StartedAtKey } from '../db/started-at-pages';

export interface RetentionOptions {
  recordingsDays: number;
  voicemailDays: number;
  /** 0 keeps CDRs for ever. */
  cdrDays: number;
  recordingsDir: string;
  batchSize?: number;
  pauseMs?: number;
  /** Waits between two batches instead of pauseMs (a test that needs other work to happen there). */
  betweenBatches?: () => Promise<void>;
  cronRunsDays?: number;
  log: Logger;
  signal?: AbortSignal;
}

export interface RetentionResult {
  recordings: number;
  voicemails: number;
  cdrs: number;
  cronRuns: number;
  filesDeleted: number;
  filesRefused: number;
  batches: number;
}

const DAY_MS = 86_400_000;
/** Recordings are looked for back to this long before the last mark (late spool replays). */
const MARK_MARGIN_MS = 2 * DAY_MS;

export async function runRetention(db: Knex, now: Date, opts: RetentionOptions): Promise<RetentionResult> {
  const batch = opts.batchSize ?? 500;
  const pause = opts.pauseMs ?? 20;
  const root = path.resolve(opts.recordingsDir);
  const result: RetentionResult = { recordings: 0, voicemails: 0, cdrs: 0, cronRuns: 0, filesDeleted: 0, filesRefused: 0, batches: 0 };

  const removeFile = async (file: string | null): Promise<boolean> => {
    if (!file) return true;
    const resolved = path.resolve(root, file);
    if (resolved !== root && !resolved.startsWith(root + path.sep)) {
      result.filesRefused++;
      opts.log.warn({ file }, 'retention: file outside RECORDINGS_DIR left alone');
      return false;
    }
    try {
      await fsp.unlink(resolved);
      result.filesDeleted++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        opts.log.error({ err, file }, 'retention: could not delete file');
        return false;
      }
    }
    // The date directory (<dir>/<tenant>/<day>/) goes when its last file does.
    await fsp.rmdir(path.dirname(resolved)).catch(() => undefined);
    return true;
  };
  const between = async (): Promise<void> => {
    result.batches++;
    if (opts.signal?.aborted) throw new Error('retention aborted: the daemon is stopping');
    await (opts.betweenBatches ? opts.betweenBatches() : new Promise((r) => setTimeout(r, pause)));
  };

  // Recordings, from the last mark on (see migration 27).
  if (opts.recordingsDays > 0) {
    const cutoff = new Date(now.getTime() - opts.recordingsDays * DAY_MS);
    const mark: { done_before: string | Date } | undefined = await db('retention_marks').where({ kind: 'recordings' }).first('done_before');
    const from = mark ? new Date((fromDbTimestamp(mark.done_before) ?? new Date(0)).getTime() - MARK_MARGIN_MS) : null;
    let after: StartedAtKey | null = null;
    for (;;) {
      const rows: Array<{ id: number; started_at: string | Date; recording_path: string }> = await db('cdrs')
        .whereNotNull('recording_path')
        .modify((q) => void startedAtPage(q, { from: from ? toDbTimestamp(from) : null, to: toDbTimestamp(cutoff), after }))
        .limit(batch)
        .select('id', 'started_at', 'recording_path');
      if (rows.length === 0) break;
      const done: number[] = [];
      for (const r of rows) if (await removeFile(r.recording_path)) done.push(Number(r.id));
      if (done.length > 0) await db('cdrs').whereIn('id', done).update({ recording_path: null });
      result.recordings += done.length;
      const last = rows[rows.length - 1];
      after = startedAtKey(last);
      if (rows.length < batch) break;
      await between();
    }
    await db('retention_marks').insert({ kind: 'recordings', done_before: toDbTimestamp(cutoff) }).onConflict('kind').merge(['done_before']);
  }

  // Voicemails: the row goes, so each batch starts again from the oldest.
  if (opts.voicemailDays > 0) {
    const cutoff = toDbTimestamp(new Date(now.getTime() - opts.voicemailDays * DAY_MS));
    let skip: number[] = [];
    for (;;) {
      const rows: Array<{ id: number; file_path: string }> = await db('voicemails').where('created_at', '<', cutoff).whereNotIn('id', skip).orderBy('id').limit(batch).select('id', 'file_path');
      if (rows.length === 0) break;
      const done: number[] = [];
      for (const r of rows) {
        if (await removeFile(r.file_path)) done.push(Number(r.id));
        else skip.push(Number(r.id));
      }
      if (done.length > 0) await db('voicemails').whereIn('id', done).delete();
      result.voicemails += done.length;
      if (skip.length > 10_000) skip = skip.slice(-10_000);
      if (rows.length < batch) break;
      await between();
    }
  }

  // CDRs, oldest first; a CDR's recording file goes with it.
  if (opts.cdrDays > 0) {
    const cutoff = toDbTimestamp(new Date(now.getTime() - opts.cdrDays * DAY_MS));
    for (;;) {
      const rows: Array<{ id: number; recording_path: string | null }> = await db('cdrs').where('started_at', '<', cutoff).orderBy('started_at').limit(batch).select('id', 'recording_path');
      if (rows.length === 0) break;
      for (const r of rows) await removeFile(r.recording_path);
      result.cdrs += await db('cdrs').whereIn('id', rows.map((r) => Number(r.id))).delete();
      if (rows.length < batch) break;
      await between();
    }
  }

  const runsCutoff = toDbTimestamp(new Date(now.getTime() - (opts.cronRunsDays ?? 30) * DAY_MS));
  for (;;) {
    const ids = (await db<{ id: number }>('cron_runs').where('started_at', '<', runsCutoff).orderBy('id').limit(batch).select('id')).map((r) => Number(r.id));
    if (ids.length === 0) break;
    result.cronRuns += await db('cron_runs').whereIn('id', ids).delete();
    if (ids.length < batch) break;
    await between();
  }
  return result;
}

export function retentionRows(r: RetentionResult): number {
  return r.recordings + r.voicemails + r.cdrs + r.cronRuns;
}
