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
 */
import { costOf } from '../billing/usage';
import type { Money } from '../domain/money';
import { isBlankLine } from './spool';

/** One CDR found in the spool at the start, not yet charged. */
export interface UnchargedCdr {
  readonly cost: Money;
  /** cdrs.started_at as spooled: the day and month it is charged to (chargedPeriodStarts). */
  readonly startedAt: string;
  /** Pending since (performance.now): its segment's instant in CdrSpool.pendingSince. */
  readonly since: number;
}

export class UnchargedBacklog {
  /** By tenant id, each in the order of `since`. */
  private readonly byTenant = new Map<number, UnchargedCdr[]>();

  /**
   * The lines of one segment, pending since `since`. Segments come oldest first (CdrSpool.eachSegment).
   * A line that does not parse, or has no tenant or no cost, charges nothing here (the replay
   * quarantines what the database refuses). Never throws.
   */
  addSegment(bytes: Uint8Array, since: number): number {
    let added = 0;
    // As latin1: the fields read are ASCII whatever the rest of a line holds, and decoding a
    // segment as UTF-8 took twice as long.
    for (const line of Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1').split('\n')) {
      // A quick look first: most of a backlog may be calls nobody paid for (missed, refused).
      if (isBlankLine(line) || !line.includes('"cost":"')) continue;
      const cdr = parsed(line);
      if (!cdr) continue;
      let list = this.byTenant.get(cdr.tenantId);
      if (!list) this.byTenant.set(cdr.tenantId, (list = []));
      list.push({ cost: cdr.cost, startedAt: cdr.startedAt, since });
      added++;
    }
    return added;
  }

  /**
   * The tenant's CDRs not yet charged: those pending since `unchargedSince` or later (every CDR
   * handed in before it is in the database or quarantined; null: every one is). Those charged are
   * forgotten.
   */
  of(tenantId: number, unchargedSince: number | null): readonly UnchargedCdr[] {
    if (unchargedSince === null) {
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

  /** CDRs kept (of every tenant). */
  get size(): number {
    let n = 0;
    for (const list of this.byTenant.values()) n += list.length;
    return n;
  }
}

const TENANT_KEY = '"tenant_id":';
const TENANT_ID = /\d{1,15}(?=[,}])/y;

/**
 * What a spool line says of its charge; null when it says none (or is not a CDR). The three
 * fields are found as the spool writes them (asciiJson: no spaces, `tenant_id` a number, `cost`
 * and `started_at` strings), the last of each as JSON.parse would take it, not by parsing the line:
 * a start-up over a 100,000-CDR backlog spent 0.3-0.45 s in JSON.parse (11 % of bench:cdr's
 * replay). A line the replay will quarantine may count until it is (its segment not yet done).
 */
function parsed(line: string): { tenantId: number; cost: Money; startedAt: string } | null {
  const at = line.lastIndexOf(TENANT_KEY);
  if (at < 0) return null;
  TENANT_ID.lastIndex = at + TENANT_KEY.length;
  const id = TENANT_ID.exec(line);
  const cost = stringField(line, 'cost');
  const startedAt = stringField(line, 'started_at');
  if (!id || cost === null || startedAt === null) return null;
  let value: Money;
  try {
    value = costOf({ cost });
  } catch {
    return null;
  }
  return value > 0 ? { tenantId: Number(id[0]), cost: value, startedAt } : null;
}

/** The text of `"name":"…"`, the last in the line; a copy, so that it keeps no part of the line alive. */
function stringField(line: string, name: string): string | null {
  const key = `"${name}":"`;
  const at = line.lastIndexOf(key);
  if (at < 0) return null;
  const from = at + key.length;
  const end = line.indexOf('"', from);
  if (end < 0 || end - from > 64) return null;
  return Buffer.from(line.slice(from, end), 'latin1').toString('latin1');
}
