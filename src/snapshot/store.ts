/**
 * Keeps the configuration snapshot calls route from, and reloads it when a DBA edits a table.
 *
 * Change detection is one cheap query per poll: per table COUNT(*), MAX(id) and MAX(updated_at)
 * (a hand edit bumps updated_at; a delete changes the count; an insert the max id), each MAX one
 * index seek (FINGERPRINT_SQL). A full reload also runs every fullReloadIntervalS as a safety
 * net. A reload that fails keeps the last good snapshot in force; calls never wait for the
 * database. Every build gets the rows in force so far, so a row edited into a bad state keeps its
 * last good version (build.ts, ledger.ts).
 *
 * With a ConfigCache, the rows in force are saved to local disk after each load from the
 * database. start() takes the cached rows as the last good versions (last good row across
 * restarts) and, when the database cannot be read at start-up, routes from them: the daemon
 * then says so (log, hotline_config_from_cache, /healthz), keeps polling, runs `prepare` (the
 * migrations) once the database answers, and switches to it. A database that does not answer at
 * all (a hung server: connections wait for the 10 s acquire timeout) is not waited for longer than
 * startDatabaseWaitMs when there is a cache: the daemon routes from it and the load goes on.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics';
import { dbKind, rawRows } from '../db/connect';
import { describeDbError } from '../db/describe-error';
import { pagesById } from '../db/id-pages';
import { inReadTransaction, ReaderOpener, readerRows, type SqliteReader } from '../db/sqlite-reader';
import { buildSnapshot, buildSnapshotYielding, NO_LAST_GOOD, SNAPSHOT_TABLES, type RawTables } from './build';
import { ConfigCacheError, tablesOf, type CachedConfig, type ConfigCache } from './cache';
import type { ConfigFinding, ConfigSnapshot, RowsByTable } from './types';

/**
 * Every configuration table's rows, as the snapshot builder takes them: read in one transaction,
 * so a DBA's insert of a tenant and its number between two reads is seen whole or not at all.
 * - With `reader` (the daemon's store on an SQLite file): on that connection, in pages (readPages).
 * - On MariaDB/MySQL: in pages too, in a REPEATABLE READ transaction (InnoDB's snapshot, taken at
 *   its first read, holds for every page whatever the server's default isolation).
 * - Else (SQLite through knex: tools, tests, `sqlite::memory:`): one statement a table, so that
 *   knex's one connection is not held across turns of the event loop.
 */
export async function readConfigTables(knex: Knex, reader?: SqliteReader | null): Promise<RawTables> {
  if (reader) return readPages(knex, reader);
  if (dbKind(knex) === 'mysql') {
    return knex.transaction((trx) => eachTable((table) => pagedRows(() => trx(table).select('*'))), { isolationLevel: 'repeatable read' });
  }
  return knex.transaction((trx) => eachTable((table) => trx(table).select('*')));
}

/** Every configuration table's rows, read one table after another by `read`. */
async function eachTable(read: (table: string) => Promise<Row[]>): Promise<RawTables> {
  const out: Record<string, unknown> = {};
  for (const table of SNAPSHOT_TABLES) out[table] = await read(table);
  return out as unknown as RawTables;
}

/** Rows one statement reads of a configuration table when it is read in pages; the event loop runs between two. */
export const CONFIG_PAGE_ROWS = 500;

type Row = Record<string, unknown>;

/**
 * A table's rows, CONFIG_PAGE_ROWS at a time in the order of their id (every configuration
 * table's `increments('id')`: SQLite's rowid, InnoDB's clustered key, the order a whole-table scan
 * gives), each page after the last id read, with a turn of the event loop between pages
 * (db/id-pages.ts); `run`: the store's SQLite reader.
 *
 * Why: read at once, 10,000 tenants with four rates each held every call of the daemon for
 * 155-168 ms at every reload on SQLite (better-sqlite3 reads synchronously, knex runs a
 * transaction's statements in microtasks) and 27-33 ms on MariaDB (mysql2 parses a statement's
 * rows in one go); in pages of 500, 9-10 ms at a time on SQLite (bench/PROFILE.md release 24).
 */
