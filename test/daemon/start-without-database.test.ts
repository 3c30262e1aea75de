// Starting without the database (issue 10: the daemon exited after 0.3 s and every call went to
// the dialplan's fallback). A real Daemon on MariaDB, reached through a TCP relay this test opens
// and closes: the relay's port refusing connections is the database being down.
//  1. a daemon loads from the database and saves the cache; stops;
//  2. the database goes away (and loses its tables): a new daemon routes from the cache (its calls
//     are served, not handed back), and /healthz, the metrics and a log line say so;
//  3. the database comes back: the daemon migrates it and switches to it;
//  4. the database goes away under a running daemon: /healthz says "database_unreachable".
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { Daemon } from '../../src/daemon';
import { migrateDownAll } from '../../src/db/migrate';
import { identify } from '../../src/domain/routing';
import { createLogger } from '../../src/log';
import { dbTargets } from '../helpers/db';
import { DbRelay, relayDaemonSettings } from '../helpers/db-relay';
import { placeCall } from '../peer/fake-freeswitch';
import { healthz } from './spawn';

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

t.test('a daemon started while MariaDB is down routes from the cache, then switches to the database', async (t) => {
  const db = await dbTargets()[1].create({ migrate: false });
  t.teardown(() => db.destroy());
  const { relay, url } = await DbRelay.to(db.url);
  t.teardown(() => relay.close());

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-nodb-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // The start-up warm-up on: it needs no database, so it runs in the start from the cache too.
  const settings = relayDaemonSettings(url, dir, { calls: { warmUpCalls: 300, warmUpMaxS: 120 } });
  const logs: Array<Record<string, unknown>> = [];
  const log = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const metric = async (d: Daemon, name: string): Promise<number | undefined> => {
    const text = await (await fetch(`http://127.0.0.1:${d.metricsPort}/metrics`)).text();
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };

  // 1. With the database: migrated, the demo seeded, loaded, the cache saved.
  await relay.open();
  const first = await Daemon.start(settings, log);
  t.match(await healthz(first.metricsPort), { code: 200, body: { ok: true, status: 'ok', config: { source: 'database' }, database: { reachable: true } } });
  await first.store.cacheSaved();
  await first.stop();
  t.equal(fs.statSync(settings.configCache.file).mode & 0o777, 0o600, 'the cache is readable by the daemon\'s user only');

  // 2. The database is away (and, to show that migrations run when it is back, without tables).
  await relay.close();
  await migrateDownAll(db.knex);
  await db.knex.schema.dropTableIfExists('knex_migrations');
  await db.knex.schema.dropTableIfExists('knex_migrations_lock');
  const started = Date.now();
  const d = await Daemon.start(settings, log);
  t.teardown(() => d.stop());
  t.comment(`started from the cache in ${Date.now() - started} ms`);
  t.equal(d.store.source, 'cache');
  const warmUps = logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('warm-up: done'));
  t.equal(warmUps.length, 2, 'one warm-up a start');
  t.match(warmUps, [{ calls: 300, failed: 0 }, { calls: 300, failed: 0 }], 'the warm-up ran in both starts, every call completed, the database away in the second');
  t.equal(identify(d.store.current, '4001012345').kind, 'ok', 'the demo number is in service from the cache');
  const cached = await healthz(d.metricsPort);
  t.match(cached, { code: 203, body: { ok: true, status: 'cached_configuration', config: { source: 'cache' }, database: { reachable: false, error: /ECONNREFUSED/ } } }, '/healthz: 203 cached_configuration');
  t.equal(await metric(d, 'hotline_config_from_cache'), 1);
  t.equal(await metric(d, 'hotline_database_reachable'), 0);
  t.ok(logs.some((l) => l.level === 40 && l.msg === 'database unreachable at start-up: routing from the cached configuration until it answers'), 'a log line says so');
  // A configuration from the cache is a configuration: calls are claimed and served, not handed
  // back to the dialplan's fallback as "no configuration" (call-server.ts).
  const served = await placeCall(d.eslPort, { caller: '13912345678', destination: '4001012345', legs: { '13800000001': { result: 'answer' } } });
  t.equal(served.variables.hotline_handled, 'true', 'a call while routing from the cache is claimed');
  t.equal(served.releasedWith, null, 'and served, not handed back');
  t.ok(served.bridges.length > 0, 'it is routed to the demo group');
  t.equal(await metric(d, 'hotline_calls_released_total{reason="no_configuration"}'), 0);

  // 3. The database is back: migrated, seeded, loaded; the daemon says so.
  await relay.open();
  await until('the switch to the database', () => (d.store.source === 'database' ? true : undefined));
  t.match(await healthz(d.metricsPort), { code: 200, body: { status: 'ok', config: { source: 'database' }, database: { reachable: true, error: null } } });
  t.equal(await metric(d, 'hotline_config_from_cache'), 0);
  t.equal(await metric(d, 'hotline_database_reachable'), 1);
  t.ok((await db.knex('knex_migrations').count('* as n').first() as { n: number }).n > 20, 'the migrations ran when the database came back');
  t.equal(identify(d.store.current, '4001012345').kind, 'ok');
  t.ok(logs.some((l) => /database reachable again/.test(String(l.msg))));

  // 4. The database goes away under the running daemon.
  await relay.close();
  const away = await until('/healthz database_unreachable', async () => {
    const h = await healthz(d.metricsPort);
    return h.body.status === 'database_unreachable' ? h : undefined;
  });
  t.match(away, { code: 203, body: { ok: true, config: { source: 'database' }, database: { reachable: false } } }, '/healthz: 203 database_unreachable');
  t.equal(identify(d.store.current, '4001012345').kind, 'ok', 'still routing');
  await relay.open();
  await until('healthy again', async () => ((await healthz(d.metricsPort)).code === 200 ? true : undefined));
});
