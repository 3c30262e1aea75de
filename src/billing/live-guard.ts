/**
 * The node-local half of the caps job (every minute on every daemon, at second 30): publishes
 * this daemon's live calls to live_calls (so the caps job, wherever it runs, counts calls in
 * flight and their running cost) and cuts this daemon's calls of tenants whose money runs out.
 *
 * For each tenant with answered, priced calls here: what it may still spend (the least of its
 * balance and its day and month spend caps left, read live from the database, not the snapshot)
 * is compared with what all its live calls — here and, as published, on other daemons — will
 * have cost. When they will exceed it within the next 90 s, this daemon warns its own calls of
 * that tenant over FreeSWITCH's inbound event socket (warning.ts: `uuid_displace … 0 mux` over
 * an event-locked prompt, else `uuid_broadcast <uuid> <prompt> both`)
 * WARN_BEFORE_S before, and kills them (`uuid_kill <uuid> OUTGOING_CALL_BARRED`) CUT_GUARD_S
 * before the money is gone, by timers to the second; already over: warned and cut at once.
 * The call session does the same for the tenant's calls on its daemon, at each answer
 * (src/calls/spend-guard.ts), by the same arithmetic (live-calls.ts sharedCutAt); a uuid_kill
 * of a call that already ended is answered `-ERR No such channel!` and is harmless.
 * A scheduled cut reads the tenant's money again first (due-cut.ts): money that grew since the
 * plan (a top-up, a raised cap) plans the tenant's calls again instead; a failed read cuts.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { toDbTimestamp } from '../db/connect';
import { formatMoney, type Money } from '../domain/money';
import { publishedLiveCalls } from './caps';
import type { GuardTimers } from '../calls/spend-guard';
import { DEFAULT_CUT_CHECK_TIMEOUT_MS, dueCut } from './due-cut';
import type { FreeSwitchInbound } from './freeswitch-inbound';
import { secondsUntilOverBudget, type LiveCall, type LiveCallSource } from './live-calls';
import { CUT_GUARD_S, CUT_HANGUP_CAUSE, WARN_BEFORE_S } from './rate-cdr';
import { headroomOf, readSpendLimits } from './usage';
import { sendWarning, type WarningTransport } from './warning';
import { EslCommandError } from '../esl/errors';
import type { TenantZones } from '../snapshot/zones';
import { nextTurn } from '../next-turn';
import { pagesById } from '../db/id-pages';

/** How far ahead a run looks: past the next run (60 s), so no crossing falls between two runs. */
const HORIZON_S = 90;

export interface LiveGuardDeps {
  knex: Knex;
  node: string;
  source: LiveCallSource;
  /** Opens an authenticated inbound connection; null = cutting disabled (no FS_ESL_PASSWORD). */
  connectInbound: (() => Promise<FreeSwitchInbound>) | null;
  /** The warning prompt's file as calls would play it now (prompt-player.ts systemPromptFile). */
  warningFile: () => string;
  log: Logger;
  clock?: () => Date;
  /** The tenants' zones in the snapshot in force (zones.ts); absent: the row's (tests). */
  zoneOf?: TenantZones;
  /** Called after each run with the number of capped tenants (for the gauge). */
  onCappedCount?: (n: number) => void;
  /** Bound of the money re-read before a scheduled cut (CALL_DB_TIMEOUT_MS; default its default). */
  cutCheckTimeoutMs?: number;
  /** The warning and cut timers (tests: a hand-driven clock); default setTimeout, unref'd. */
  timers?: GuardTimerApi;
}

/** The session guard's timer interface (spend-guard.ts), without its clock: this guard plans by the wall clock. */
export type GuardTimerApi = Pick<GuardTimers, 'setTimeout' | 'clearTimeout'>;

const REAL_TIMER_API: GuardTimerApi = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface GuardRunResult {
  published: number;
  warned: number;
  cut: number;
  scheduled: number;
  /** Tenants whose calls could not be checked (logged; the run then ends in error). */
  failed: number;
}

export class LiveCallGuard {
  /** Each tenant's pending warning and cut timers. */
  private readonly planned = new Map<number, unknown[]>();
  private readonly timerApi: GuardTimerApi;
  private readonly warned = new Set<string>();
  private readonly clock: () => Date;
  private disabledLogged = false;

