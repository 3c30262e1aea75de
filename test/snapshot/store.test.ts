// ConfigStore against real SQLite and MariaDB: loads, notices a DBA's hand edits (UPDATE, INSERT,
// DELETE) on poll(), reports bad rows in the snapshot and the metric, and keeps the last good
// snapshot when the database goes away.
import type { Knex } from 'knex';
import t, { type Test } from 'tap';
import { identify } from '../../src/domain/routing';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { ConfigStore } from '../../src/snapshot/store';
import { openSqliteReader } from '../../src/db/sqlite-reader';
import { dbTargets, sleep, type DbTarget, type TargetName, type TestDb } from '../helpers/db';

const OPTIONS = { pollIntervalMs: 60_000, fullReloadIntervalS: 3600 };

interface Ctx {
  db: TestDb;
  knex: Knex;
  metrics: Metrics;
  store: ConfigStore;
  target: TargetName;
}

/** Tenant 1 with number 4001000001, group 10 with destinations 100 and 101, rule 1000; tenant 2 likewise. */
async function seed(knex: Knex): Promise<void> {
  await knex('tenants').insert([
    { id: 1, name: 'Acme', status: 'active', timezone: 'Asia/Shanghai', balance: '100.0000' },
    { id: 2, name: 'Beta', status: 'active', timezone: 'Asia/Shanghai', pin: '1234' },
  ]);
  await knex('access_numbers').insert([
    { id: 1, number: '4001000001', tenant_id: 1, kind: 'hotline', enabled: 1 },
    { id: 2, number: '4002000002', tenant_id: 2, kind: 'switchboard', enabled: 1 },
  ]);
  await knex('destination_groups').insert([
    { id: 10, tenant_id: 1, name: 'Sales', strategy: 'sequential' },
    { id: 20, tenant_id: 2, name: 'Desk', strategy: 'simultaneous' },
  ]);
  await knex('destinations').insert([
    { id: 100, group_id: 10, number: '13800000100', position: 1 },
    { id: 101, group_id: 10, number: '13800000101', position: 2 },
    { id: 200, group_id: 20, number: '13800000200', position: 1 },
  ]);
  await knex('routing_rules').insert([
    { id: 1000, tenant_id: 1, priority: 10, action: 'group', target_id: 10 },
    { id: 2000, tenant_id: 2, priority: 10, action: 'group', target_id: 20 },
  ]);
  await knex('prompts').insert([{ id: 500, tenant_id: 1, name: 'welcome', file: '/sounds/acme/welcome.wav' }]);
}

function numbersOf(store: ConfigStore, groupId: number): string[] {
  return store.current.groups.get(groupId)?.destinations.map((d) => d.number) ?? [];
}

async function rejectedMetric(metrics: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.configRejectedRows.get()).values) out[String(v.labels.table)] = v.value;
  return out;
}

