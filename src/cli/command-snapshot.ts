/**
 * The snapshot an operator command shows: built from the database exactly as the daemon builds
 * it, with the daemon's last good rows from its cache file (CONFIG_CACHE_FILE) when this host has
 * one, so `config:lint` and `route explain` say what the daemon really keeps in force.
 */
import type { Knex } from 'knex';
import type { Settings } from '../config';
import { NO_LAST_GOOD } from '../snapshot/build';
import { ConfigCache, ConfigCacheError, databaseIdentity } from '../snapshot/cache';
import { loadSnapshot } from '../snapshot/store';
import type { ConfigSnapshot } from '../snapshot/types';

export interface CommandSnapshot {
  snapshot: ConfigSnapshot;
  /** One line on where the last good versions came from. */
  lastGoodNote: string;
}

export async function commandSnapshot(settings: Settings, knex: Knex): Promise<CommandSnapshot> {
  const cache = new ConfigCache(settings.configCache.file, databaseIdentity(settings.database.url));
  let note: string;
  let lastGood = NO_LAST_GOOD;
  try {
    const cached = await cache.read();
    if (cached) {
      lastGood = cached.rows;
      note = `last good versions from the daemon's cache ${cache.file} (configuration version ${cached.version}, read from the database at ${cached.loadedAt.toISOString()})`;
    } else {
      note = `no configuration cache at ${cache.file}: rows are shown as a daemon starting now would take them (no last good versions)`;
    }
  } catch (err) {
    if (!(err instanceof ConfigCacheError)) throw err;
    note = `configuration cache not used (${err.message}): rows are shown without last good versions`;
  }
  const snapshot = await loadSnapshot(knex, 0, lastGood, { maxCallS: settings.calls.maxDurationS });
  return { snapshot, lastGoodNote: note };
}