  constructor(private readonly deps: LiveGuardDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.timerApi = deps.timers ?? REAL_TIMER_API;
  }

  /** One run; returns rows touched (published calls + calls warned or cut). */
  async run(): Promise<number> {
    const r = await this.check();
    // Recorded as a failed run (cron_runs, metrics) once every other tenant was checked.
    if (r.failed > 0) throw new Error(`live calls of ${r.failed} tenant(s) could not be checked (${r.cut} cut, ${r.warned} warned)`);
    return r.published + r.warned + r.cut;
  }

  async check(): Promise<GuardRunResult> {
    const now = this.clock();
    const calls = this.deps.source.liveCalls().filter((c) => Number.isSafeInteger(c.tenantId));
    const published = await this.publish(calls, now);
    const cappedCount = Number(((await this.deps.knex('capped_tenants').countDistinct('tenant_id as n').first()) as { n: unknown } | undefined)?.n ?? 0);
    this.deps.onCappedCount?.(cappedCount);

    // Grouped in one pass each, here and for the calls elsewhere: with thousands of live calls a
    // copy of a tenant's list per call, or a scan of every call elsewhere per tenant, would hold
    // the event loop for longer than a run's every other step.
    const mine = new Map<number, LiveCall[]>();
    for (const c of calls) if (c.answeredAt !== null && c.rate !== null) listOf(mine, c.tenantId).push(c);
    for (const tenantId of [...this.planned.keys()]) if (!mine.has(tenantId)) this.clearTimers(tenantId);
    const liveUuids = new Set(calls.map((c) => c.uuid));
    for (const uuid of [...this.warned]) if (!liveUuids.has(uuid)) this.warned.delete(uuid);
    if (mine.size === 0) return { published, warned: 0, cut: 0, scheduled: 0, failed: 0 };

    const elsewhere = new Map<number, PublishedCall[]>();
    for (const c of await publishedLiveCalls(this.deps.knex, now)) if (c.node !== this.deps.node && mine.has(c.tenantId)) listOf(elsewhere, c.tenantId).push(c);
    let warned = 0;
    let cut = 0;
    let scheduled = 0;
    let failed = 0;
    for (const [tenantId, own] of mine) {
      // One tenant whose limits cannot be read (a balance typed by hand that is not an amount
      // DECIMAL(14,4) holds, on SQLite) or whose calls cannot be reached must not leave the
      // tenants after it unguarded: it is logged, and the run reports the failure at its end.
      try {
        const r = await this.guardTenant(tenantId, own, elsewhere.get(tenantId) ?? [], now);
        warned += r.warned;
        cut += r.cut;
        scheduled += r.scheduled;
      } catch (err) {
        failed++;
        this.deps.log.error({ err, tenant_id: tenantId }, 'live calls of a tenant could not be checked; checked again at the next run');
      }
    }
    return { published, warned, cut, scheduled, failed };
  }

  /** Warns and cuts, now or by timers, the calls here of one tenant whose money runs out (`elsewhere`: its calls on other daemons). */
  private async guardTenant(tenantId: number, own: readonly LiveCall[], elsewhere: readonly PublishedCall[], now: Date): Promise<Omit<GuardRunResult, 'published' | 'failed'>> {
    const limits = await readSpendLimits(this.deps.knex, tenantId, now, { zone: this.deps.zoneOf?.(tenantId) });
    // The plan of the run before is replaced only now: a run that cannot read the limits (the
    // database away for a moment) keeps the warning and cut already scheduled.
    this.clearTimers(tenantId);
    return this.planTenant(tenantId, own, elsewhere, limits === null ? null : headroomOf(limits), now);
  }

