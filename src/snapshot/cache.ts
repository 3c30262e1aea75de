/**
 * The last good configuration on local disk (CONFIG_CACHE_FILE), so that a daemon started while
 * the database is down still routes calls, and last-good-row survives a restart.
 *
 * What is stored is the raw version of every row in force (snapshot.lastGood), not the built
 * snapshot: the builder runs on it again at start-up, and the rows serve as the last good
 * versions for the first load from the database. With it: the snapshot's version, when its rows
 * were read from the database, and which database (a cache of another database is not used).
 *
 * Written after each successful load, atomically: a temporary file in the same folder, fsync,
 * rename over the old one, fsync of the folder. A crash leaves the old cache or the new one,
 * never half of one. Mode 0600 (folder 0700): the rows hold tenants' PINs.
 */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Row } from './rows';
import type { RowsByTable } from './types';

const FORMAT = 'hotline-config-cache/1';

export interface CachedConfig {
  readonly version: number;
  /** When these rows were read from the database. */
  readonly loadedAt: Date;
  readonly database: string;
  readonly rows: RowsByTable;
}

/** Why a cache file was not used (it is then left alone, and overwritten by the next good load). */
export class ConfigCacheError extends Error {
  readonly code = 'CONFIG_CACHE_UNUSABLE';
}

/** The database a cache belongs to, without credentials: mysql://host:3306/db or sqlite:/abs/path.db. */
export function databaseIdentity(url: string): string {
  if (/^sqlite:/i.test(url)) {
    const file = url.slice('sqlite:'.length);
    return file === ':memory:' ? 'sqlite::memory:' : `sqlite:${path.resolve(file)}`;
  }
  try {
    const u = new URL(url);
    return `mysql://${u.hostname}:${u.port || '3306'}${u.pathname}`;
  } catch {
    return 'unknown';
  }
}

export class ConfigCache {
  constructor(
    readonly file: string,
    readonly database: string,
  ) {}

  /** The cached configuration; null when there is no file. Throws ConfigCacheError when it cannot be used. */
  async read(): Promise<CachedConfig | null> {
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new ConfigCacheError(`cannot read ${this.file}: ${(err as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new ConfigCacheError(`${this.file} is not valid JSON (${(err as Error).message})`);
    }
    const d = doc as { format?: unknown; database?: unknown; version?: unknown; loadedAt?: unknown; tables?: unknown };
    if (d?.format !== FORMAT) throw new ConfigCacheError(`${this.file} is not a ${FORMAT} file`);
    if (d.database !== this.database) throw new ConfigCacheError(`${this.file} holds the configuration of ${String(d.database)}, not of ${this.database}`);
    const loadedAt = new Date(typeof d.loadedAt === 'string' ? d.loadedAt : NaN);
    if (typeof d.version !== 'number' || Number.isNaN(loadedAt.getTime()) || !d.tables || typeof d.tables !== 'object') {
      throw new ConfigCacheError(`${this.file} lacks its version, load time or tables`);
    }
    const rows = new Map<string, Map<number, Row>>();
    for (const [table, list] of Object.entries(d.tables as Record<string, unknown>)) {
      if (!Array.isArray(list)) throw new ConfigCacheError(`${this.file}: table ${table} is not a list of rows`);
      const byId = new Map<number, Row>();
      for (const row of list as unknown[]) {
        const id = (row as Row | null)?.id;
        if (typeof id === 'number') byId.set(id, row as Row);
      }
      rows.set(table, byId);
    }
    return { version: d.version, loadedAt, database: this.database, rows };
  }

  /** Replaces the cache atomically with these rows (see the header). */
  async write(config: Omit<CachedConfig, 'database'>): Promise<void> {
    const dir = path.dirname(this.file);
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const tables: Record<string, Row[]> = {};
    for (const [table, byId] of config.rows) tables[table] = [...byId.values()];
    const body = JSON.stringify(
      { format: FORMAT, database: this.database, version: config.version, loadedAt: config.loadedAt.toISOString(), savedAt: new Date().toISOString(), tables },
      (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value),
    );
    const tmp = path.join(dir, `.${path.basename(this.file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const handle = await fsp.open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(body);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fsp.rename(tmp, this.file);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    // The rename is durable only once the folder's entry is on disk.
    const folder = await fsp.open(dir, 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  }
}

/** The cached rows as raw tables for buildSnapshot (a table missing from the cache is empty). */
export function tablesOf(rows: RowsByTable): Record<string, Row[]> {
  const out: Record<string, Row[]> = {};
  for (const [table, byId] of rows) out[table] = [...byId.values()];
  return out;
}
