// The on-disk configuration cache: written atomically (no half file, no temporary left), readable
// by its owner only (it holds PINs), refused when it is another database's or not a cache at all,
// and through a ConfigStore on SQLite and MariaDB: last good row across a restart, and routing
// from the cache while the database cannot be read.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { identify } from '../../src/domain/routing';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { buildSnapshot } from '../../src/snapshot/build';
import { ConfigCache, ConfigCacheError, databaseIdentity, tablesOf } from '../../src/snapshot/cache';
import { ConfigStore, ConfigUnavailableError } from '../../src/snapshot/store';
import { dbTargets } from '../helpers/db';
import { goodRaw } from './fixtures';

function tempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-cache-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const WHEN = new Date('2026-11-21T08:00:00.000Z');

t.test('write then read: the rows in force, version and load time; mode 0600 in a 0700 folder; no temporary left', async (t) => {
  const dir = path.join(tempDir(t), 'state');
  const cache = new ConfigCache(path.join(dir, 'config-cache.json'), 'sqlite:/x.db');
  t.equal(await cache.read(), null, 'no file yet: null');
  const raw = goodRaw();
  raw.tenants[0] = { ...raw.tenants[0], updated_at: new Date('2026-11-20T01:02:03.456Z') };
  const snapshot = buildSnapshot(raw, 7, WHEN);
  await cache.write({ version: 7, loadedAt: WHEN, rows: snapshot.lastGood });
  t.equal(fs.statSync(cache.file).mode & 0o777, 0o600, 'the file is 0600');
  t.equal(fs.statSync(dir).mode & 0o777, 0o700, 'the folder it created is 0700');
  t.same(fs.readdirSync(dir), ['config-cache.json'], 'no temporary file left');
  const back = await cache.read();
  t.equal(back?.version, 7);
  t.equal(back?.loadedAt.toISOString(), WHEN.toISOString());
  t.equal(back?.rows.get('tenants')?.get(2)?.pin, '1234', 'the PIN is there (hence 0600)');
  t.equal(back?.rows.get('tenants')?.get(1)?.updated_at, '2026-11-20T01:02:03.456Z', 'dates as ISO text');
  const rebuilt = buildSnapshot(tablesOf(back!.rows) as unknown as ReturnType<typeof goodRaw>, 7, WHEN, back!.rows);
  t.same(rebuilt.tenants, snapshot.tenants, 'the same snapshot is built from the cached rows');
  t.same(rebuilt.groups, snapshot.groups);
  t.same(rebuilt.rejected, []);

  // A second write replaces the first whole; the mode stays 0600 even if someone widened the old file.
  fs.chmodSync(cache.file, 0o644);
  await cache.write({ version: 8, loadedAt: WHEN, rows: new Map() });
  t.equal((await cache.read())?.version, 8);
  t.equal(fs.statSync(cache.file).mode & 0o777, 0o600);
});

t.test('a failed write leaves the previous cache whole and no temporary behind', async (t) => {
  const dir = tempDir(t);
  const cache = new ConfigCache(path.join(dir, 'config-cache.json'), 'sqlite:/x.db');
  await cache.write({ version: 1, loadedAt: WHEN, rows: buildSnapshot(goodRaw(), 1, WHEN).lastGood });
  const before = fs.readFileSync(cache.file, 'utf8');
  const circular: Record<string, unknown> = { id: 1 };
  circular.self = circular;
  await t.rejects(cache.write({ version: 2, loadedAt: WHEN, rows: new Map([['tenants', new Map([[1, circular]])]]) }));
  t.equal(fs.readFileSync(cache.file, 'utf8'), before, 'the old cache is untouched');
  t.same(fs.readdirSync(dir), ['config-cache.json']);
});

t.test('a cache that cannot be used says why', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'c.json');
  const cache = new ConfigCache(file, 'mysql://db:3306/hotline');
  for (const [content, why] of [
    ['{"format":"hotline-config-cache/1","database":"mysql://other:3306/hotline","version":1,"loadedAt":"2026-11-21T00:00:00Z","tables":{}}', /configuration of mysql:\/\/other:3306\/hotline, not of mysql:\/\/db:3306\/hotline/],
    ['{"format":"hotline-config-cache/1","database":"mysql://db:3306/hotline","version":1,"loadedAt":"2026-11-21T00:00:00Z","tables":{}', /not valid JSON/],
    ['{"version":1}', /is not a hotline-config-cache\/1 file/],
    ['{"format":"hotline-config-cache/1","database":"mysql://db:3306/hotline","tables":{}}', /lacks its version/],
  ] as const) {
    fs.writeFileSync(file, content);
    await t.rejects(cache.read(), { constructor: ConfigCacheError, message: why });
  }
  t.equal(databaseIdentity('mysql://user:secret@db.example.net/hotline'), 'mysql://db.example.net:3306/hotline', 'no credentials in the identity');
  t.equal(databaseIdentity('mariadb://u:p@h:3307/x'), 'mysql://h:3307/x');
  t.equal(databaseIdentity('sqlite:/var/lib/calls.db'), 'sqlite:/var/lib/calls.db');
});

