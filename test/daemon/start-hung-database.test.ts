// A database server that accepts connections and never answers (a hung or SIGSTOPped MariaDB: the
// kernel completes the TCP handshake, the server says nothing). Before, a daemon with a cache
// waited for knex's 10 s acquire timeout before it routed from the cache, and FreeSWITCH sent every
// call meanwhile to the dialplan's fallback. Now it routes from the cache after
// CONFIG_START_DATABASE_WAIT_MS while the load goes on, and switches to the database when it answers.
// A real Daemon on MariaDB, through a relay this test holds silent, then lets through.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { Daemon } from '../../src/daemon';
import { identify } from '../../src/domain/routing';
import { createLogger } from '../../src/log';
import { dbTargets } from '../helpers/db';
import { DbRelay, relayDaemonSettings } from '../helpers/db-relay';
import { healthz } from './spawn';

t.test('a daemon started while MariaDB hangs routes from the cache after CONFIG_START_DATABASE_WAIT_MS, then switches to the database', async (t) => {
  const db = await dbTargets()[1].create({ migrate: false });
  t.teardown(() => db.destroy());
  const { relay, url } = await DbRelay.to(db.url);
  t.teardown(() => relay.close());
  await relay.open();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-hungdb-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const settings = relayDaemonSettings(url, dir, { configCache: { startDatabaseWaitMs: 500 } });
  const logs: Array<Record<string, unknown>> = [];
  const log = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });

  // With the database: migrated, seeded, loaded, the cache saved.
  const first = await Daemon.start(settings, log);
  await first.store.cacheSaved();
  await first.stop();

  // The server hangs: what is connected stops, and new connections get no greeting.
  relay.hung = true;
  relay.dropConnections();
  const startedAt = logs.length;
  const d = await Daemon.start(settings, log);
  t.teardown(() => d.stop());
  const since = logs.slice(startedAt);
  t.equal(d.store.source, 'cache', 'started, routing from the cache');
  t.match(since.find((l) => l.msg === 'database unreachable at start-up: routing from the cached configuration until it answers'), { err: /no answer from the database within 500 ms of start-up \(still trying\)/ },
    'after the wait, not after the 10 s acquire timeout');
  t.notOk(since.some((l) => JSON.stringify(l).includes('Timeout acquiring a connection')), 'the first load is still waiting for its connection as the daemon listens');
  t.equal(identify(d.store.current, '4001012345').kind, 'ok', 'the demo number is in service');
  t.match(await healthz(d.metricsPort), { code: 203, body: { status: 'cached_configuration', database: { reachable: false, error: /no answer from the database within 500 ms/ } } });

  // The server answers again: the load that waited fails at its timeout, the next poll loads.
  relay.hung = false;
  const deadline = Date.now() + 90_000;
  while (d.store.source !== 'database' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(d.store.source, 'database', 'switched to the database');
  t.ok(logs.some((l) => l.msg === 'database reachable again: routing from the configuration in the database, no longer from the cache'));
  t.match(await healthz(d.metricsPort), { code: 200, body: { status: 'ok', database: { reachable: true } } });
});
