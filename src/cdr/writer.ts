/**
 * Moves CDRs from the durable spool into the `cdrs` table. Writing is idempotent by call_uuid
 * (a replayed segment never doubles a call), and each new CDR's cost is charged (tenant_usage
 * spend, prepaid balance) in the transaction that inserts it, so exactly once. A database that is down leaves the spool growing and
 * is retried; a record the database refuses as data is quarantined instead of blocking the rest.
 */
import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { chargeNewCdrs, fitCost, type CappedCharge } from '../billing/usage';
import { missedCallsOf, queueMissedCalls } from '../notify';
import type { Tenant } from '../snapshot/types';
import { dbKind } from '../db/connect';
import type { Metrics } from '../metrics';
import { fitColumns, type CdrRecord } from './record';
import type { CdrSpool } from './spool';

const BATCH = 500;

export class CdrWriter {
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private depth = 0;
  private retryAt = 0;
  private stopped = false;

  constructor(
    private readonly knex: Knex,
    private readonly spool: CdrSpool,
    private readonly options: { flushIntervalMs: number; retryIntervalMs: number; tenants?: TenantsOf },
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  async start(): Promise<void> {
    await this.spool.open();
    this.depth = await this.spool.countRecords();
    this.metrics.cdrSpoolDepth.set(this.depth);
    if (this.depth > 0) this.log.info({ spooled: this.depth }, 'replaying spooled CDRs');
    this.schedule(0);
  }

  /** Records one call durably; resolves when the CDR is in the spool (not yet the database). */
  async record(cdr: CdrRecord): Promise<void> {
    await this.spool.append(fitColumns(cdr));
    this.depth++;
    this.metrics.cdrSpoolDepth.set(this.depth);
  }

  /** Writes everything spooled so far; resolves when done or when the database refused. */
  flush(): Promise<void> {
    this.flushing ??= this.flushOnce().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /** Final flush on shutdown: what cannot be written stays in the spool for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.retryAt = 0;
    await this.flush();
    await this.spool.close();
  }

  get spoolDepth(): number {
    return this.depth;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.flush().finally(() => this.schedule(this.options.flushIntervalMs));
    }, ms);
    this.timer.unref();
  }

  private async flushOnce(): Promise<void> {
    if (Date.now() < this.retryAt) return;
    await this.spool.rotate();
    for (const segment of await this.spool.closedSegments()) {
      const ok = await this.replaySegment(segment);
      if (!ok) {
        this.retryAt = Date.now() + this.options.retryIntervalMs;
        return;
      }
    }
  }

  /** False when the database is unreachable (try again later). */
  private async replaySegment(segment: string): Promise<boolean> {
    const text = await fsp.readFile(segment, 'utf8');
    const records: CdrRecord[] = [];
    // Quarantined only once the whole segment is done: a retry after an outage must not file
    // the same line twice.
    const refused: Array<{ line: string; reason: string }> = [];
    let lines = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      lines++;
      try {
        records.push(JSON.parse(line) as CdrRecord);
      } catch {
        // Only a crash in the middle of a write leaves a partial line; it was never acknowledged.
        refused.push({ line, reason: 'unparsable spool line' });
      }
    }
    for (let i = 0; i < records.length; i += BATCH) {
      const batch = records.slice(i, i + BATCH);
      try {
        await this.insert(batch);
      } catch (err) {
        if (!isDataError(err)) {
          this.log.warn({ err: describe(err), spooled: this.depth }, 'database unavailable for CDRs; kept in spool');
          return false;
        }
        // One bad record must not hold back the others: write them one by one.
        for (const record of batch) {
          try {
            await this.insert([record]);
          } catch (single) {
            if (!isDataError(single)) return false;
            refused.push({ line: JSON.stringify(record), reason: describe(single) });
          }
        }
      }
    }
    for (const r of refused) {
      this.log.error({ reason: r.reason, line: r.line.slice(0, 200) }, 'CDR refused; quarantined in the spool directory');
      this.spool.quarantine(r.line, r.reason);
      this.metrics.cdrsQuarantined.inc();
    }
    await fsp.unlink(segment);
    this.depth = Math.max(0, this.depth - lines);
    this.metrics.cdrSpoolDepth.set(this.depth);
    return true;
  }

  /**
   * Inserts, ignoring calls already written, and charges the new ones (tenant_usage spend, prepaid
   * balance) in the same transaction: a replayed CDR is neither written nor charged twice.
   * Counts only the rows that are new.
   */
  private async insert(records: CdrRecord[]): Promise<void> {
    await this.metrics.timeDb('cdr_insert', async () => {
      const { fresh, capped } = await writeCdrBatch(this.knex, records, this.options.tenants);
      if (fresh > 0) this.metrics.cdrsWritten.inc(fresh);
      for (const c of capped) {
        this.metrics.chargesCapped.inc({ column: c.column });
        this.log.warn({ tenant_id: c.tenantId, column: c.column, detail: c.detail }, 'charge capped to what DECIMAL(14,4) holds; the CDR is written');
      }
    });
  }
}

/** What one batch did: new rows, and the charges cut to what the money columns hold. */
export interface WriteResult {
  fresh: number;
  capped: CappedCharge[];
}

/** The tenants in force, for missed-call notifications (the configuration snapshot). */
export type TenantsOf = () => ReadonlyMap<number, Tenant>;

/** Writes and charges one batch in its own transaction (retried on lock conflicts); returns the new rows. */
export async function writeCdrs(knex: Knex, records: readonly CdrRecord[], tenants?: TenantsOf): Promise<number> {
  return (await writeCdrBatch(knex, records, tenants)).fresh;
}

export function writeCdrBatch(knex: Knex, records: readonly CdrRecord[], tenants?: TenantsOf): Promise<WriteResult> {
  return withLockRetry(() => knex.transaction((trx) => insertAndCharge(trx, records, tenants)));
}

/**
 * One batch, one transaction: insert (duplicates by call_uuid are no-ops), find the rows this
 * statement inserted, charge them, drop them from live_calls. Returns how many were new.
 *
 * Which rows are new is decided by the database, not by a read before the insert: every row of
 * the batch carries a fresh `write_batch` token and a duplicate keeps the token of whoever
 * inserted it first. Two daemons writing the same call at the same moment are serialised by the
 * unique key on call_uuid; only the one whose insert won sees the row as its own. Rows are sorted
 * by call_uuid so concurrent batches lock keys in the same order.
 */
export async function insertAndCharge(trx: Knex.Transaction, records: readonly CdrRecord[], tenants?: TenantsOf): Promise<WriteResult> {
  const batch = randomUUID();
  const byUuid = new Map<string, CdrRecord>();
  const costCapped = new Map<string, CappedCharge>();
  for (const r of records) {
    if (byUuid.has(r.call_uuid)) continue;
    // A cost cdrs.cost cannot hold is cut to its maximum: refused, the CDR would be quarantined.
    const { cdr, capped } = fitCost(r);
    byUuid.set(r.call_uuid, cdr);
    if (capped) costCapped.set(r.call_uuid, capped);
  }
  const uuids = [...byUuid.keys()].sort();
  const rows = uuids.map((u) => ({ ...byUuid.get(u)!, write_batch: batch }));
  const query = trx('cdrs').insert(rows).onConflict('call_uuid');
  // MySQL: a no-op ON DUPLICATE KEY UPDATE, not INSERT IGNORE (which would also turn data
  // errors into silent warnings). SQLite: ON CONFLICT DO NOTHING.
  await (dbKind(trx) === 'mysql' ? query.merge(['call_uuid']) : query.ignore());
  const mine: Array<{ call_uuid: string }> = await trx('cdrs').whereIn('call_uuid', uuids).andWhere('write_batch', batch).select('call_uuid');
  const fresh = mine.map((r) => byUuid.get(r.call_uuid)!);
  const charged = await chargeNewCdrs(trx, fresh);
  // Missed calls of new CDRs queue their notification in the same transaction: once per call.
  if (tenants) await queueMissedCalls(trx, missedCallsOf(tenants(), fresh));
  await trx('live_calls').whereIn('call_uuid', uuids).delete();
  const costs = mine.flatMap((r) => costCapped.get(r.call_uuid) ?? []);
  return { fresh: fresh.length, capped: [...costs, ...charged.capped] };
}

/** Lock conflicts between concurrent writers roll the transaction back; run it again. */
async function withLockRetry<T>(fn: () => Promise<T>, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !isLockConflict(err)) throw err;
      await new Promise((r) => setTimeout(r, 5 * i + Math.floor(Math.random() * 10)));
    }
  }
}

export function isLockConflict(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'SQLITE_BUSY';
}

/** Errors that are about the data (retrying will not help) rather than the connection. */
export function isDataError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: string; sqlState?: string };
  if (typeof e.sqlState === 'string' && /^2[23]/.test(e.sqlState)) return true;
  if (typeof e.code === 'string') {
    if (/^ER_(DATA_|TRUNCATED|BAD_NULL|WARN_DATA|WRONG_VALUE|INVALID|NO_DEFAULT|DUP_ENTRY|CHECK_CONSTRAINT)/.test(e.code)) return true;
    if (/^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG)/.test(e.code)) return true;
  }
  return false;
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return `${e.code ?? 'ERROR'}: ${e.message ?? String(err)}`;
}
