/**
 * The daemon's Prometheus metrics, on a private registry. Names carry the `hotline_` prefix and
 * base units; labels come only from small fixed sets (never phone numbers, UUIDs or tenant ids).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LIVE_COLUMNS } from './billing/live-values';
import { CALLER_NUMBER_FORMS } from './domain/caller-number';
import type { DeferredInputObserver } from './esl/deferred-input';
import { problemLabel, type PromptFileProblemKind } from './prompts/file-check';
import { CounterSeries, HistogramSeries, SeriesByLabels } from './metric-series';
import { CONFIG_TABLES } from './snapshot/types';

export const OUTCOMES = ['answered', 'voicemail', 'busy', 'no_answer', 'blocked', 'capped', 'pin_failed', 'announced', 'abandoned', 'failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export const ESL_ERROR_KINDS = ['timeout', 'command_failed', 'socket_closed', 'protocol', 'malformed_value', 'malformed_event', 'handshake', 'unsafe_value'] as const;
export const DB_OPERATIONS = ['config_fingerprint', 'config_load', 'cdr_insert', 'admission', 'pin_lockout', 'rotation', 'caller_memory', 'voicemail_insert'] as const;
export const NUMBER_KIND_LABELS = ['hotline', 'switchboard', 'unknown'] as const;

/** hotline_db_query_duration_seconds' buckets (seconds). */
const DB_QUERY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** hotline_esl_command_duration_seconds' buckets (seconds): a reply in a millisecond to a five-minute bridge. */
const ESL_COMMAND_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 15, 60, 300];

/** Money columns whose writes are capped to DECIMAL(14,4) (hotline_charges_capped_total). */
export const CAPPED_COLUMNS = ['cost', 'spend', 'balance'] as const;
export type CappedColumn = (typeof CAPPED_COLUMNS)[number];
/** Applications whose prompt did not play: playback (FILE NOT FOUND), play_and_get_digits (came back unplayed). */
export const PROMPT_APPLICATIONS = ['playback', 'play_and_get_digits'] as const;
/** Why the daemon handed a call back to FreeSWITCH's fallback without serving it. */
export const RELEASE_REASONS = ['draining', 'no_configuration'] as const;

export class Metrics {
  readonly registry = new Registry();

  readonly callsStarted = new Counter({
    name: 'hotline_calls_started_total',
    help: 'Calls FreeSWITCH handed to this daemon (outbound socket accepted and channel data received).',
    labelNames: ['number_kind'] as const,
    registers: [this.registry],
  });

  readonly callsEnded = new Counter({
    name: 'hotline_calls_ended_total',
    help: 'Calls ended, by outcome (the CDR outcome) and access-number kind.',
    labelNames: ['outcome', 'number_kind'] as const,
    registers: [this.registry],
  });

  readonly activeCalls = new Gauge({
    name: 'hotline_active_calls',
    help: 'Calls this daemon is controlling right now.',
    registers: [this.registry],
  });

  readonly callSetupSeconds = new Histogram({
    name: 'hotline_call_setup_seconds',
    help: 'From the socket being accepted to the first leg being dialled.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly timeToAnswerSeconds = new Histogram({
    name: 'hotline_time_to_answer_seconds',
    help: 'From the socket being accepted to a destination answering (answered calls only).',
    buckets: [1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60, 90, 120, 300],
    registers: [this.registry],
  });

  readonly legs = new Counter({
    name: 'hotline_destination_legs_total',
    help: 'Legs dialled to destinations, by result (answered, busy, no_answer, failed, cancelled), tenant and group: ids for tenants in METRICS_TENANT_IDS, "other" for the rest.',
    labelNames: ['tenant', 'group', 'result'] as const,
    registers: [this.registry],
  });

  readonly talkSeconds = new Counter({
    name: 'hotline_talk_seconds_total',
    help: 'Billed talk seconds of answered calls (the CDR billsec), by access-number kind. ACD = this / answered calls.',
    labelNames: ['number_kind'] as const,
    registers: [this.registry],
  });

  readonly tenantTalkSeconds = new Counter({
    name: 'hotline_tenant_talk_seconds_total',
    help: 'Billed talk seconds for the tenants in METRICS_TENANT_IDS ("other" for the rest).',
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });

