/**
 * Moves CDRs from the durable spool into the `cdrs` table, in batches that span spool segments
 * (src/cdr/batch.ts: multi-row inserts idempotent by call_uuid, each new CDR's cost charged in
 * the transaction that inserts it, so exactly once). A database that is down leaves the spool
 * growing and is retried; a batch the database refuses as data is halved until the refused record
 * is alone, and only that record is quarantined. A segment is deleted once every line of it is
 * written or quarantined. The writer decides all of this on the main thread; a batch's statements
 * run where its runner puts them (batch-runner.ts: on an SQLite file, a thread of their own).
 */
import fsp from 'node:fs/promises';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { dbKind } from '../db/connect';
import type { Metrics } from '../metrics';
import { checkRecord, describeError, isDataError, requiredColumnNotWritten, type TenantsOf } from './batch';
import { inProcessRunner, type CdrBatchRunner } from './batch-runner';
import { flushLogAtCommitProblem, readFlushLogAtCommit } from './durability';
import { fitColumns, type CdrRecord } from './record';
import { countLines, isBlankLine, SpoolClosedError, type CdrSpool } from './spool';
import { UnchargedBacklog, type UnchargedCdr } from './uncharged';

export { CdrDataError, checkRecord, insertAndCharge, isDataError, isLockConflict, writeCdrBatch, writeCdrs, type TenantsOf, type WriteResult } from './batch';

/** How long the start-up durability check waits for the database. */
const DURABILITY_QUERY_MS = 5000;

/** How often CDRs the spool refused are offered to it again. */
export const HELD_CDR_RETRY_MS = 1000;

/**
 * The most CDRs held in memory (about 1 KB each: ~100 MB). A disk full for hours at a carrier's
 * call rate would otherwise grow the heap until the process dies, and every call up with it; past
 * this a refused CDR fails its record() at once, and the call server logs it in full (its call
 * stays in the call journal).
 */
export const HELD_CDR_MAX = 100_000;

/** What a caller that lets the writer hold its CDR hears of it later (record()). */
export interface HeldCdrCallbacks {
  /** It is kept at last: the spool took it, or the database did straight (written and charged). */
  kept(): void;
  /** The writer stopped with neither the spool nor the database taking it. */
  failed(err: Error): void;
}

/** A CDR the spool refused, waiting in memory. */
interface HeldCdr {
  readonly row: object;
  readonly callUuid: string;
  readonly then: HeldCdrCallbacks;
  /** When it was handed to record() (performance.now): unchargedSince(), and the spool when it takes it. */
  readonly at: number;
}

/** Records per transaction when the options do not say. */
export const DEFAULT_BATCH_ROWS = 2000;

/** A spool segment being replayed: deleted once none of its records is still unwritten. */
interface SegmentState {
  readonly path: string;
  /** Non-blank lines (what the spool-depth gauge counted). */
  readonly lines: number;
  /** Records of it not yet written or quarantined. */
  open: number;
  /** Lines refused (unparsable, or refused by the database), quarantined when the segment is done. */
  readonly refused: Array<{ line: string; reason: string }>;
  /** It left the folder between the listing and the read (moved away by an operator): nothing to write or delete. */
  readonly gone?: true;
}

/** What insertHalving made of a batch. */
interface Halved<T> {
  readonly written: T[];
  /** Refused as data, each alone. */
  readonly refused: Array<{ item: T; err: unknown }>;
  /** The refusal that stopped it (the database away, or a NOT NULL column the daemon does not write), or null; the items after it were not tried. */
  away: { err: unknown; column: string | null } | null;
}

interface Pending {
  readonly record: CdrRecord;
  readonly line: string;
  readonly segment: SegmentState;
}

export class CdrWriter {
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  /** The flush that starts when the one under way ends (flush()). */
  private followUp: Promise<void> | null = null;
  /** The durability check was made, or is under way (checkDurability). */
  private durabilityAsked = false;
  private depth = 0;
  private retryAt = 0;
  private stopped = false;
  private readonly runner: CdrBatchRunner;
  /** CDRs the spool refused, oldest first (record()). */
  private held: HeldCdr[] = [];
  private heldTimer: NodeJS.Timeout | null = null;
  /** The retry of the held CDRs under way (releaseHeld waits for it). */
  private retrying: Promise<void> | null = null;
  /** The spool's last refusal while it refuses (null once it takes a CDR again): /healthz, the gauge, the error a CDR still held at stop() fails with. */
  private heldError: Error | null = null;
  /** CDRs the spool refused were written to the database straight since it began refusing (said once). */
  private heldWrittenSaid = false;
  /** The database did not take held CDRs either (said once until it takes one). */
  private heldAwaySaid = false;
  /** The costed CDRs found in the spool at start(), until charged. */
  private readonly backlog = new UnchargedBacklog();
  /** When each record() under way was handed in, until the spool took it or it is held (unchargedSince). */
  private readonly recording = new Map<number, number>();
  private recordSeq = 0;

