// Last good row through a real ConfigStore reload, on SQLite and MariaDB: each hand edit of the
// issue keeps tenant 1 routing exactly as before; the rejection is logged once per edit (not on
// every reload; a new bad value logs again), counted per table, and gone once the row is fixed.
import type { Knex } from 'knex';
import t from 'tap';
import { identify } from '../../src/domain/routing';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { ConfigStore } from '../../src/snapshot/store';
import type { ConfigSnapshot } from '../../src/snapshot/types';
import { dbTargets } from '../helpers/db';

/** Tenant 1: number 4001000001, group 10 (two phones), rule 1000 → group 10. Tenant 2 beside it. */
async function seed(knex: Knex): Promise<void> {
  await knex('tenants').insert([
    { id: 1, name: 'Acme', status: 'active', timezone: 'Asia/Shanghai', ring_timeout_s: 20 },
    { id: 2, name: 'Beta', status: 'active', timezone: 'Asia/Shanghai', ring_timeout_s: 15 },
  ]);
  await knex('access_numbers').insert([
    { id: 1, number: '4001000001', tenant_id: 1, kind: 'hotline', enabled: 1 },
    { id: 2, number: '4002000002', tenant_id: 2, kind: 'hotline', enabled: 1 },
  ]);
  await knex('destination_groups').insert([{ id: 10, tenant_id: 1, name: 'Sales', strategy: 'sequential', ring_timeout_s: 25 }]);
  await knex('destinations').insert([
    { id: 100, group_id: 10, number: '13800000100', position: 1 },
    { id: 101, group_id: 10, number: '13800000101', position: 2 },
  ]);
  await knex('routing_rules').insert([{ id: 1000, tenant_id: 1, priority: 10, percent: 100, action: 'group', target_id: 10 }]);
}

/** Everything tenant 1's calls route by. */
function routingOf(s: ConfigSnapshot) {
  const id = identify(s, '4001000001');
  return { kind: id.kind, tenant: s.tenants.get(1), group: s.groups.get(10), rules: s.rulesByTenant.get(1) };
}

const CASES: Array<[table: string, id: number, column: string, bad: unknown, again: unknown, good: unknown]> = [
  ['tenants', 1, 'timezone', 'Asia/Beijing', 'Beijing', 'Asia/Shanghai'],
  ['tenants', 1, 'ring_timeout_s', 0, 61, 20],
  ['tenants', 1, 'name', '', '   ', 'Acme'],
  ['destination_groups', 10, 'ring_timeout_s', -5, 0, 25],
  ['routing_rules', 1000, 'percent', 150, 0, 100],
  ['routing_rules', 1000, 'target_id', 9999, 10_000, 10],
  ['destination_groups', 10, 'strategy', 'roundrobin', 'round robin', 'sequential'],
];

for (const target of dbTargets()) {
  void t.test(target.name, async (t) => {
    const db = await target.create();
    t.teardown(() => db.destroy());
    const { knex } = db;
    await seed(knex);
    const logs: Array<Record<string, unknown>> = [];
    const log = createLogger('warn', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    const metrics = new Metrics();
    const store = new ConfigStore(knex, { pollIntervalMs: 60_000, fullReloadIntervalS: 3600 }, log, metrics);
    t.teardown(() => store.stop());
    await store.start();
    const baseline = routingOf(store.current);
    t.equal(baseline.kind, 'ok');

    // Each edit sets updated_at itself, to a later instant than any before: the poll sees it on
    // any clock and precision (a DBA's edit bumps it through ON UPDATE or the SQLite trigger).
    let stamp = Date.parse('2030-01-01T00:00:00.000Z');
    const edit = async (table: string, id: number, values: Record<string, unknown>): Promise<void> => {
      stamp += 1000;
      await knex(table).where({ id }).update({ ...values, updated_at: new Date(stamp).toISOString().replace('T', ' ').replace('Z', '') });
      t.equal(await store.poll(), true, `${table} ${id} ${JSON.stringify(values)}: the poll reloads`);
    };
    const gauge = async (table: string): Promise<number> => (await metrics.configLastGoodRows.get()).values.find((v) => v.labels.table === table)?.value ?? 0;
    const counted = async (table: string): Promise<number> => (await metrics.configRowRejections.get()).values.find((v) => v.labels.table === table)?.value ?? 0;
    const logged = (table: string, id: number): number => logs.filter((l) => l.table === table && l.id === id).length;

    for (const [table, id, column, bad, again, good] of CASES) {
      const name = `${table}.${column}=${JSON.stringify(bad)}`;
      const before = { counted: await counted(table), logged: logged(table, id) };
      await edit(table, id, { [column]: bad });
      t.same(routingOf(store.current), baseline, `${name}: tenant 1 routes exactly as before`);
      t.match(store.current.rejected, [{ table, id, column, status: 'last_good', tenantId: 1 }], `${name}: one finding, last good version in force`);
      t.equal(store.current.rejected.length, 1);
      t.equal(await gauge(table), 1, `${name}: hotline_config_last_good_rows{table="${table}"} = 1`);
      t.equal(await counted(table), before.counted + 1, `${name}: counted once`);
      t.equal(logged(table, id), before.logged + 1, `${name}: logged once`);
      t.match(logs.at(-1), { level: 40, table, id, column, status: 'last_good', msg: /last good version stays in force/ });

      // Another table's edit reloads everything: the same bad row is neither logged nor counted again.
      await edit('tenants', 2, { name: `Beta ${stamp}` });
      t.equal(logged(table, id), before.logged + 1, `${name}: not logged again on the next reload`);
      t.equal(await counted(table), before.counted + 1, `${name}: not counted again`);

      // A different bad value is a new edit: logged and counted again, still the last good version.
      await edit(table, id, { [column]: again });
      t.same(routingOf(store.current), baseline, `${name} then ${JSON.stringify(again)}: still as before`);
      t.equal(logged(table, id), before.logged + 2, `${name}: the new bad value is logged`);
      t.equal(await counted(table), before.counted + 2);

      await edit(table, id, { [column]: good });
      t.same(store.current.rejected, [], `${name}: fixed, no finding`);
      t.equal(await gauge(table), 0);
      t.same(routingOf(store.current), baseline);
    }

    // A new tenant that was never valid is skipped, with its rows counted in its one finding.
    // (A name of spaces: an unknown zone such as 'Asia/Beijing' no longer skips a tenant.)
    await knex('tenants').insert({ id: 3, name: '   ', timezone: 'Asia/Shanghai' });
    await knex('access_numbers').insert({ id: 3, number: '4003000003', tenant_id: 3 });
    await knex('call_filters').insert(Array.from({ length: 300 }, (_, i) => ({ tenant_id: 3, list: 'block', kind: 'number', value: `1390000${String(i).padStart(4, '0')}` })));
    t.equal(await store.poll(), true);
    t.match(store.current.rejected, [{ table: 'tenants', id: 3, status: 'skipped', dependents: { access_numbers: 1, call_filters: 300 } }]);
    t.equal(store.current.rejected.length, 1, 'one finding for the tenant and its 301 rows');
    t.equal(identify(store.current, '4003000003').kind, 'unknown_number');
    t.same(routingOf(store.current), baseline, 'tenant 1 untouched');
  });
}
