/**
 * The costed CDRs a daemon finds in its spool as its CDR writer starts: a previous run's segments
 * the database did not take (it was away, slow, or the daemon was killed), the CDRs of the calls
 * its call journal says were cut (recoverStoppedCalls spools them first), a worker's folder
 * adopted. No spend group of this process counted their calls when they ended, and until the
 * writer charges them a read of the tenant's money does not show them: a prepaid tenant's next
 * call would be planned from money these calls had already spent. They are kept here, by tenant,
 * with the instant since which they are pending (their segment's, CdrSpool.pendingSince), and
 * given to the spend groups (SpendGroups) until the writer has charged every CDR handed in by
 * then (CdrWriter.unchargedSince).
 *
 * A tenant's CDRs of one segment that started in the same minute are kept as one (their costs
 * added): they are charged to the same day and month in every zone (whole-minute offsets), and a
 * new group counts one entry each (a tenant with 100,000 CDRs in the spool, one a CDR, held the
 * event loop 0.2 s at its next answer).
 */
import { costOf } from '../billing/usage';
import { fromDbTimestamp } from '../db/connect';
import type { Money } from '../domain/money';
import { isBlankLine } from './spool';

/** CDRs of one tenant, segment and minute, not yet charged. */
export interface UnchargedCdr {
  /** Their costs added. */
  readonly cost: Money;
  /** When the first of them started (cdrs.started_at, ms): the day and month they are charged to (chargedPeriodStarts). */
  readonly startedAtMs: number;
  /** Pending since (performance.now): their segment's instant in CdrSpool.pendingSince. */
  readonly since: number;
}

interface Entry {
  cost: Money;
  readonly startedAtMs: number;
  readonly since: number;
}

export class UnchargedBacklog {
  /** By tenant id, each in the order of `since`. */
  private readonly byTenant = new Map<number, Entry[]>();
  /** The latest `since` kept: once the writer has charged past it, nothing here counts any more. */
  private latest = -Infinity;

  /**
   * The lines of one segment, pending since `since`. Segments come oldest first (CdrSpool.eachSegment).
   * A line that does not parse, has no tenant, no cost above 0 or a start that is not a time
   * charges nothing here (the replay quarantines what the database refuses). Never throws.
   * Returns the CDRs counted.
   */
  addSegment(bytes: Uint8Array, since: number): number {
    let added = 0;
    // This segment's entries, by tenant and minute: only CDRs of one segment are added together.
    const entries = new Map<string, Entry>();
    // As latin1: the fields read are ASCII whatever the rest of a line holds (an older spool's
    // UTF-8 caller regions read as other characters, still JSON), and decoding is twice as fast.
    for (const line of Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1').split('\n')) {
      // A quick look first: most of a backlog may be calls nobody paid for (missed, refused).
      if (!line.includes('"cost"') || isBlankLine(line)) continue;
      const cdr = parsed(line);
      if (!cdr) continue;
      const key = `${cdr.tenantId}|${Math.floor(cdr.startedAtMs / 60_000)}`;
      const same = entries.get(key);
      if (same) same.cost = (same.cost + cdr.cost) as Money;
      else {
        const entry = { cost: cdr.cost, startedAtMs: cdr.startedAtMs, since };
        entries.set(key, entry);
        let list = this.byTenant.get(cdr.tenantId);
        if (!list) this.byTenant.set(cdr.tenantId, (list = []));
        list.push(entry);
      }
      this.latest = Math.max(this.latest, since);
      added++;
    }
    return added;
  }

  /**
   * The tenant's CDRs not yet charged: those pending since `unchargedSince` or later (every CDR
   * handed in before it is in the database or quarantined; null: every one is). Those charged are
   * forgotten, every tenant's once the writer has charged past the latest.
   */
  of(tenantId: number, unchargedSince: number | null): readonly UnchargedCdr[] {
    if (unchargedSince === null || unchargedSince > this.latest) {
      this.byTenant.clear();
      return [];
    }
    const list = this.byTenant.get(tenantId);
    if (!list) return [];
    let charged = 0;
    while (charged < list.length && list[charged].since < unchargedSince) charged++;
    if (charged === list.length) {
      this.byTenant.delete(tenantId);
      return [];
    }
    if (charged > 0) list.splice(0, charged);
    return list;
  }

  /** Entries kept (of every tenant). */
  get size(): number {
    let n = 0;
    for (const list of this.byTenant.values()) n += list.length;
    return n;
  }
}

/** What a spool line says of its charge, read as the replay reads it (JSON.parse); null when it says none. */
function parsed(line: string): { tenantId: number; cost: Money; startedAtMs: number } | null {
  try {
    const cdr: unknown = JSON.parse(line);
    if (typeof cdr !== 'object' || cdr === null) return null;
    const { tenant_id: tenantId, cost, started_at: startedAt } = cdr as Record<string, unknown>;
    if (typeof tenantId !== 'number' || !Number.isSafeInteger(tenantId) || (typeof cost !== 'string' && typeof cost !== 'number') || typeof startedAt !== 'string') return null;
    const value = costOf({ cost });
    // Throws on a start that is not a time, as the batch that charges it would.
    const startedAtMs = fromDbTimestamp(startedAt)?.getTime() ?? NaN;
    return value > 0 && Number.isFinite(startedAtMs) ? { tenantId, cost: value, startedAtMs } : null;
  } catch {
    return null;
  }
}