  constructor(
    private readonly knex: Knex,
    private readonly spool: CdrSpool,
    private readonly options: {
      flushIntervalMs: number;
      retryIntervalMs: number;
      tenants?: TenantsOf;
      /** The daemon's clock: when a batch is written, which decides which CDRs are late (late-cdrs.ts). */
      clock?: () => Date;
      batchRows?: number;
      batchesInFlight?: number;
      /** The database's innodb_flush_log_at_trx_commit (tests); by default read from it. */
      readFlushLogAtCommit?: () => Promise<number | null>;
      /** Where batches are written (batch-runner.ts); by default on this thread, with `knex`. */
      runner?: CdrBatchRunner;
      /** The most CDRs held in memory while the spool refuses them (tests); HELD_CDR_MAX by default. */
      heldMax?: number;
    },
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.runner = options.runner ?? inProcessRunner(knex);
  }

  async start(): Promise<void> {
    await this.spool.open();
    this.metrics.cdrSpoolOldestMs = () => this.spool.oldestSegmentMs();
    this.checkDurability();
    // Every CDR in the spool now is one this process's spend groups never counted (uncharged.ts).
    let depth = 0;
    await this.spool.eachSegment((bytes, since) => {
      depth += countLines(bytes);
      this.backlog.addSegment(bytes, since);
    });
    this.depth = depth;
    this.metrics.cdrSpoolDepth.set(this.depth);
    if (this.depth > 0) this.log.info({ spooled: this.depth }, 'replaying spooled CDRs');
    // The batch thread (SQLite) starts now, beside the daemon's warm-up, not at the first batch.
    this.runner.prepare();
    this.schedule(0);
  }

  /**
   * Records one call durably: 'spooled' once the CDR is in the spool (not yet the database).
   *
   * A spool that refuses it (a full disk, a file system gone read-only) rejects, unless the caller
   * passes `held`: then the CDR is held in memory and this resolves 'held' at once. Every
   * HELD_CDR_RETRY_MS the held CDRs are offered to the spool again, and those it still refuses are
   * written to the database straight (retryHeld), as the spool's replay would write them: charged
   * once, idempotent by call_uuid. `held.kept()` says when either took it (the call server ends
   * the call's journal entry only then), `held.failed()` that the writer stopped first. Before, the
   * CDR went to the error log and nowhere else: the call was never written nor charged. While any
   * is held, later held CDRs wait behind them (one write a second, not one a CDR). Counted
   * (hotline_cdr_spool_write_failures_total), shown (hotline_cdr_spool_refusing,
   * hotline_cdrs_held_in_memory, /healthz `cdr_spool_failing`) and logged once a failure and once
   * when the spool takes them again. At most `heldMax` are held; past that it rejects. `at`: when
   * it was handed in (performance.now; unchargedSince), as the caller told its spend guard.
   */
  async record(cdr: CdrRecord, held?: HeldCdrCallbacks, at: number = performance.now()): Promise<'spooled' | 'held'> {
    // Uncharged from now (unchargedSince), also between a refusal and the hold that follows it.
    const id = this.recordSeq++;
    this.recording.set(id, at);
    try {
      return await this.spoolOrHold(cdr, held, at);
    } finally {
      this.recording.delete(id);
    }
  }

  private async spoolOrHold(cdr: CdrRecord, held: HeldCdrCallbacks | undefined, at: number): Promise<'spooled' | 'held'> {
    const row = fitColumns(cdr);
    if (this.held.length === 0 || !held) {
      try {
        await this.spool.append(row, at);
        this.spooled();
        this.spoolTakesAgain();
        return 'spooled';
      } catch (err) {
        if (err instanceof SpoolClosedError || this.stopped) throw err;
        if (!held) {
          // The caller keeps it (the journal, the click-to-call sweeper): counted, not held.
          this.metrics.cdrSpoolWriteFailures.inc();
          throw err;
        }
        this.spoolRefused(err as Error);
      }
    }
    const heldMax = this.options.heldMax ?? HELD_CDR_MAX;
    if (this.stopped || this.held.length >= heldMax) {
      throw new Error(`the CDR spool refuses writes and ${this.held.length} CDRs are held in memory already: ${this.heldError?.message ?? 'refused'}`);
    }
    this.held.push({ row, callUuid: cdr.call_uuid, then: held, at });
    this.metrics.cdrsHeldInMemory.set(this.held.length);
    this.retryHeldLater();
    return 'held';
  }