  /** From what the tenant may still spend (`budget`, null: no limit): warn and cut now, or schedule it. */
  private async planTenant(tenantId: number, own: readonly LiveCall[], elsewhere: readonly PublishedCall[], budget: Money | null, now: Date): Promise<Omit<GuardRunResult, 'published' | 'failed'>> {
    const none = { warned: 0, cut: 0, scheduled: 0 };
    if (budget === null) return none;
    const all = [...own, ...elsewhere];
    const t = secondsUntilOverBudget(all, budget, now, HORIZON_S, CUT_GUARD_S);
    if (t === null) return none;
    const log = this.deps.log.child({ tenant_id: tenantId });
    if (t === 0) {
      log.warn({ budget: formatMoney(budget), calls: own.length }, 'tenant out of money: cutting its live calls');
      return { ...(await this.act(tenantId, own.map((c) => c.uuid), true)), scheduled: 0 };
    }
    const warnIn = Math.max(0, t - WARN_BEFORE_S);
    const uuids = own.map((c) => c.uuid);
    log.info({ budget: formatMoney(budget), cut_in_s: t, calls: own.length }, 'tenant money runs out soon: warning and cut scheduled');
    let warned = 0;
    if (warnIn === 0) warned = (await this.act(tenantId, uuids, false)).warned;
    else this.schedule(tenantId, warnIn, () => this.act(tenantId, uuids, false));
    this.schedule(tenantId, t, () => this.cutIfDue(tenantId, own, elsewhere, budget));
    return { warned, cut: 0, scheduled: 1 };
  }

  /**
   * A scheduled cut is due: the money is read again; not more than `planned` (what the plan was
   * made from), or not readable: cut. More: the tenant's calls still here are planned again from it.
   */
  private async cutIfDue(tenantId: number, own: readonly LiveCall[], elsewhere: readonly PublishedCall[], planned: Money): Promise<unknown> {
    const log = this.deps.log.child({ tenant_id: tenantId });
    const verdict = await dueCut({
      reread: async () => {
        const limits = await readSpendLimits(this.deps.knex, tenantId, this.clock(), { zone: this.deps.zoneOf?.(tenantId) });
        return limits === null ? null : headroomOf(limits);
      },
      stillDue: (fresh) => fresh !== null && fresh <= planned,
      timeoutMs: this.deps.cutCheckTimeoutMs ?? DEFAULT_CUT_CHECK_TIMEOUT_MS,
      log,
    });
    if (verdict.cut) return this.act(tenantId, own.map((c) => c.uuid), true);
    this.clearTimers(tenantId);
    const live = new Set(this.deps.source.liveCalls().map((c) => c.uuid));
    return this.planTenant(tenantId, own.filter((c) => live.has(c.uuid)), elsewhere, verdict.fresh, this.clock());
  }

  /** Clears every pending warning and cut (daemon stopping). */
  stop(): void {
    for (const tenantId of [...this.planned.keys()]) this.clearTimers(tenantId);
  }

  private schedule(tenantId: number, seconds: number, fn: () => Promise<unknown>): void {
    const timer = this.timerApi.setTimeout(() => {
      void fn().catch((err: unknown) => this.deps.log.error({ err, tenant_id: tenantId }, 'scheduled warning or cut failed'));
    }, seconds * 1000);
    this.planned.set(tenantId, [...(this.planned.get(tenantId) ?? []), timer]);
  }

  private clearTimers(tenantId: number): void {
    for (const t of this.planned.get(tenantId) ?? []) this.timerApi.clearTimeout(t);
    this.planned.delete(tenantId);
  }

  /** Warns (once per call) and, with `kill`, hangs up the calls that are still live here. */
  private async act(tenantId: number, uuids: readonly string[], kill: boolean): Promise<{ warned: number; cut: number }> {
    const calls = new Map(this.deps.source.liveCalls().map((c) => [c.uuid, c]));
    const live = new Set(calls.keys());
    const targets = uuids.filter((u) => live.has(u));
    if (targets.length === 0) return { warned: 0, cut: 0 };
    if (!this.deps.connectInbound) {
      if (!this.disabledLogged) {
        this.deps.log.error('FS_ESL_PASSWORD is empty: calls whose money ran out cannot be cut by the daemon');
        this.disabledLogged = true;
      }
      return { warned: 0, cut: 0 };
    }
    const fs = await this.deps.connectInbound();
    let warned = 0;
    let cut = 0;
    try {
      for (const uuid of targets) {
        if (this.warned.has(uuid)) continue;
        try {
          const transport: WarningTransport = {
            displace: (file) => fs.displace(uuid, file),
            broadcast: async (file) => {
              if (!(await fs.broadcast(uuid, file, 'both'))) throw new EslCommandError(`api uuid_broadcast ${uuid}`, 'not +OK');
            },
          };
          const way = await sendWarning(transport, this.deps.warningFile(), calls.get(uuid)?.promptLocked === true);
          warned++;
          this.warned.add(uuid);
          this.deps.log.info({ call_uuid: uuid, way }, 'live call warned: balance or spend cap nearly exhausted');
        } catch (err) {
          this.deps.log.warn({ err, call_uuid: uuid }, 'warning prompt could not be played');
        }
      }
      if (kill) {
        for (const uuid of targets) {
          const result = await fs.killCall(uuid, CUT_HANGUP_CAUSE);
          if (result === 'killed') cut++;
          this.deps.log.warn({ call_uuid: uuid, tenant_id: tenantId, result }, 'live call cut: balance or spend cap exhausted');
        }
        this.clearTimers(tenantId);
      }
    } finally {
      fs.close();
    }
    return { warned, cut };
  }