async function reloadCount(metrics: Metrics, result: 'ok' | 'error'): Promise<number> {
  return (await metrics.configReloads.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
}

/**
 * One subtest per database, each with a fresh migrated, seeded database and a started store; on
 * SQLite twice: reading through knex, and on the store's own connection as the daemon's does
 * (db/sqlite-reader.ts).
 */
function eachDb(t: Test, name: string, fn: (t: Test, ctx: Ctx) => Promise<void>, opts: { seed?: boolean; start?: boolean } = {}): void {
  void t.test(name, async (t) => {
    for (const [target, ownReader] of dbTargets().flatMap((d): Array<[DbTarget, boolean]> => (d.name === 'sqlite' ? [[d, false], [d, true]] : [[d, false]]))) {
      await t.test(ownReader ? `${target.name}, the store's own connection` : target.name, async (t) => {
        const db = await target.create();
        t.teardown(() => db.destroy());
        if (opts.seed !== false) await seed(db.knex);
        const metrics = new Metrics();
        const store = new ConfigStore(db.knex, OPTIONS, createLogger('silent'), metrics, undefined, ownReader ? { reader: () => openSqliteReader(db.url) } : {});
        t.teardown(() => store.stop());
        if (opts.start !== false) await store.start();
        await fn(t, { db, knex: db.knex, metrics, store, target: target.name });
      });
    }
  });
}

eachDb(t, 'start() loads the configuration', async (t, { store, metrics }) => {
  const s = store.current;
  t.equal(s.version, 1);
  t.same(s.rejected, []);
  t.equal(s.tenants.size, 2);
  t.equal(s.tenants.get(1)?.balance, 1_000_000, 'DECIMAL balance read exactly on either driver');
  t.equal(s.tenants.get(2)?.pin, '1234');
  t.same(numbersOf(store, 10), ['13800000100', '13800000101']);
  t.same(s.rulesByTenant.get(1)?.map((r) => r.id), [1000]);
  t.equal(s.prompts.get(500)?.file, '/sounds/acme/welcome.wav');
  const id = identify(s, '4001000001');
  t.equal(id.kind, 'ok');
  t.same(await rejectedMetric(metrics), {
    tenants: 0, access_numbers: 0, destination_groups: 0, destinations: 0, routing_rules: 0, prompts: 0,
    schedules: 0, schedule_slots: 0, holidays: 0, call_filters: 0, rates: 0, ivr_menus: 0, ivr_options: 0,
    extensions: 0, extension_phones: 0, click_to_call_widgets: 0,
  }, 'rejected-rows metric is zero for every table');
  t.equal(await reloadCount(metrics, 'ok'), 1);
  t.ok(metrics.configLoadedAt, 'snapshot age metric fed');
});

eachDb(t, 'current throws before the first load; start() throws when the database cannot be read', async (t, { store, knex }) => {
  t.throws(() => store.current, /not loaded yet/);
  await knex.schema.renameTable('tenants', 'tenants_away');
  await t.rejects(store.start(), 'start rejects');
  t.throws(() => store.current, /not loaded yet/, 'still nothing in force');
}, { start: false });

eachDb(t, 'a poll with no change returns false and keeps the same snapshot', async (t, { store }) => {
  const before = store.current;
  t.equal(await store.poll(), false);
  t.equal(await store.poll(), false);
  t.equal(store.current, before, 'same snapshot object');
});

eachDb(t, "a DBA's hand edit (raw UPDATE) is picked up by poll()", async (t, { store, knex }) => {
  // Updated a second or more after the seed, so that MAX(updated_at) moves on any precision.
  await sleep(1100);
  await knex.raw('UPDATE destinations SET number = ? WHERE id = ?', ['13900000999', 101]);
  t.equal(await store.poll(), true, 'poll sees the change');
  t.same(numbersOf(store, 10), ['13800000100', '13900000999'], 'the new snapshot routes to the new number');
  t.equal(store.current.version, 2);
  t.equal(await store.poll(), false, 'and then settles');

  await sleep(1100);
  await knex.raw("UPDATE tenants SET status = 'suspended' WHERE id = 2");
  t.equal(await store.poll(), true);
  t.equal(identify(store.current, '4002000002').kind, 'tenant_suspended');
});

eachDb(t, 'a hand edit within the same second as the previous change is picked up', async (t, { store, knex }) => {
  // Start at the beginning of a second so that seed, load and edit fall inside one second.
  await sleep(1000 - (Date.now() % 1000) + 5);
  await knex('destinations').insert({ id: 102, group_id: 10, number: '13800000102', position: 3 });
  t.equal(await store.poll(), true, 'insert noticed');
  await sleep(20);
  await knex.raw('UPDATE destinations SET number = ? WHERE id = ?', ['13900000102', 102]);
  t.equal(await store.poll(), true, 'poll sees an edit made 20 ms after the last change');
  t.same(numbersOf(store, 10), ['13800000100', '13800000101', '13900000102'], 'new number in force');
});

eachDb(t, 'inserted rows (new tenant and number) are picked up', async (t, { store, knex }) => {
  await knex('tenants').insert({ id: 3, name: 'Gamma' });
  await knex('access_numbers').insert({ id: 3, number: '4003000003', tenant_id: 3 });
  t.equal(await store.poll(), true);
  t.equal(identify(store.current, '4003000003').kind, 'ok');
  t.equal(store.current.tenants.get(3)?.timezone, 'Asia/Shanghai', 'column default applied');
});

eachDb(t, 'deleting a row is noticed', async (t, { store, knex }) => {
  await knex.raw('DELETE FROM destinations WHERE id = ?', [101]);
  t.equal(await store.poll(), true, 'delete of a middle row noticed');
  t.same(numbersOf(store, 10), ['13800000100']);

  // Delete the newest row: MAX(id) and COUNT(*) both move.
  await knex.raw('DELETE FROM routing_rules WHERE id = ?', [2000]);
  t.equal(await store.poll(), true);
  t.equal(store.current.rulesByTenant.get(2), undefined, 'rule gone');

  await knex.raw('DELETE FROM access_numbers WHERE number = ?', ['4001000001']);
  t.equal(await store.poll(), true);
  t.equal(identify(store.current, '4001000001').kind, 'unknown_number');

  // Delete one row and insert another in between two polls: same count, new MAX(id).
  await knex.raw('DELETE FROM destinations WHERE id = ?', [100]);
  await knex('destinations').insert({ group_id: 10, number: '13800000300' });
  t.equal(await store.poll(), true, 'delete + insert noticed');
  t.same(numbersOf(store, 10), ['13800000300']);
});

eachDb(t, 'a bad row is reported in current.rejected and the metric; the rest stays routable', async (t, { store, knex, metrics }) => {
  await knex('destinations').insert({ id: 102, group_id: 10, number: '${system(reboot)}', position: 0 });
  // A status typo takes a tenant out of force (a zone the runtime does not know no longer does).
  await knex('tenants').insert({ id: 3, name: 'Mars Inc', status: 'actve', timezone: 'Europe/Berlin' });
  await knex('access_numbers').insert({ id: 3, number: '4003000003', tenant_id: 3 });
  t.equal(await store.poll(), true);
  const s = store.current;
  t.ok(s.rejected.some((r) => r.table === 'destinations' && r.id === 102 && /number/.test(r.reason)), 'destination reported with the column');
  t.ok(s.rejected.some((r) => r.table === 'tenants' && r.id === 3 && /status/.test(r.reason)), 'tenant reported with the column');
  t.ok(s.rejected.some((r) => r.table === 'tenants' && r.id === 3 && r.dependents.access_numbers === 1), 'its number counted in its finding');
  t.same(numbersOf(store, 10), ['13800000100', '13800000101'], 'the group still hunts its good destinations');
  t.equal(identify(s, '4001000001').kind, 'ok', 'tenant 1 still routable');
  t.equal(identify(s, '4002000002').kind, 'ok', 'tenant 2 still routable');
  t.equal(identify(s, '4003000003').kind, 'unknown_number', "the bad tenant's number is not in service");
  const m = await rejectedMetric(metrics);
  t.equal(m.destinations, 1, 'hotline_config_rejected_rows{table="destinations"} = 1');
  t.equal(m.tenants, 1, 'hotline_config_rejected_rows{table="tenants"} = 1');
  t.equal(m.access_numbers, 0, 'the number of a skipped tenant is not a finding of its own');
  t.equal(m.routing_rules, 0);
  const exposition = await metrics.registry.getSingleMetricAsString('hotline_config_rejected_rows');
  t.match(exposition, /hotline_config_rejected_rows\{table="destinations"\} 1/, 'exposed to Prometheus');

  // The DBA fixes the rows: the metric goes back to 0.
  await sleep(1100);
  await knex.raw("UPDATE destinations SET number = '13800000102' WHERE id = 102");
  await knex.raw("UPDATE tenants SET status = 'active' WHERE id = 3");
  t.equal(await store.poll(), true);
  t.same(store.current.rejected, []);
  t.same(numbersOf(store, 10), ['13800000102', '13800000100', '13800000101']);
  t.equal(identify(store.current, '4003000003').kind, 'ok');
  t.ok(Object.values(await rejectedMetric(metrics)).every((v) => v === 0), 'every table back to zero rejected rows');
});

eachDb(t, 'the database going away: poll() rejects and the last good snapshot stays', async (t, { store, knex }) => {
  const good = store.current;
  await knex.schema.renameTable('destinations', 'destinations_away');
  await t.rejects(store.poll(), 'poll rejects while a table is missing');
  t.equal(store.current, good, 'last good snapshot in force');
  t.equal(identify(store.current, '4001000001').kind, 'ok');

  await knex.schema.renameTable('destinations_away', 'destinations');
  t.equal(await store.poll(), false, 'table back, nothing changed in it');
  await knex.raw('DELETE FROM destinations WHERE id = 101');
  t.equal(await store.poll(), true, 'later changes are seen again');
  t.same(numbersOf(store, 10), ['13800000100']);
});

eachDb(t, 'a dropped table: poll() rejects, last snapshot kept', async (t, { store, knex }) => {
  const good = store.current;
  await knex.schema.dropTable('prompts');
  await t.rejects(store.poll());
  t.equal(store.current, good);
  t.equal(store.current.prompts.get(500)?.file, '/sounds/acme/welcome.wav', 'prompts still known');
});

eachDb(t, 'a destroyed connection pool: poll() rejects, last snapshot kept', async (t, { store, knex, metrics }) => {
  const good = store.current;
  // With the store's own connection too: the poll's fingerprint goes through knex, the calls' connection.
  await knex.destroy();
  await t.rejects(store.poll());
  t.equal(store.current, good);
  t.equal(store.current.version, 1);
  const errors = (await metrics.dbErrors.get()).values.find((v) => v.labels.operation === 'config_fingerprint')?.value;
  t.equal(errors, 1, 'counted in hotline_db_errors_total{operation="config_fingerprint"}');
});

eachDb(t, 'the poll timer reloads by itself and survives failures', async (t, { db }) => {
  const metrics = new Metrics();
  const store = new ConfigStore(db.knex, { pollIntervalMs: 20, fullReloadIntervalS: 3600 }, createLogger('silent'), metrics);
  t.teardown(() => store.stop());
  await store.start();
  await db.knex.raw('DELETE FROM destinations WHERE id = 101');
  const until = async (cond: () => boolean | Promise<boolean>, what: string): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(10);
    }
  };
  await until(() => store.current.version >= 2, 'a timed reload');
  t.same(numbersOf(store, 10), ['13800000100'], 'timer picked up the delete');

  await db.knex.schema.renameTable('tenants', 'tenants_away');
  await until(async () => (await reloadCount(metrics, 'error')) >= 2, 'failed reloads to be counted');
  t.same(numbersOf(store, 10), ['13800000100'], 'last good snapshot still in force');
  await db.knex.schema.renameTable('tenants_away', 'tenants');
  await db.knex.raw('DELETE FROM destinations WHERE id = 100');
  await until(() => numbersOf(store, 10).length === 0, 'recovery after the failures');
  t.pass('the timer kept polling through the failures');

  await store.stop();
  const version = store.current.version;
  await db.knex.raw("UPDATE tenants SET name = 'Renamed' WHERE id = 1");
  await sleep(100);
  t.equal(store.current.version, version, 'stop() stops polling');
}, { start: false });