  /**
   * For a stop: waits for a retry under way, makes one last offer of the CDRs held in memory (to
   * the spool, then to the database), and those neither takes are `failed` (the call server logs
   * each in full, and leaves its call in the call journal, which the next start makes a CDR of).
   * Called after `stopped` is set, so nothing is held again.
   */
  private async releaseHeld(): Promise<void> {
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    while (this.retrying) await this.retrying;
    await this.retryHeld();
    for (const h of this.held.splice(0)) h.then.failed(new Error(`the CDR of call ${h.callUuid} was still refused by the CDR spool, and not written to the database, when the daemon stopped: ${this.heldError?.message ?? 'refused'}`));
    this.metrics.cdrsHeldInMemory.set(0);
  }

  /** CDRs the spool refused and this writer holds in memory (record()). */
  get heldInMemory(): number {
    return this.held.length;
  }

  /** The spool refused the last CDR offered to it (and has taken none since). */
  get spoolRefusing(): boolean {
    return this.heldError !== null;
  }

  private spooled(): void {
    this.depth++;
    this.metrics.cdrSpoolDepth.set(this.depth);
  }

  private spoolRefused(err: Error): void {
    this.metrics.cdrSpoolWriteFailures.inc();
    if (this.heldError === null) {
      this.log.error({ err, spool: this.spool.dir }, `the CDR spool refused a CDR: CDRs are held in memory, offered to it again every ${HELD_CDR_RETRY_MS} ms, and written to the database straight while it refuses them (lost if this process dies with the database away too, but for what the call journal kept): free space or fix CDR_SPOOL_DIR`);
      this.metrics.cdrSpoolRefusing.set(1);
    }
    this.heldError = err;
  }

  /** The spool took a CDR: once nothing is held either, the refusal is over (said once). */
  private spoolTakesAgain(): void {
    if (this.heldError === null || this.held.length > 0) return;
    this.heldError = null;
    this.heldWrittenSaid = false;
    this.heldAwaySaid = false;
    this.metrics.cdrSpoolRefusing.set(0);
    this.log.warn('the CDR spool takes CDRs again: every CDR held in memory is spooled or written');
  }

  private retryHeldLater(): void {
    if (this.heldTimer || this.stopped) return;
    this.heldTimer = setTimeout(() => {
      this.heldTimer = null;
      if (this.retrying) return this.retryHeldLater();
      this.retrying = this.retryHeld().finally(() => {
        this.retrying = null;
      });
    }, HELD_CDR_RETRY_MS);
  }

  /**
   * Offers every held CDR to the spool again (one group write), and those it refuses to the
   * database straight (writeHeld); those neither takes stay held, in order. They stay in `held`
   * while offered (a CDR recorded meanwhile goes behind them, heldMax and /healthz count them).
   * With nothing held while the spool refuses, it is asked whether it takes writes again (probe):
   * on a quiet node no CDR would ever tell.
   */
  private async retryHeld(): Promise<void> {
    if (this.held.length > 0) await this.offerHeld(this.held.slice());
    else if (this.heldError !== null) await this.probeSpool();
    if (this.held.length > 0 || this.heldError !== null) this.retryHeldLater();
  }

  /** One offer of `batch` (the CDRs held now, oldest first): to the spool, then to the database. */
  private async offerHeld(batch: readonly HeldCdr[]): Promise<void> {
    const results = await Promise.allSettled(batch.map((h) => this.spool.append(h.row, h.at)));
    const settled = new Set<HeldCdr>();
    const still: HeldCdr[] = [];
    let refused: Error | null = null;
    let took = false;
    results.forEach((r, i) => {
      const h = batch[i];
      if (r.status === 'fulfilled') {
        this.spooled();
        took = true;
        settled.add(h);
        h.then.kept();
      } else if (r.reason instanceof SpoolClosedError) {
        settled.add(h);
        h.then.failed(r.reason);
      } else {
        refused = r.reason as Error;
        still.push(h);
      }
    });
    if (refused !== null) this.spoolRefused(refused);
    if (still.length > 0) for (const h of await this.writeHeld(still)) settled.add(h);
    this.held = this.held.filter((h) => !settled.has(h));
    this.metrics.cdrsHeldInMemory.set(this.held.length);
    if (took) this.spoolTakesAgain();
  }