async function pagedRows(base: () => Knex.QueryBuilder, run?: (query: Knex.QueryBuilder) => Promise<Row[]>): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const page of pagesById(base, { pageRows: CONFIG_PAGE_ROWS, run })) for (const row of page) rows.push(row);
  return rows;
}

/**
 * The tables on an SQLite reader of the store's own (db/sqlite-reader.ts), in pages (pagedRows;
 * `knex` only writes their SQL), all in one read transaction (WAL keeps its snapshot: no page sees
 * a row committed after the first was read). Not through knex: its one connection to an SQLite
 * file would be held for all the pages, and every call's own statement (a capped tenant's
 * admission, a PIN failure) would wait for the whole read, longer the busier the daemon.
 */
async function readPages(knex: Knex, reader: SqliteReader): Promise<RawTables> {
  // A failed read is rolled back and its own error reported; the caller also drops this
  // connection (readTables).
  const run = async (query: Knex.QueryBuilder): Promise<Row[]> => readerRows<Row>(reader, query);
  return inReadTransaction(reader, () => eachTable((table) => pagedRows(() => knex(table).select('*'), run)));
}

/** A snapshot straight from the database (operator commands; the daemon keeps a ConfigStore). */
export async function loadSnapshot(knex: Knex, version = 0, lastGood: RowsByTable = NO_LAST_GOOD, options: { maxCallS?: number } = {}): Promise<ConfigSnapshot> {
  return buildSnapshot(await readConfigTables(knex), version, new Date(), lastGood, options);
}

/** Where the configuration in force came from. */
export type ConfigSource = 'database' | 'cache';

/** No configuration at all: the database cannot be read and there is no usable cache. */
export class ConfigUnavailableError extends Error {
  readonly code = 'CONFIG_UNAVAILABLE';
}

/** A stop asked for (SIGTERM) while the start waited to load its first configuration: not a failure. */
export class StartCancelledError extends Error {
  readonly code = 'START_CANCELLED';
}

