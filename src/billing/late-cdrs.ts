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
import { periodOf, periodStartOf, tenantZone, type PeriodKind } from '../domain/periods';

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

/** toDbTimestamp's form: 'YYYY-MM-DD HH:MM:SS.sss' (UTC). */
const DB_TIMESTAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/;

/**
 * The report periods of `cdrs` that ended at least REPORT_SETTLE_MS before `now`, with how many
 * of the CDRs fall in each (pure). A period ended that long ago iff it starts before the period
 * that holds `now - REPORT_SETTLE_MS` (period starts are YYYY-MM-DD, ordered as text).
 */
export function lateReportPeriods(cdrs: ReadonlyArray<{ tenant_id: number | null; started_at: string | null }>, zones: ReadonlyMap<number, string>, now: Date): LateMark[] {
  const settled = new Date(now.getTime() - REPORT_SETTLE_MS);
  // Per zone, the day still open at `settled`: a CDR that started in it is on time for both kinds.
  const open = new Map<string, { dayFrom: number; dayFromText: string; starts: Record<PeriodKind, string> }>();
  const openOf = (zone: string): { dayFrom: number; dayFromText: string; starts: Record<PeriodKind, string> } => {
    let o = open.get(zone);
    if (!o) {
      const day = periodOf('day', settled, zone);
      open.set(zone, (o = { dayFrom: day.from.getTime(), dayFromText: toDbTimestamp(day.from), starts: { day: day.start, month: periodStartOf('month', settled, zone) } }));
    }
    return o;
  };
  // Late CDRs are counted per tenant and minute first (every zone's periods start on a whole
  // minute), then placed in their periods once per minute, not once per row.
  const byMinute = new Map<string, { tenantId: number; at: Date | string; cdrs: number }>();
  for (const c of cdrs) {
    if (c.tenant_id === null || c.started_at === null) continue;
    const o = openOf(zones.get(c.tenant_id) ?? tenantZone(null));
    // The daemon's own timestamps (toDbTimestamp: UTC text of one fixed width) compare as text.
    if (typeof c.started_at === 'string' && DB_TIMESTAMP.test(c.started_at)) {
      if (c.started_at >= o.dayFromText) continue;
      const key = `${c.tenant_id}\u0000${c.started_at.slice(0, 16)}`;
      const g = byMinute.get(key);
      if (g) g.cdrs++;
      else byMinute.set(key, { tenantId: c.tenant_id, at: c.started_at, cdrs: 1 });
      continue;
    }
    const at = instantOf(c.started_at);
    if (at === null || at.getTime() >= o.dayFrom) continue; // unreadable: the database refuses it, not a report's concern
    byMinute.set(`${c.tenant_id}\u0000${at.toISOString()}\u0000${byMinute.size}`, { tenantId: c.tenant_id, at, cdrs: 1 });
  }
  const marks = new Map<string, LateMark>();
  for (const g of byMinute.values()) {
    const zone = zones.get(g.tenantId) ?? tenantZone(null);
    const at = typeof g.at === 'string' ? instantOf(g.at) : g.at;
    if (at === null) continue;
    for (const kind of KINDS) {
      const start = periodStartOf(kind, at, zone);
      if (start >= openOf(zone).starts[kind]) continue;
      const key = `${String(g.tenantId).padStart(12, '0')}/${kind}/${start}`;
      const m = marks.get(key);
      if (m) m.cdrs += g.cdrs;
      else marks.set(key, { tenantId: g.tenantId, kind, start, cdrs: g.cdrs });
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