  /** Nothing held and the spool refused: an empty line, written as a record would be, says whether it takes writes again. */
  private async probeSpool(): Promise<void> {
    try {
      await this.spool.probe();
    } catch (err) {
      if (!(err instanceof SpoolClosedError)) this.heldError = err as Error;
      return;
    }
    this.spoolTakesAgain();
  }

  /**
   * Writes CDRs the spool refused to the database straight, as its replay would: each line read
   * back as the spool would hold it (checkRecord), inserted and charged in batches, idempotent by
   * call_uuid (a journal the full disk kept from ending makes the next start offer the call again:
   * the first CDR stands). A batch the database refuses as data is halved until the refused CDR is
   * alone, and that one stays held (the spool quarantines it once it takes it); a database away
   * leaves them all held (said once until it takes one). Returns those written.
   */
  private async writeHeld(held: readonly HeldCdr[]): Promise<HeldCdr[]> {
    const kept: HeldCdr[] = [];
    const writable: Array<{ h: HeldCdr; record: CdrRecord }> = [];
    for (const h of held) {
      const checked = checkRecord(JSON.parse(JSON.stringify(h.row)));
      if (checked.ok) writable.push({ h, record: checked.record });
    }
    const batchRows = Math.max(1, this.options.batchRows ?? DEFAULT_BATCH_ROWS);
    for (let at = 0; at < writable.length; at += batchRows) {
      const out = await this.insertHalving(writable.slice(at, at + batchRows), (i) => i.record);
      this.metrics.cdrsWrittenPastSpool.inc(out.written.length);
      for (const i of out.written) {
        kept.push(i.h);
        i.h.then.kept();
      }
      if (out.away === null) continue;
      if (!this.heldAwaySaid) {
        this.heldAwaySaid = true;
        this.log.error({ err: describeError(out.away.err), column: out.away.column ?? undefined, held: this.held.length }, 'CDRs the refusing spool could not take were not written to the database either: they stay in memory (lost if this process dies, but for what the call journal kept)');
      }
      break;
    }
    if (kept.length > 0) {
      this.heldAwaySaid = false;
      if (!this.heldWrittenSaid) {
        this.heldWrittenSaid = true;
        this.log.warn({ written: kept.length }, 'CDRs the refusing spool could not take were written to the database straight (charged as usual); later ones go the same way while it refuses');
      }
    }
    return kept;
  }

  /**
   * Writes everything spooled so far; resolves when done or when the database refused. A flush
   * already under way rotated the spool when it began, so records that came after are not in it:
   * a caller then gets one more flush after it (shared by everyone who asks meanwhile). Handing
   * back the flush under way lost the last CDRs of a stop that fell into a periodic flush: they
   * stayed in the spool until the next start.
   */
  flush(): Promise<void> {
    if (this.flushing) {
      this.followUp ??= this.flushing.catch(() => undefined).then(() => {
        this.followUp = null;
        return this.flush();
      });
      return this.followUp;
    }
    const flushing = this.flushOnce().finally(() => {
      this.flushing = null;
    });
    this.flushing = flushing;
    return flushing;
  }

  /** Final flush on shutdown: what cannot be written stays in the spool for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.releaseHeld();
    await this.flush().catch((err: unknown) => this.log.error({ err }, 'the final CDR flush failed; the CDRs stay in the spool for the next start'));
    await this.runner.close();
    await this.spool.close();
  }

  get spoolDepth(): number {
    return this.depth;
  }

  /**
   * The tenant's costed CDRs that were in the spool when this writer started (a previous run's,
   * the calls its call journal recovered, an adopted worker's) and are not charged yet: no spend
   * group of this process counted their calls (SpendGroups).
   */
  uncharged(tenantId: number): readonly UnchargedCdr[] {
    return this.backlog.of(tenantId, this.unchargedSince());
  }