  /**
   * Replaces this daemon's rows in live_calls with the calls it has now: each call's row written
   * (inserted or refreshed, seen_at = this run), PUBLISH_ROWS at a time with the event loop turning
   * between them, then this daemon's rows of calls it no longer has deleted, by call UUID (not by
   * seen_at: two runs can stamp the same time, and a clock stepped back would keep rows). A reader
   * in between finds every call still live, some with the last run's seen_at, and ended calls
   * until the delete, which publishedLiveCalls leaves out once their CDR is written.
   *
   * It was one transaction: a delete of every row and the inserts, on SQLite without one turn of
   * the event loop: 55-90 ms of every call's time each minute at 5,000 live calls, 115-128 ms at
   * 10,000, with knex's one connection held throughout (bench/PROFILE.md, release 30).
   */
  private async publish(calls: readonly LiveCall[], now: Date): Promise<number> {
    const node = this.deps.node;
    const seen = toDbTimestamp(now);
    const rows = calls.map((c) => ({
      call_uuid: c.uuid.slice(0, 64),
      node,
      tenant_id: c.tenantId,
      started_at: toDbTimestamp(c.startedAt ?? c.answeredAt ?? now),
      answered_at: c.answeredAt ? toDbTimestamp(c.answeredAt) : null,
      admitted: c.admitted === false ? 0 : 1,
      call_type: c.callType,
      per_minute: c.rate ? moneyText(c.rate.perMinute) : null,
      increment_s: c.rate ? c.rate.incrementS : null,
      connect_fee: c.rate ? moneyText(c.rate.connectFee) : null,
      legs: c.legs ?? 1,
      seen_at: seen,
    }));
    const { knex } = this.deps;
    for (let i = 0; i < rows.length; i += PUBLISH_ROWS) {
      await knex('live_calls').insert(rows.slice(i, i + PUBLISH_ROWS)).onConflict('call_uuid').merge();
      await nextTurn();
    }
    const current = new Set(rows.map((r) => r.call_uuid));
    const ended: string[] = [];
    for await (const page of pagesById(() => knex('live_calls').where({ node }).select('id', 'call_uuid'), { pageRows: OWN_ROWS_PAGE_ROWS })) {
      for (const r of page) if (!current.has(String(r.call_uuid))) ended.push(String(r.call_uuid));
    }
    for (let i = 0; i < ended.length; i += PUBLISH_ROWS) {
      await knex('live_calls').where({ node }).whereIn('call_uuid', ended.slice(i, i + PUBLISH_ROWS)).delete();
      await nextTurn();
    }
    return rows.length;
  }
}

/** Live calls written by one statement (13 columns: 2,600 bound variables, under every SQLite's limit). */
export const PUBLISH_ROWS = 200;

/** This node's live_calls rows read a page (two short columns), to find the calls that ended. */
export const OWN_ROWS_PAGE_ROWS = 1000;

/** A live call another daemon (or this one) published in live_calls. */
type PublishedCall = Awaited<ReturnType<typeof publishedLiveCalls>>[number];

/** The list of `key` in `lists`, made empty when it has none yet. */
function listOf<T>(lists: Map<number, T[]>, key: number): T[] {
  let list = lists.get(key);
  if (list === undefined) lists.set(key, (list = []));
  return list;
}

function moneyText(m: Money): string {
  return formatMoney(m);
}