for (const target of dbTargets()) {
  void t.test(`ConfigStore with a cache (${target.name})`, async (t) => {
    const db = await target.create();
    t.teardown(() => db.destroy());
    const { knex } = db;
    await knex('tenants').insert({ id: 1, name: 'Acme', timezone: 'Asia/Shanghai', pin: '4321' });
    await knex('access_numbers').insert({ id: 1, number: '4001000001', tenant_id: 1 });
    await knex('destination_groups').insert({ id: 10, tenant_id: 1, name: 'Sales', strategy: 'sequential' });
    await knex('destinations').insert({ id: 100, group_id: 10, number: '13800000100' });
    await knex('routing_rules').insert({ id: 1000, tenant_id: 1, priority: 10, action: 'group', target_id: 10 });
    const cache = new ConfigCache(path.join(tempDir(t), 'config-cache.json'), databaseIdentity(db.url));
    const OPTIONS = { pollIntervalMs: 60_000, fullReloadIntervalS: 3600 };
    const logs: Array<Record<string, unknown>> = [];
    const log = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });

    const first = new ConfigStore(knex, OPTIONS, log, new Metrics(), undefined, { cache });
    await first.start();
    first.stop();
    await first.cacheSaved();
    t.equal((await cache.read())?.version, 1, 'saved after the load');

    // While no daemon runs, a DBA's typo: the next start keeps the tenant on its cached last good row.
    await knex('tenants').where({ id: 1 }).update({ timezone: 'Asia/Beijing' });
    const second = new ConfigStore(knex, OPTIONS, log, new Metrics(), undefined, { cache });
    await second.start();
    second.stop();
    t.equal(second.source, 'database');
    t.equal(second.current.version, 2, 'versions go on from the cached one');
    t.equal(second.current.tenants.get(1)?.timezone, 'Asia/Shanghai', 'last good row across the restart');
    t.match(second.current.rejected, [{ table: 'tenants', id: 1, status: 'last_good', column: 'timezone' }]);
    t.equal(identify(second.current, '4001000001').kind, 'ok');
    await second.cacheSaved();

    // The database cannot be read at start-up: route from the cache, say so, switch back when it can.
    await knex.schema.renameTable('routing_rules', 'routing_rules_away');
    const metrics = new Metrics();
    let prepared = 0;
    const third = new ConfigStore(knex, OPTIONS, log, metrics, undefined, { cache, prepare: async () => void prepared++ });
    await third.start();
    t.teardown(() => third.stop());
    t.equal(third.source, 'cache', 'routing from the cache');
    t.equal(third.databaseReachable, false);
    t.match(third.databaseError, /routing_rules/);
    t.equal(identify(third.current, '4001000001').kind, 'ok', 'the tenant is in service from the cache');
    t.same(third.current.groups.get(10)?.destinations.map((d) => d.number), ['13800000100']);
    t.equal(third.current.tenants.get(1)?.pin, '4321');
    t.equal(third.current.version, 2, "the cache's version");
    t.equal((await metrics.configFromCache.get()).values[0]?.value, 1, 'hotline_config_from_cache 1');
    t.equal((await metrics.databaseReachable.get()).values[0]?.value, 0, 'hotline_database_reachable 0');
    t.ok(logs.some((l) => l.msg === 'database unreachable at start-up: routing from the cached configuration until it answers' && l.level === 40), 'a warning says so');
    await t.rejects(third.poll(), 'still unreadable: the poll fails');
    t.equal(third.source, 'cache');
    t.equal(prepared, 1, 'prepare (the migrations) ran once: it succeeded, the load did not');

    await knex.schema.renameTable('routing_rules_away', 'routing_rules');
    t.equal(await third.poll(), true, 'the database is back');
    t.equal(third.source, 'database');
    t.equal(third.databaseReachable, true);
    t.equal(third.current.version, 3);
    t.equal((await metrics.configFromCache.get()).values[0]?.value, 0);
    t.equal((await metrics.databaseReachable.get()).values[0]?.value, 1);
    t.match(third.current.rejected, [{ table: 'tenants', id: 1, status: 'last_good' }], 'the cached rows are the last good ones');
    t.ok(logs.some((l) => /database reachable again/.test(String(l.msg))));
    await third.poll();
    t.equal(prepared, 1, 'and is not run again');

    // No cache and no database: a clear refusal.
    await knex.schema.renameTable('tenants', 'tenants_away');
    const fourth = new ConfigStore(knex, OPTIONS, log, new Metrics(), undefined, { cache: new ConfigCache(path.join(tempDir(t), 'none.json'), databaseIdentity(db.url)) });
    await t.rejects(fourth.start(), { constructor: ConfigUnavailableError, message: /cannot start: the configuration cannot be read from the database \(.*tenants.*\) and there is no usable cached configuration at .*none\.json/ });
    await knex.schema.renameTable('tenants_away', 'tenants');
  });
}