  /**
   * Since when (performance.now, the spend guards' clock) a CDR handed to record() may not have
   * charged its tenant yet: when the oldest CDR still in the spool (queued, or in a segment not yet deleted:
   * CdrSpool.pendingSince), held in memory or being handed in was handed in; null when every one is in the database
   * (or quarantined). A read of a tenant's money sent at T sees every CDR handed in before
   * min(T, this): what the spend guard counts ended calls against (SpendGroup).
   */
  unchargedSince(): number | null {
    let since = this.spool.pendingSince();
    if (this.held.length > 0 && (since === null || this.held[0].at < since)) since = this.held[0].at;
    // A CDR the spool has just refused is in neither until record() holds it, a few callbacks later.
    for (const at of this.recording.values()) if (since === null || at < since) since = at;
    return since;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      // A flush that fails for anything but the database (which replay() says without throwing):
      // a segment that cannot be read, say. Its CDRs stay in the spool; the next flush tries again.
      void this.flush()
        .catch((err: unknown) => this.log.error({ err }, 'CDR flush failed; the CDRs stay in the spool, the next flush tries again'))
        .finally(() => this.schedule(this.options.flushIntervalMs));
    }, ms);
    this.timer.unref();
  }

  private async flushOnce(): Promise<void> {
    // The final flush is not put off: a periodic flush under way when stop() came may fail and set
    // retryAt after stop() began, and its records would wait in the spool for the next start.
    if (!this.stopped && Date.now() < this.retryAt) return;
    await this.spool.rotate();
    const ok = await this.replay(await this.spool.closedSegments());
    if (!ok) this.retryAt = Date.now() + this.options.retryIntervalMs;
  }

  /**
   * Says (a warn line) when the database may lose commits it acknowledged (durability.ts). In the
   * background, so that it never holds up the start; asked again after the next batch the database
   * took when it did not answer (not after every flush: an empty one says nothing about it).
   */
  private checkDurability(): void {
    if (this.durabilityAsked) return;
    this.durabilityAsked = true;
    const read = this.options.readFlushLogAtCommit ?? ((): Promise<number | null> => readFlushLogAtCommit(this.knex, DURABILITY_QUERY_MS));
    read().then(
      (value) => {
        const problem = flushLogAtCommitProblem(value);
        if (problem) this.log.warn({ innodb_flush_log_at_trx_commit: value }, problem);
      },
      () => {
        this.durabilityAsked = false;
      },
    );
  }

  /**
   * Replays closed segments, oldest first, in batches of `batchRows` records that may span
   * segments; one segment is read at a time. On MariaDB two batches are in flight at once (two
   * transactions on two connections: one batch is built and inserted while the other charges
   * and commits; they take row locks in the same order, see batch.ts), on SQLite one. False when
   * the database is unreachable (try again later): segments finished before stay finished, the
   * rest are replayed again next time.
   */
  private async replay(paths: readonly string[]): Promise<boolean> {
    const batchRows = Math.max(1, this.options.batchRows ?? DEFAULT_BATCH_ROWS);
    const parallel = Math.max(1, this.options.batchesInFlight ?? (dbKind(this.knex) === 'mysql' ? 2 : 1));
    const segments: SegmentState[] = [];
    const inflight = new Set<Promise<void>>();
    let failed = false;
    let pending: Pending[] = [];
    const launch = async (batch: Pending[]): Promise<void> => {
      const p = this.writeBatch(batch).then((ok) => {
        if (!ok) failed = true;
        inflight.delete(p);
      });
      inflight.add(p);
      if (inflight.size >= parallel) await Promise.race(inflight);
      await this.finish(segments);
    };
    for (const path of paths) {
      if (failed) break;
      segments.push(await this.read(path, pending));
      while (pending.length >= batchRows && !failed) {
        await launch(pending.slice(0, batchRows));
        pending = pending.slice(batchRows);
      }
      await this.finish(segments);
    }
    while (pending.length > 0 && !failed) {
      await launch(pending.slice(0, batchRows));
      pending = pending.slice(batchRows);
    }
    await Promise.all(inflight);
    await this.finish(segments);
    return !failed;
  }

  /**
   * Parses a segment; its records join `pending`, lines that cannot be records are refused. A
   * segment gone from the folder since it was listed (moved away by an operator, as
   * CdrSpool.closedSegments allows) is no longer this writer's: said, and skipped.
   */
  private async read(path: string, pending: Pending[]): Promise<SegmentState> {
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.log.warn({ segment: path }, 'a spool segment left the folder before it was replayed (moved away?): its CDRs are not written from here');
      return { path, lines: 0, open: 0, refused: [], gone: true };
    }
    const text = bytes.toString('utf8');
    let lines = 0;
    const refused: SegmentState['refused'] = [];
    const records: Array<{ record: CdrRecord; line: string }> = [];
    for (const line of text.split('\n')) {
      if (isBlankLine(line)) continue;
      lines++;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        // Only a crash in the middle of a write leaves a partial line; it was never acknowledged.
        refused.push({ line, reason: 'unparsable spool line' });
        continue;
      }
      const checked = checkRecord(value);
      if (checked.ok) records.push({ record: checked.record, line });
      else refused.push({ line, reason: describeError(checked.error) });
    }
    const segment: SegmentState = { path, lines, open: records.length, refused };
    for (const r of records) pending.push({ ...r, segment });
    return segment;
  }

  /**
   * Writes one batch; on a data error halves it until the refused record is alone, which is
   * refused (quarantined with its segment). False when the database is unreachable.
   */
  private async writeBatch(items: readonly Pending[]): Promise<boolean> {
    const out = await this.insertHalving(items, (i) => i.record);
    for (const r of out.refused) r.item.segment.refused.push({ line: r.item.line, reason: describeError(r.err) });
    for (const i of out.written) i.segment.open--;
    for (const r of out.refused) r.item.segment.open--;
    if (out.away === null) return true;
    const { err, column } = out.away;
    if (column !== null) this.log.error({ column, err: describeError(err), spooled: this.depth }, `column ${column} (of cdrs, or of tenant_usage, tenants or notifications, written with them) is NOT NULL without a default and the daemon does not write it: CDRs kept in spool until a DBA gives it a default or allows NULL`);
    else this.log.warn({ err: describeError(err), spooled: this.depth }, 'database unavailable for CDRs; kept in spool');
    return false;
  }

  /**
   * Inserts and charges `items` in one transaction; a batch the database refuses as data is halved
   * until each refused record is alone. Stops at the first refusal that is not the data's (the
   * database away, or a NOT NULL column the daemon does not write): the items after it are not
   * tried. The spool's replay and the CDRs the spool refused (writeHeld) decide alike here.
   */
  private async insertHalving<T>(items: readonly T[], recordOf: (item: T) => CdrRecord): Promise<Halved<T>> {
    const out: Halved<T> = { written: [], refused: [], away: null };
    const write = async (part: readonly T[]): Promise<void> => {
      if (out.away !== null) return;
      const records = part.map(recordOf);
      try {
        await this.insert(records);
      } catch (err) {
        const column = requiredColumnNotWritten(err, records);
        if (column !== null || !isDataError(err)) {
          out.away = { err, column };
        } else if (part.length > 1) {
          const half = Math.ceil(part.length / 2);
          await write(part.slice(0, half));
          await write(part.slice(half));
        } else {
          out.refused.push({ item: part[0], err });
        }
        return;
      }
      out.written.push(...part);
    };
    await write(items);
    return out;
  }

  /**
   * Quarantines the refused lines of every leading segment that is done and deletes it. Refused
   * lines are quarantined only then: a retry after an outage must not file the same line twice.
   */
  private async finish(segments: SegmentState[]): Promise<void> {
    while (segments.length > 0 && segments[0].open === 0) {
      const s = segments.shift() as SegmentState;
      for (const r of s.refused) this.log.error({ reason: r.reason, line: r.line.slice(0, 200) }, 'CDR refused; quarantined in the spool directory');
      this.spool.quarantine(s.refused);
      this.metrics.cdrsQuarantined.inc(s.refused.length);
      if (s.gone !== true) await unlinkUnlessGone(s.path);
      this.spool.done(s.path);
      this.depth = Math.max(0, this.depth - s.lines);
      this.metrics.cdrSpoolDepth.set(this.depth);
    }
  }

  /**
   * Inserts, ignoring calls already written, and charges the new ones (tenant_usage spend, prepaid
   * balance) in the same transaction: a replayed CDR is neither written nor charged twice.
   * Counts only the rows that are new.
   */
  private async insert(records: CdrRecord[]): Promise<void> {
    await this.metrics.timeDb('cdr_insert', async () => {
      const { fresh, capped } = await this.runner.write(records, this.options.tenants, this.options.clock);
      this.checkDurability();
      if (fresh > 0) this.metrics.cdrsWritten.inc(fresh);
      for (const c of capped) {
        this.metrics.chargesCapped.inc({ column: c.column });
        this.log.warn({ tenant_id: c.tenantId, column: c.column, detail: c.detail }, 'charge capped to what DECIMAL(14,4) holds; the CDR is written');
      }
    });
  }
}

/** Deletes a replayed segment; one moved away meanwhile (after its read) has nothing left to delete. */
async function unlinkUnlessGone(path: string): Promise<void> {
  try {
    await fsp.unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