eachDb(t, 'a full reload runs when fullReloadIntervalS has passed, even without a change', async (t, { db }) => {
  let now = Date.parse('2026-11-21T00:00:00Z');
  const store = new ConfigStore(db.knex, { pollIntervalMs: 60_000, fullReloadIntervalS: 300 }, createLogger('silent'), new Metrics(), () => new Date(now));
  t.teardown(() => store.stop());
  await store.start();
  now += 299_000;
  t.equal(await store.poll(), false, 'not yet due');
  now += 1_000;
  t.equal(await store.poll(), true, 'due: reloaded');
  t.equal(store.current.version, 2);
  t.equal(store.current.loadedAt.getTime(), now, 'loadedAt from the clock');
  t.equal(await store.poll(), false, 'interval restarts');
}, { start: false });

t.test('reload time for 2,000 tenants with 5 destinations each', async (t) => {
  for (const target of dbTargets()) {
    await t.test(target.name, async (t) => {
      const db = await target.create();
      t.teardown(() => db.destroy());
      const knex = db.knex;
      const TENANTS = 2000;
      const seedStarted = Date.now();
      const tenants = [];
      const numbers = [];
      const groups = [];
      const destinations = [];
      const rules = [];
      for (let i = 1; i <= TENANTS; i++) {
        tenants.push({ id: i, name: `Tenant ${i}`, balance: '50.0000' });
        numbers.push({ id: i, number: String(4000000000 + i), tenant_id: i });
        groups.push({ id: i, tenant_id: i, name: `Group ${i}`, strategy: 'sequential' });
        for (let d = 1; d <= 5; d++) destinations.push({ group_id: i, number: `138${String(i * 10 + d).padStart(8, '0')}`, position: d });
        rules.push({ id: i, tenant_id: i, priority: 10, action: 'group', target_id: i, regions: '北京,广东' });
      }
      for (const [table, rows] of [['tenants', tenants], ['access_numbers', numbers], ['destination_groups', groups], ['destinations', destinations], ['routing_rules', rules]] as const) {
        await knex.batchInsert(table, rows, 100);
      }
      const seedMs = Date.now() - seedStarted;
      const store = new ConfigStore(knex, OPTIONS, createLogger('silent'), new Metrics());
      t.teardown(() => store.stop());
      let started = process.hrtime.bigint();
      await store.start();
      const startMs = Number(process.hrtime.bigint() - started) / 1e6;
      t.equal(store.current.tenants.size, TENANTS);
      t.equal(store.current.groups.size, TENANTS);
      t.equal(store.current.rejected.length, 0);
      t.equal(store.current.groups.get(1234)?.destinations.length, 5);

      started = process.hrtime.bigint();
      t.equal(await store.poll(), false);
      const idlePollMs = Number(process.hrtime.bigint() - started) / 1e6;

      await knex.raw('DELETE FROM destinations WHERE group_id = 7 AND position = 5');
      started = process.hrtime.bigint();
      t.equal(await store.poll(), true);
      const reloadMs = Number(process.hrtime.bigint() - started) / 1e6;
      t.equal(store.current.groups.get(7)?.destinations.length, 4);
      t.comment(
        `${target.name}: ${TENANTS} tenants / ${destinations.length} destinations: seed ${seedMs} ms, ` +
          `first load ${startMs.toFixed(1)} ms, idle poll ${idlePollMs.toFixed(1)} ms, reload after a change ${reloadMs.toFixed(1)} ms`,
      );
    });
  }
});
