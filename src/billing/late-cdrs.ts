/**
 * CDRs that reach the database after their report may have been made (a spool replayed after an
 * outage, a daemon restarted with a backlog): each batch marks, in its own transaction, the report
 * periods (tenant, day or month in the tenant's zone, by started_at) of its new CDRs that ended
 * at least REPORT_SETTLE_MS ago — the reports job makes a period's report no earlier than that.
 * The reports job (reports.ts runReports) remakes the marked reports and deletes each mark only
 * if no batch added to it meanwhile (late_cdrs unchanged), so a CDR written during the remake is
 * not lost. Marks of tenants that no longer exist are purged.
 *
 * Cost to the CDR writer: no query per row. Deciding is per row in memory (two cached period
 * starts, compared with each zone's current period computed once per batch); the tenants are the
 * batch's one read (usage.ts readBatchTenants, shared with charging); one multi-row upsert only
 * for a batch that has late CDRs.
 */
import type { Knex } from 'knex';
import { dbKind, fromDbTimestamp, toDbTimestamp } from '../db/connect';
import { periodStartOf, tenantZone, type PeriodKind } from '../domain/periods';

/** Reports are made this long after the period ends, so the calls that ended with it are written. */
export const REPORT_SETTLE_MS = 5 * 60_000;

export interface LateMark {
  tenantId: number;
  kind: PeriodKind;
  start: string;
  /** Late CDRs counted in the mark (the job's delete is conditional on it). */
  cdrs: number;
}

const KINDS: readonly PeriodKind[] = ['day', 'month'];

/**
 * The report periods of `cdrs` that ended at least REPORT_SETTLE_MS before `now`, with how many
 * of the CDRs fall in each (pure). A period ended that long ago iff it starts before the period
 * that holds `now - REPORT_SETTLE_MS` (period starts are YYYY-MM-DD, ordered as text).
 */
export function lateReportPeriods(cdrs: ReadonlyArray<{ tenant_id: number | null; started_at: string | null }>, zones: ReadonlyMap<number, string>, now: Date): LateMark[] {
  const settled = new Date(now.getTime() - REPORT_SETTLE_MS);
  const current = new Map<string, Record<PeriodKind, string>>();
  const marks = new Map<string, LateMark>();
  for (const c of cdrs) {
    if (c.tenant_id === null || c.started_at === null) continue;
    const zone = zones.get(c.tenant_id) ?? tenantZone(null);
    let open = current.get(zone);
    if (!open) current.set(zone, (open = { day: periodStartOf('day', settled, zone), month: periodStartOf('month', settled, zone) }));
    const at = instantOf(c.started_at);
    if (at === null) continue; // the database refuses it, or charging does: not a report's concern
    for (const kind of KINDS) {
      const start = periodStartOf(kind, at, zone);
      if (start >= open[kind]) continue;
      const key = `${String(c.tenant_id).padStart(12, '0')}/${kind}/${start}`;
      const m = marks.get(key);
      if (m) m.cdrs++;
      else marks.set(key, { tenantId: c.tenant_id, kind, start, cdrs: 1 });
    }
  }
  return [...marks.keys()].sort().map((k) => marks.get(k)!);
}

function instantOf(value: string): Date | null {
  try {
    return fromDbTimestamp(value);
  } catch {
    return null;
  }
}

/** Upserts the marks (adding to late_cdrs), in key order like the batch's other row locks. */
export async function recordLateMarks(trx: Knex.Transaction, marks: readonly LateMark[], now: Date): Promise<void> {
  const at = toDbTimestamp(now);
  const mysql = dbKind(trx) === 'mysql';
  const tail = mysql
    ? ' ON DUPLICATE KEY UPDATE late_cdrs = late_cdrs + VALUES(late_cdrs), marked_at = VALUES(marked_at)'
    : ' ON CONFLICT (tenant_id, period_kind, period_start) DO UPDATE SET late_cdrs = late_cdrs + excluded.late_cdrs, marked_at = excluded.marked_at';
  for (let i = 0; i < marks.length; i += 200) {
    const chunk = marks.slice(i, i + 200);
    const bindings = chunk.flatMap((m) => [m.tenantId, m.kind, m.start, m.cdrs, at]);
    await trx.raw(`INSERT INTO report_late_cdrs (tenant_id, period_kind, period_start, late_cdrs, marked_at) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?)').join(', ')}${tail}`, bindings);
  }
}

/** The oldest marks first, at most `limit` (the rest wait for the next run). */
export async function readLateMarks(db: Knex, limit: number): Promise<LateMark[]> {
  const rows: Array<{ tenant_id: unknown; period_kind: unknown; period_start: unknown; late_cdrs: unknown }> = await db('report_late_cdrs')
    .orderBy('id')
    .limit(limit)
    .select('tenant_id', 'period_kind', 'period_start', 'late_cdrs');
  return rows.map((r) => ({ tenantId: Number(r.tenant_id), kind: String(r.period_kind) as PeriodKind, start: String(r.period_start), cdrs: Number(r.late_cdrs) }));
}

/** Deletes a mark handled by the job, unless a batch added late CDRs to it since it was read. */
export async function clearLateMark(db: Knex, m: LateMark): Promise<boolean> {
  return (await db('report_late_cdrs').where({ tenant_id: m.tenantId, period_kind: m.kind, period_start: m.start, late_cdrs: m.cdrs }).delete()) > 0;
}

/** Marks of tenants deleted from `tenants` (nothing to remake for them). */
export async function purgeOrphanLateMarks(db: Knex): Promise<number> {
  return db('report_late_cdrs').whereNotIn('tenant_id', db('tenants').select('id')).delete();
}