/** `retryAfterMs` of an error that says when to try again (MigrationLockWaitError), else null. */
function retryLaterMs(err: unknown): number | null {
  const ms = (err as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : null;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface ConfigStoreOptions {
  pollIntervalMs: number;
  fullReloadIntervalS: number;
  /**
   * CONFIG_START_DATABASE_WAIT_MS: with a cache, how long start() waits for the first load before
   * it routes from the cache while that load goes on (default DEFAULT_START_DATABASE_WAIT_MS).
   */
  startDatabaseWaitMs?: number;
  /** CALL_MAX_DURATION_S: rates are checked against the cost of the longest call. */
  maxCallS?: number;
}

/** The schema's default of CONFIG_START_DATABASE_WAIT_MS, for a store built without settings (tests). */
const DEFAULT_START_DATABASE_WAIT_MS = 3000;

export interface ConfigStoreExtras {
  /** The on-disk cache of the rows in force (CONFIG_CACHE_FILE). */
  cache?: ConfigCache | null;
  /** Runs before the first load from the database (the daemon's migrations), again until it succeeds once. */
  prepare?: () => Promise<void>;
  /** false: another process writes the cache (a worker that is not the cluster's leader); default: always true. */
  writesCache?: () => boolean;
  /**
   * Opens the store's own read-only SQLite connection (db/sqlite-reader.ts), asked at each load
   * from the database until it gives one (after `prepare`, so the file exists); null or a throw:
   * read through knex, as on MariaDB.
   */
  reader?: () => SqliteReader | null;
}

const FINDING_LOG: Record<ConfigFinding['status'], string> = {
  last_good: 'configuration row rejected; its last good version stays in force',
  skipped: 'configuration row rejected and skipped (no last good version of it)',
  link_ignored: 'configuration row in force without a link that does not hold',
  missing: 'configuration rows name a row that does not exist; they are not in force',
  doubtful: 'configuration row in force with a value that likely says other than what was meant',
};

/**
 * The poll's one statement: per table COUNT(*), MAX(id), MAX(updated_at), one round trip for all
 * tables (the names are our constants, never input). Each aggregate is its own subquery: SQLite
 * answers a lone MAX from an index with one seek (MAX(id) from the rowid, MAX(updated_at) from
 * migration 20261206100000's index) and a lone COUNT(*) without decoding rows, where the three in
 * one SELECT read every row of every table, on the calls' event loop (bench/PROFILE.md, release 32).
 */
export const FINGERPRINT_SQL = SNAPSHOT_TABLES.map(
  (t) => `SELECT '${t}' AS t, (SELECT COUNT(*) FROM ${t}) AS c, (SELECT MAX(id) FROM ${t}) AS i, (SELECT MAX(updated_at) FROM ${t}) AS u`,
).join(' UNION ALL ');

export class ConfigStore {
  private snapshot: ConfigSnapshot | null = null;
  private fingerprint = '';
  private lastFullLoad = 0;
  private timer: NodeJS.Timeout | null = null;
  private version = 0;
  private reported = new Set<string>();
  private readonly loadListeners: Array<(snapshot: ConfigSnapshot) => void> = [];
  private prepared = false;
  /** Last good rows from the cache, until the first load from the database. */
  private cachedRows: RowsByTable | null = null;
  private cacheWrite: Promise<void> = Promise.resolve();
  private polling: Promise<void> | null = null;
  private lastFailure = { message: '', at: 0 };
  private pendingCache: ConfigSnapshot | null = null;
  /** The store's own SQLite connection (extras.reader), once opened; and whether a read on it is under way. */
  private reader: SqliteReader | null = null;
  /** The read under way on it: a second reload asked meanwhile gets the same rows (one transaction at a time on a connection). */
  private readerRead: Promise<RawTables> | null = null;
  /** Opens it (extras.reader), logging a refusal once while it lasts. */
  private readonly readerOpener: ReaderOpener | null;
  private stopped = false;
  /** Where the snapshot in force came from; null before the first load. */
  source: ConfigSource | null = null;
  /** null until the first attempt; then whether the last poll reached the database. */
  databaseReachable: boolean | null = null;
  /** The last database error (message), while the database is unreachable. */
  databaseError: string | null = null;

  constructor(
    private readonly knex: Knex,
    private readonly options: ConfigStoreOptions,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly clock: () => Date = () => new Date(),
    private readonly extras: ConfigStoreExtras = {},
  ) {
    const open = extras.reader;
    this.readerOpener = open
      ? new ReaderOpener(open, log, { refused: 'the configuration store cannot open its own connection to the SQLite file; it reads through the shared one', what: 'the configuration store' })
      : null;
  }

  /** The snapshot in force. Throws before the first successful load. */
  get current(): ConfigSnapshot {
    if (!this.snapshot) throw new Error('configuration not loaded yet');
    return this.snapshot;
  }

  /**
   * Loads the first snapshot from the database, or, when it cannot be read, from the cache; then
   * polls. Throws ConfigUnavailableError when neither works.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const cached = await this.readCache();
    this.cachedRows = cached?.rows ?? null;
    // Versions go on from the cached one: a restart does not make "version 1" mean two things.
    this.version = Math.max(this.version, cached?.version ?? 0);
    const waitMs = this.options.startDatabaseWaitMs ?? DEFAULT_START_DATABASE_WAIT_MS;
    for (;;) {
      try {
        if (!cached) {
          await this.loadFromDatabase('start');
        } else if (!(await this.loadedWithin(waitMs))) {
          const err = new Error(`no answer from the database within ${waitMs} ms of start-up (still trying)`);
          this.markUnreachable(err);
          this.routeFromCache(cached, err);
        }
        break;
      } catch (err) {
        this.markUnreachable(err);
        if (cached) {
          this.routeFromCache(cached, err);
          break;
        }
        // With nothing to route from, a `prepare` that says when to try again (a migration that
        // waited for a table's lock: db/migrate.ts Migrator) is waited for here, not turned into
        // an exit that a process manager would restart at once, each start queueing the table again.
        const retryAfterMs = retryLaterMs(err);
        if (retryAfterMs !== null && !signal?.aborted) {
          await pause(retryAfterMs, signal);
          if (!signal?.aborted) continue;
        }
        if (signal?.aborted) throw new StartCancelledError(`stop asked for while the configuration could not be loaded yet (${describeDbError(err)})`, { cause: err });
        const where = this.extras.cache ? `no usable cached configuration at ${this.extras.cache.file}` : 'no configuration cache';
        throw new ConfigUnavailableError(`cannot start: the configuration cannot be read from the database (${describeDbError(err)}) and there is ${where}`, { cause: err });
      }
    }
    this.schedule();
  }

  /**
   * The first load from the database, waited for `ms` at most: false when it has not ended by then
   * (it goes on as this.polling, which the polls wait for, and installs what it reads when it
   * ends); rejects as it does when it fails sooner.
   */
  private async loadedWithin(ms: number): Promise<boolean> {
    const load = this.loadFromDatabase('start');
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      if (await Promise.race([load.then(() => true as const), slow])) return true;
    } finally {
      clearTimeout(timer);
    }
    this.polling = load.then(
      () => undefined,
      (err: unknown) => {
        this.markUnreachable(err);
        this.pollFailed(err);
      },
    ).finally(() => {
      this.polling = null;
    });
    return false;
  }

  /** Called after every successful load (the first included), e.g. to render new TTS prompts. */
  onLoad(listener: (snapshot: ConfigSnapshot) => void): void {
    this.loadListeners.push(listener);
    if (this.snapshot) listener(this.snapshot);
  }

  /** Stops polling; resolves once a poll already under way has finished (it installs nothing later). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.polling;
    // A poll() called directly may still be reading on it.
    await this.readerRead?.catch(() => undefined);
    this.reader?.close();
    this.reader = null;
  }

  /** Resolves when the cache file holds the snapshot in force (tests; shutdown). */
  async cacheSaved(): Promise<void> {
    let last: Promise<void> | null = null;
    while (last !== this.cacheWrite) {
      last = this.cacheWrite;
      await last;
    }
  }

  /**
   * Polls once: reloads when a table changed or the full-reload interval passed. Routing from the
   * cache, every poll tries the database again. Rejects when the database cannot be read.
   */
  async poll(): Promise<boolean> {
    try {
      if (this.source !== 'database') {
        await this.loadFromDatabase('database reachable again');
        return true;
      }
      const fingerprint = await this.metrics.timeDb('config_fingerprint', () => this.readFingerprint());
      const due = this.clock().getTime() - this.lastFullLoad >= this.options.fullReloadIntervalS * 1000;
      if (fingerprint === this.fingerprint && !due) {
        this.markReachable();
        return false;
      }
      await this.reload(due ? 'interval' : 'change', fingerprint);
      return true;
    } catch (err) {
      this.markUnreachable(err);
      throw err;
    }
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      // The first load, still under way (loadedWithin): a poll waits for it, never runs beside it.
      if (this.polling) {
        this.schedule();
        return;
      }
      this.polling = this.poll()
        .then(() => undefined)
        .catch((err: unknown) => this.pollFailed(err))
        .finally(() => {
          this.polling = null;
          if (this.timer) this.schedule();
        });
    }, this.options.pollIntervalMs);
    this.timer.unref();
  }

  /** A failed poll (or first load left running): counted; the same error logged once a minute, not every poll. */
  private pollFailed(err: unknown): void {
    this.metrics.configReloads.inc({ result: 'error' });
    const message = describeDbError(err);
    const now = this.clock().getTime();
    const repeat = message === this.lastFailure.message && now - this.lastFailure.at < 60_000;
    if (!repeat) this.lastFailure = { message, at: now };
    this.log[repeat ? 'debug' : 'warn']({ err }, this.source === 'cache'
      ? 'database still unreachable; routing from the cached configuration'
      : 'configuration reload failed; the last good configuration stays in force');
  }

  private async loadFromDatabase(reason: string): Promise<void> {
    if (!this.prepared && this.extras.prepare) {
      await this.extras.prepare();
      this.prepared = true;
    }
    await this.reload(reason);
  }

  private async reload(reason: string, fingerprint?: string): Promise<void> {
    const started = Date.now();
    const fp = fingerprint ?? (await this.metrics.timeDb('config_fingerprint', () => this.readFingerprint()));
    const raw = await this.metrics.timeDb('config_load', () => this.readTables());
    const lastGood = this.snapshot?.lastGood ?? this.cachedRows ?? NO_LAST_GOOD;
    // In steps, the event loop let run between them: calls are up while the configuration reloads.
    const next = await buildSnapshotYielding(raw, ++this.version, this.clock(), lastGood, { maxCallS: this.options.maxCallS });
    const fromCache = this.source === 'cache';
    this.install(next, 'database');
    this.cachedRows = null;
    this.fingerprint = fp;
    this.lastFullLoad = this.clock().getTime();
    this.markReachable();
    this.saveCache(next);
    if (fromCache) this.log.warn({ version: next.version }, 'database reachable again: routing from the configuration in the database, no longer from the cache');
    this.log.info(
      { reason, version: next.version, tenants: next.tenants.size, numbers: next.accessNumbers.size, rejected: next.rejected.length, ms: Date.now() - started },
      'configuration loaded',
    );
  }

  private routeFromCache(cached: CachedConfig, err: unknown): void {
    // Never back: a first load still under way (loadedWithin) may have taken cached.version + 1 already.
    this.version = Math.max(this.version, cached.version);
    const snapshot = buildSnapshot(tablesOf(cached.rows) as unknown as RawTables, cached.version, cached.loadedAt, cached.rows, { maxCallS: this.options.maxCallS });
    this.install(snapshot, 'cache');
    this.log.warn(
      { err: describeDbError(err), version: snapshot.version, loadedAt: cached.loadedAt.toISOString(), file: this.extras.cache?.file, tenants: snapshot.tenants.size, retryMs: this.options.pollIntervalMs },
      'database unreachable at start-up: routing from the cached configuration until it answers',
    );
  }

  private install(next: ConfigSnapshot, source: ConfigSource): void {
    this.snapshot = next;
    this.source = source;
    this.metrics.configFromCache.set(source === 'cache' ? 1 : 0);
    this.metrics.configLoadedAt = next.loadedAt;
    this.metrics.configReloads.inc({ result: 'ok' });
    this.reportRejected(next.rejected);
    for (const listener of this.loadListeners) listener(next);
  }

  private markReachable(): void {
    this.databaseReachable = true;
    this.databaseError = null;
    this.metrics.databaseReachable.set(1);
  }

  private markUnreachable(err: unknown): void {
    this.databaseReachable = false;
    this.databaseError = describeDbError(err);
    this.metrics.databaseReachable.set(0);
  }

  private async readCache(): Promise<CachedConfig | null> {
    const cache = this.extras.cache;
    if (!cache) return null;
    try {
      return await cache.read();
    } catch (err) {
      if (!(err instanceof ConfigCacheError)) throw err;
      this.log.warn({ file: cache.file, reason: err.message }, 'configuration cache not used; it is replaced after the next load from the database');
      return null;
    }
  }

  /** Writes the cache now with the rows in force from the database (a worker that became the writer). */
  saveCacheNow(): void {
    if (this.snapshot && this.source === 'database') this.saveCache(this.snapshot);
  }

  /** Saves the rows in force; writes one after the other, the newest snapshot wins. */
  private saveCache(snapshot: ConfigSnapshot): void {
    const cache = this.extras.cache;
    if (!cache || this.extras.writesCache?.() === false) return;
    const queued = this.pendingCache !== null;
    this.pendingCache = snapshot;
    if (queued) return;
    this.cacheWrite = this.cacheWrite.then(async () => {
      const latest = this.pendingCache;
      this.pendingCache = null;
      if (!latest) return;
      try {
        await cache.write({ version: latest.version, loadedAt: latest.loadedAt, rows: latest.lastGood });
        this.metrics.configCacheWrites.inc({ result: 'ok' });
      } catch (err) {
        this.metrics.configCacheWrites.inc({ result: 'error' });
        this.log.error({ err, file: cache.file }, 'could not save the configuration cache; a restart without the database would use an older one');
      }
    });
  }

  /** One log line and one count per rejected row and edit; gauges per table. */
  private reportRejected(findings: readonly ConfigFinding[]): void {
    const rejected = new Map<string, number>(SNAPSHOT_TABLES.map((t) => [t, 0]));
    const lastGood = new Map<string, number>(SNAPSHOT_TABLES.map((t) => [t, 0]));
    const seen = new Set<string>();
    for (const f of findings) {
      rejected.set(f.table, (rejected.get(f.table) ?? 0) + 1);
      if (f.status === 'last_good') lastGood.set(f.table, (lastGood.get(f.table) ?? 0) + 1);
      // The same bad row on every reload is one finding; a new edit (updated_at) or value is another.
      const key = JSON.stringify([f.table, f.id, f.status, f.column, f.reason, f.editedAt]);
      seen.add(key);
      if (this.reported.has(key)) continue;
      this.metrics.configRowRejections.inc({ table: f.table });
      this.log.warn(
        { table: f.table, id: f.id, tenant_id: f.tenantId, column: f.column, value: f.value, status: f.status, dependents: f.dependents, edited_at: f.editedAt, reason: f.reason },
        FINDING_LOG[f.status],
      );
    }
    this.reported = seen;
    for (const [table, count] of rejected) this.metrics.configRejectedRows.set({ table }, count);
    for (const [table, count] of lastGood) this.metrics.configLastGoodRows.set({ table }, count);
  }

  /**
   * The tables, on the store's own SQLite connection when there is one, else through knex. A read
   * asked while one is under way on that connection shares it (a transaction cannot begin inside
   * another). A read that fails drops the connection: the next opens a fresh one, so no
   * transaction SQLite may have left open pins the WAL.
   */
  private readTables(): Promise<RawTables> {
    if (this.readerRead) return this.readerRead;
    const reader = this.openReader();
    if (!reader) return readConfigTables(this.knex);
    const read = readConfigTables(this.knex, reader)
      .catch((err: unknown) => {
        reader.close();
        if (this.reader === reader) this.reader = null;
        throw err;
      })
      .finally(() => {
        this.readerRead = null;
      });
    this.readerRead = read;
    return read;
  }

  /** The store's own SQLite connection, opened on first use; a refusal is logged once, and asked again at the next load. */
  private openReader(): SqliteReader | null {
    // Not after stop(): it closed the last one.
    if (this.reader || !this.readerOpener || this.stopped) return this.reader;
    this.reader = this.readerOpener.tryOpen();
    return this.reader;
  }

  private async readFingerprint(): Promise<string> {
    // Through knex, the connection the calls' own statements use: the poll also says whether that
    // one answers (databaseReachable, /healthz).
    const rows = await rawRows<Record<string, unknown>>(this.knex, FINGERPRINT_SQL);
    // MySQL returns MAX(updated_at) as a Date: keep its milliseconds (String() would drop them and
    // miss an edit made in the same second as the last one).
    const text = (v: unknown): string => (v instanceof Date ? v.toISOString() : String(v));
    return JSON.stringify(rows.map((r) => [r.t, text(r.c), text(r.i), text(r.u)]));
  }
}