  readonly tenantCallsEnded = new Counter({
    name: 'hotline_tenant_calls_ended_total',
    help: 'Calls ended by outcome for the tenants listed in METRICS_TENANT_IDS (tenant id as label); every other tenant is "other".',
    labelNames: ['tenant', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly queueWaiting = new Gauge({
    name: 'hotline_queue_waiting_calls',
    help: 'Callers waiting in destination-group queues on this daemon (every phone busy).',
    registers: [this.registry],
  });

  readonly queueWaitSeconds = new Histogram({
    name: 'hotline_queue_wait_seconds',
    help: 'How long queued callers waited before they were answered, gave up or timed out.',
    buckets: [1, 5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600],
    registers: [this.registry],
  });

  readonly eslCommandSeconds = new Histogram({
    name: 'hotline_esl_command_duration_seconds',
    help: 'ESL command round trips (reply, and for applications their completion), by command and result.',
    labelNames: ['command', 'result'] as const,
    buckets: [...ESL_COMMAND_BUCKETS],
    registers: [this.registry],
  });

  /** eslCommandSeconds' series, by command and result (observeEslCommand). */
  private readonly eslCommandSeries = new SeriesByLabels((command, result) => new HistogramSeries(this.eslCommandSeconds, { command, result }, ESL_COMMAND_BUCKETS));

  /**
   * One ESL command's duration, into its (command, result) series, held by reference
   * (metric-series.ts): seven a call. The labels are bounded by the caller (a known command name
   * or `other`, four results).
   */
  observeEslCommand(command: string, result: 'ok' | 'error' | 'timeout' | 'hangup', seconds: number): void {
    this.eslCommandSeries.get(command, result).observe(seconds);
  }

  readonly eslConnections = new Counter({
    name: 'hotline_esl_connections_total',
    help: 'Outbound event-socket connections accepted from FreeSWITCH.',
    registers: [this.registry],
  });

  readonly eslErrors = new Counter({
    name: 'hotline_esl_errors_total',
    help: 'ESL problems by kind: timeout, command_failed, socket_closed, protocol, malformed_value, malformed_event, handshake, unsafe_value.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly eslDeferredInputWaitSeconds = new Histogram({
    name: 'hotline_esl_deferred_input_wait_seconds',
    help: 'How long the input of bridged calls (answers, hang-ups, completions) waited behind calls being set up: for each turn of the event loop that ran some, the longest any of it had waited. Over a few ms: the daemon is near saturation.',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
    registers: [this.registry],
  });

  readonly eslDeferredInputOverdue = new Counter({
    name: 'hotline_esl_deferred_input_overdue_total',
    help: 'Inputs of bridged calls that ran only once they had waited the longest allowed, 100 ms: the daemon\'s CPU was saturated. Stays 0 with ESL_BRIDGED_INPUT_BUDGET_MS=0 (nothing waits).',
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: 'hotline_config_reloads_total',
    help: 'Configuration snapshot loads from the database, by result (ok or error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly configRejectedRows = new Gauge({
    name: 'hotline_config_rejected_rows',
    help: 'Rows whose current version the configuration in force rejects (one per finding of npm run config:lint; skipped or on their last good version), by table.',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });

  readonly configLastGoodRows = new Gauge({
    name: 'hotline_config_last_good_rows',
    help: 'Rows edited into an invalid state whose last good version stays in force, by table.',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });

  readonly configRowRejections = new Counter({
    name: 'hotline_config_row_rejections_total',
    help: 'Configuration rows rejected, counted once per edit (reloads that find the same bad row again do not count it again), by table.',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });

  readonly configFromCache = new Gauge({
    name: 'hotline_config_from_cache',
    help: '1 while calls route from the configuration cached on local disk (CONFIG_CACHE_FILE) because the database has not been reached since the daemon started; else 0.',
    registers: [this.registry],
  });

  readonly databaseReachable = new Gauge({
    name: 'hotline_database_reachable',
    help: '1 when the last configuration poll (every CONFIG_POLL_INTERVAL_MS) reached the database and read it, 0 when it failed.',
    registers: [this.registry],
  });

  readonly configCacheWrites = new Counter({
    name: 'hotline_config_cache_writes_total',
    help: 'Writes of the configuration cache file after a load from the database, by result (ok, error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly liveValuesUnreadable = new Counter({
    name: 'hotline_live_values_unreadable_total',
    help: 'Reads of a tenants column (balance, max_spend_day, max_spend_month, max_calls_day, max_calls_month) that is not a value, by admission, the spend guards or the caps job: the last good value read was used, or none limited.',
    labelNames: ['column'] as const,
    registers: [this.registry],
  });

  readonly chargesCapped = new Counter({
    name: 'hotline_charges_capped_total',
    help: 'Charges cut to what DECIMAL(14,4) holds (9999999999.9999) instead of being refused by the database, by column: cost (cdrs.cost), spend (tenant_usage.spend), balance (tenants.balance).',
    labelNames: ['column'] as const,
    registers: [this.registry],
  });

  /** When the configuration in force was loaded (set by ConfigStore). */
  configLoadedAt: Date | null = null;

  readonly configAgeSeconds = new Gauge({
    name: 'hotline_config_snapshot_age_seconds',
    help: 'Seconds since the configuration in force was loaded.',
    registers: [this.registry],
    collect: () => {
      if (this.configLoadedAt) this.configAgeSeconds.set((Date.now() - this.configLoadedAt.getTime()) / 1000);
    },
  });

  readonly cdrSpoolDepth = new Gauge({
    name: 'hotline_cdr_spool_depth',
    help: 'CDRs in the local spool not yet confirmed written to the database.',
    registers: [this.registry],
  });

  /** When the oldest CDR not yet written was spooled (set by the CDR writer); null: nothing waits. */
  cdrSpoolOldestMs: (() => Promise<number | null>) | null = null;

  readonly cdrSpoolOldestAge = new Gauge({
    name: 'hotline_cdr_spool_oldest_age_seconds',
    help: 'Seconds the oldest CDR not yet confirmed in the database has waited in the local spool (the start of its spool segment); 0 when the spool is empty.',
    registers: [this.registry],
    collect: async () => {
      const oldest = this.cdrSpoolOldestMs ? await this.cdrSpoolOldestMs().catch(() => null) : null;
      this.cdrSpoolOldestAge.set(oldest === null ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
    },
  });

  readonly cdrSpoolWriteFailures = new Counter({
    name: 'hotline_cdr_spool_write_failures_total',
    help: 'Writes of CDRs to the local spool that failed (a full disk, a file system gone read-only); the CDRs are held in memory, offered to it again every second, and written to the database straight meanwhile.',
    registers: [this.registry],
  });

  readonly cdrsHeldInMemory = new Gauge({
    name: 'hotline_cdrs_held_in_memory',
    help: 'CDRs of ended calls the local spool refused, held in memory until it or the database takes them (offered to both every second): lost if the process dies meanwhile, but for what the call journal kept.',
    registers: [this.registry],
  });

  readonly cdrSpoolRefusing = new Gauge({
    name: 'hotline_cdr_spool_refusing',
    help: '1 while the local CDR spool refuses writes (a full disk, a file system gone read-only): from its first refusal until it takes a write again (a CDR, or the empty line it is asked with every second) with none held.',
    registers: [this.registry],
  });

  readonly cdrsWrittenPastSpool = new Counter({
    name: 'hotline_cdrs_written_past_spool_total',
    help: 'CDRs the refusing spool could not take that were written to the database straight (charged as usual).',
    registers: [this.registry],
  });

  readonly cdrsWritten = new Counter({
    name: 'hotline_cdrs_written_total',
    help: 'CDRs written to the database (replays of already-written calls are not counted twice).',
    registers: [this.registry],
  });

  readonly cdrsQuarantined = new Counter({
    name: 'hotline_cdrs_quarantined_total',
    help: 'CDRs the database refused as data (kept in the spool quarantine file for a person to look at).',
    registers: [this.registry],
  });

  readonly stoppedCallCdrs = new Counter({
    name: 'hotline_stopped_call_cdrs_total',
    help: 'CDRs spooled at start-up from the call journal, for calls a stopped daemon (crash, kill -9, out of memory) left in progress.',
    registers: [this.registry],
  });

  readonly callJournalWriteFailures = new Counter({
    name: 'hotline_call_journal_write_failures_total',
    help: 'Writes of the call journal that failed: until one succeeds, the calls in progress would get no CDR if the daemon stopped outright.',
    registers: [this.registry],
  });

  readonly dbQuerySeconds = new Histogram({
    name: 'hotline_db_query_duration_seconds',
    help: 'Database round trips by operation and result.',
    labelNames: ['operation', 'result'] as const,
    buckets: [...DB_QUERY_BUCKETS],
    registers: [this.registry],
  });

  readonly callerMemoryLookups = new Counter({
    name: 'hotline_caller_memory_lookups_total',
    help: 'Caller-memory questions of calls, by where the answer came from: memory (no phone answered the caller recently, known without the database) or database.',
    labelNames: ['answered_from'] as const,
    registers: [this.registry],
  });

  /** The caller-memory index's read age (set by the call server when it keeps one); null: no index. */
  callerMemoryIndexReadAgeMs: (() => number | null) | null = null;

  readonly callerMemoryIndexReadAge = new Gauge({
    name: 'hotline_caller_memory_index_read_age_seconds',
    help: 'Seconds since the caller-memory index last read cdrs (since the daemon started while its first load runs); 0 when the daemon keeps no index (CALLER_MEMORY_INDEX_HOURS=0). Above 3 × CALLER_MEMORY_INDEX_POLL_MS + 1 s every caller-memory question goes to the database.',
    registers: [this.registry],
    collect: () => {
      this.callerMemoryIndexReadAge.set((this.callerMemoryIndexReadAgeMs?.() ?? 0) / 1000);
    },
  });

  readonly dbErrors = new Counter({
    name: 'hotline_db_errors_total',
    help: 'Failed database operations, by operation.',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  readonly promptFilesMissing = new Gauge({
    name: 'hotline_prompt_files_missing',
    help: 'Prompt files the daemon may play (system prompts, prompts.file) with a problem, by reason: missing (not there: calls play a system prompt or a tone instead), unreadable (this daemon may not read it; FreeSWITCH may: still played), not_a_file, empty; as last checked (start-up and every configuration load; 0 when PROMPTS_SAME_FILESYSTEM says the daemon cannot see them).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** The prompt file check's counts (src/prompts/file-check.ts), one series per reason. */
  setPromptFileProblems(counts: Readonly<Record<PromptFileProblemKind, number>>): void {
    for (const [problem, n] of Object.entries(counts) as Array<[PromptFileProblemKind, number]>) this.promptFilesMissing.set({ reason: problemLabel(problem) }, n);
  }

  readonly promptsNotPlayed = new Counter({
    name: 'hotline_prompts_not_played_total',
    help: 'Prompts FreeSWITCH could not play in a call, by application: playback (FILE NOT FOUND) or play_and_get_digits (came back without digits faster than its timeout allows; retried with a tone).',
    labelNames: ['application'] as const,
    registers: [this.registry],
  });

  readonly callsReleased = new Counter({
    name: 'hotline_calls_released_total',
    help: 'Calls handed back to FreeSWITCH\'s fallback untouched (hotline_handled unset, socket closed, nothing played), by reason: draining (SIGTERM) or no_configuration (none in force yet, neither from the database nor from the cache).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly callerNumbers = new Counter({
    name: 'hotline_caller_numbers_total',
    help: 'Caller IDs of calls, by how they read (src/domain/caller-number.ts): plain (a number already), reduced (other characters dropped for screening, rating and the CDR), withheld (no number).',
    labelNames: ['form'] as const,
    registers: [this.registry],
  });

  /** Tenant ids that get their own label values; a small configured list keeps cardinality bounded. */
  private readonly labelledTenants: ReadonlySet<number>;

  /**
   * `processMetrics: false`: without prom-client's process and Node.js metrics, whose collectors
   * (a GC observer, an event-loop delay monitor) run for the life of the process: the start-up
   * warm-up's throw-away registry (src/warmup/warm-up.ts).
   */
  constructor(options: { tenantIds?: readonly number[]; processMetrics?: boolean } = {}) {
    this.labelledTenants = new Set(options.tenantIds ?? []);
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    // Known label sets start at 0: Prometheus' increase() does not count the sample that creates
    // a series, so the first error after a start would otherwise be invisible to alerts.
    for (const kind of ESL_ERROR_KINDS) this.eslErrors.inc({ kind }, 0);
    for (const result of ['ok', 'error'] as const) this.configReloads.inc({ result }, 0);
    for (const operation of DB_OPERATIONS) this.dbErrors.inc({ operation }, 0);
    for (const table of CONFIG_TABLES) this.configRowRejections.inc({ table }, 0);
    for (const result of ['ok', 'error'] as const) this.configCacheWrites.inc({ result }, 0);
    for (const column of CAPPED_COLUMNS) this.chargesCapped.inc({ column }, 0);
    for (const column of LIVE_COLUMNS) this.liveValuesUnreadable.inc({ column }, 0);
    for (const application of PROMPT_APPLICATIONS) this.promptsNotPlayed.inc({ application }, 0);
    for (const reason of ['missing', 'unreadable', 'not_a_file', 'empty']) this.promptFilesMissing.set({ reason }, 0);
    for (const reason of RELEASE_REASONS) this.callsReleased.inc({ reason }, 0);
    for (const form of CALLER_NUMBER_FORMS) this.callerNumbers.inc({ form }, 0);
    for (const number_kind of NUMBER_KIND_LABELS) {
      this.callsStarted.inc({ number_kind }, 0);
      this.talkSeconds.inc({ number_kind }, 0);
      for (const outcome of OUTCOMES) this.callsEnded.inc({ outcome, number_kind }, 0);
    }
    for (const tenant of [...this.labelledTenants].map(String).concat('other')) {
      this.tenantTalkSeconds.inc({ tenant }, 0);
      for (const outcome of OUTCOMES) this.tenantCallsEnded.inc({ tenant, outcome }, 0);
    }
  }

  /** The series the calls' path adds to, held by reference (metric-series.ts): a call adds to eight or more of them. */
  private readonly callSeries = {
    started: new SeriesByLabels((number_kind) => new CounterSeries(this.callsStarted, { number_kind })),
    ended: new SeriesByLabels((outcome, number_kind) => new CounterSeries(this.callsEnded, { outcome, number_kind })),
    tenantEnded: new SeriesByLabels((tenant, outcome) => new CounterSeries(this.tenantCallsEnded, { tenant, outcome })),
    talk: new SeriesByLabels((number_kind) => new CounterSeries(this.talkSeconds, { number_kind })),
    tenantTalk: new SeriesByLabels((tenant) => new CounterSeries(this.tenantTalkSeconds, { tenant })),
    legs: new SeriesByLabels((tenant, group, result) => new CounterSeries(this.legs, { tenant, group, result })),
    callerNumbers: new SeriesByLabels((form) => new CounterSeries(this.callerNumbers, { form })),
    callerMemoryLookups: new SeriesByLabels((answered_from) => new CounterSeries(this.callerMemoryLookups, { answered_from })),
    db: new SeriesByLabels((operation, result) => new HistogramSeries(this.dbQuerySeconds, { operation, result }, DB_QUERY_BUCKETS)),
  };

  /** A leg dialled to a destination of a tenant's group (null: an extension's phones), and how it ended. */
  countLeg(tenantId: number | null, groupId: number | null, result: string): void {
    this.callSeries.legs.get(this.tenantLabel(tenantId), groupId === null ? 'extension' : this.groupLabel(tenantId, groupId), result).inc();
  }

  /** How a call's caller ID read (src/domain/caller-number.ts). */
  countCallerNumber(form: string): void {
    this.callSeries.callerNumbers.get(form).inc();
  }

  /** Where a caller-memory question was answered: `memory` (the index) or `database`. */
  countCallerMemoryLookup(answeredFrom: 'memory' | 'database'): void {
    this.callSeries.callerMemoryLookups.get(answeredFrom).inc();
  }

  /** A call FreeSWITCH handed over (hotline_calls_started_total). */
  callStarted(numberKind: string): void {
    this.callSeries.started.get(numberKind).inc();
  }

  /**
   * A call over (hotline_calls_ended_total); with its CDR, also its tenant's series and the billed
   * talk seconds. Without one (a click-to-call leg given up before it was answered: the
   * attempt's CDR is the dialer's), only the count, so that started minus ended stays the calls
   * in progress.
   */
  callEnded(outcome: string, numberKind: string, cdr?: { readonly tenant_id: number | null; readonly billsec: number }): void {
    this.callSeries.ended.get(outcome, numberKind).inc();
    if (cdr === undefined) return;
    const tenant = this.tenantLabel(cdr.tenant_id);
    this.callSeries.tenantEnded.get(tenant, outcome).inc();
    if (cdr.billsec > 0) {
      this.callSeries.talk.get(numberKind).inc(cdr.billsec);
      this.callSeries.tenantTalk.get(tenant).inc(cdr.billsec);
    }
  }

  /** The label value for a tenant: its id when listed in METRICS_TENANT_IDS, else "other". */
  tenantLabel(tenantId: number | null): string {
    return tenantId !== null && this.labelledTenants.has(tenantId) ? String(tenantId) : 'other';
  }

  /** The label value for a destination group of a tenant (same rule as tenantLabel). */
  groupLabel(tenantId: number | null, groupId: number): string {
    return tenantId !== null && this.labelledTenants.has(tenantId) ? String(groupId) : 'other';
  }

  /** The deferred input's turns (src/esl/deferred-input.ts), once CallServer.listen wires it in. */
  readonly deferredInput: DeferredInputObserver = {
    turn: (longestWaitMs, overdueItems) => {
      this.eslDeferredInputWaitSeconds.observe(longestWaitMs / 1000);
      if (overdueItems > 0) this.eslDeferredInputOverdue.inc(overdueItems);
    },
  };

  /** Times one database operation into dbQuerySeconds/dbErrors. */
  async timeDb<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await fn();
      this.callSeries.db.get(operation, 'ok').observe((performance.now() - started) / 1000);
      return result;
    } catch (err) {
      this.callSeries.db.get(operation, 'error').observe((performance.now() - started) / 1000);
      this.dbErrors.inc({ operation });
      throw err;
    }
  }
}
