/**
 * Keeps the configuration snapshot calls route from, and reloads it when a DBA edits a table.
 *
 * Change detection is one cheap query per poll: per table COUNT(*), MAX(id) and MAX(updated_at)
 * (a hand edit bumps updated_at; a delete changes the count; an insert the max id). A full reload
 * also runs every fullReloadIntervalS as a safety net. A reload that fails keeps the last good
 * snapshot in force; calls never wait for the database.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics';
import { buildSnapshot, SNAPSHOT_TABLES, type RawTables } from './build';
import type { ConfigSnapshot, RejectedRow } from './types';

/** Every configuration table's rows, as the snapshot builder takes them. */
export async function readConfigTables(knex: Knex): Promise<RawTables> {
  const entries = await Promise.all(SNAPSHOT_TABLES.map(async (table) => [table, await knex(table).select('*')] as const));
  return Object.fromEntries(entries) as unknown as RawTables;
}

/** A snapshot straight from the database (operator commands; the daemon keeps a ConfigStore). */
export async function loadSnapshot(knex: Knex, version = 0): Promise<ConfigSnapshot> {
  return buildSnapshot(await readConfigTables(knex), version, new Date());
}

export class ConfigStore {
  private snapshot: ConfigSnapshot | null = null;
  private fingerprint = '';
  private lastFullLoad = 0;
  private timer: NodeJS.Timeout | null = null;
  private version = 0;
  private reported = new Set<string>();
  private readonly loadListeners: Array<(snapshot: ConfigSnapshot) => void> = [];

  constructor(
    private readonly knex: Knex,
    private readonly options: { pollIntervalMs: number; fullReloadIntervalS: number },
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** The snapshot in force. Throws before the first successful load. */
  get current(): ConfigSnapshot {
    if (!this.snapshot) throw new Error('configuration not loaded yet');
    return this.snapshot;
  }

  /** Loads the first snapshot (throws if the database cannot be read), then polls. */
  async start(): Promise<void> {
    await this.reload('start');
    this.schedule();
  }

  /** Called after every successful load (the first included), e.g. to render new TTS prompts. */
  onLoad(listener: (snapshot: ConfigSnapshot) => void): void {
    this.loadListeners.push(listener);
    if (this.snapshot) listener(this.snapshot);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Polls once: reloads when a table changed or the full-reload interval passed. */
  async poll(): Promise<boolean> {
    const fingerprint = await this.metrics.timeDb('config_fingerprint', () => this.readFingerprint());
    const due = this.clock().getTime() - this.lastFullLoad >= this.options.fullReloadIntervalS * 1000;
    if (fingerprint === this.fingerprint && !due) return false;
    await this.reload(due ? 'interval' : 'change', fingerprint);
    return true;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.poll()
        .catch((err: unknown) => {
          this.metrics.configReloads.inc({ result: 'error' });
          this.log.warn({ err }, 'configuration reload failed; the last good configuration stays in force');
        })
        .finally(() => {
          if (this.timer) this.schedule();
        });
    }, this.options.pollIntervalMs);
    this.timer.unref();
  }

  private async reload(reason: string, fingerprint?: string): Promise<void> {
    const started = Date.now();
    const fp = fingerprint ?? (await this.readFingerprint());
    const raw = await this.metrics.timeDb('config_load', () => this.readTables());
    const next = buildSnapshot(raw, ++this.version, this.clock());
    this.snapshot = next;
    this.metrics.configLoadedAt = next.loadedAt;
    this.fingerprint = fp;
    this.lastFullLoad = this.clock().getTime();
    this.metrics.configReloads.inc({ result: 'ok' });
    this.reportRejected(next.rejected);
    for (const listener of this.loadListeners) listener(next);
    this.log.info(
      { reason, version: next.version, tenants: next.tenants.size, numbers: next.accessNumbers.size, rejected: next.rejected.length, ms: Date.now() - started },
      'configuration loaded',
    );
  }

  private reportRejected(rows: readonly RejectedRow[]): void {
    const byTable = new Map<string, number>(SNAPSHOT_TABLES.map((t) => [t, 0]));
    const seen = new Set<string>();
    for (const row of rows) {
      byTable.set(row.table, (byTable.get(row.table) ?? 0) + 1);
      const key = `${row.table}:${row.id}:${row.reason}`;
      seen.add(key);
      // Log each bad row once, not on every reload.
      if (!this.reported.has(key)) this.log.warn({ table: row.table, id: row.id, reason: row.reason }, 'configuration row skipped');
    }
    this.reported = seen;
    for (const [table, count] of byTable) this.metrics.configRejectedRows.set({ table }, count);
  }

  private readTables(): Promise<RawTables> {
    return readConfigTables(this.knex);
  }

  private async readFingerprint(): Promise<string> {
    // One round trip for all tables. Table names are our constants, never input.
    const sql = SNAPSHOT_TABLES.map(
      (t) => `SELECT '${t}' AS t, COUNT(*) AS c, MAX(id) AS i, MAX(updated_at) AS u FROM ${t}`,
    ).join(' UNION ALL ');
    const result: unknown = await this.knex.raw(sql);
    // mysql2 returns [rows, fields]; better-sqlite3 returns rows.
    const rows = (Array.isArray(result) && Array.isArray(result[0]) ? result[0] : result) as Array<Record<string, unknown>>;
    // MySQL returns MAX(updated_at) as a Date: keep its milliseconds (String() would drop them and
    // miss an edit made in the same second as the last one).
    const text = (v: unknown): string => (v instanceof Date ? v.toISOString() : String(v));
    return JSON.stringify(rows.map((r) => [r.t, text(r.c), text(r.i), text(r.u)]));
  }
}
