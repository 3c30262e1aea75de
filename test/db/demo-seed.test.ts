import t from 'tap';
import { seedDemoIfEmpty } from '../../src/db/demo-seed';
import { dbTargets, withDatabases } from '../helpers/db';

withDatabases(t, async (t, knex, target) => {
  t.equal(await seedDemoIfEmpty(knex), true, 'seeds an empty database');
  t.equal(await seedDemoIfEmpty(knex), false, 'no-op the second time');

  const tenants = await knex<Record<string, unknown>>('tenants');
  t.equal(tenants.length, 1);
  t.match(tenants[0], { name: 'Demo Trading Co.', status: 'active', timezone: 'Asia/Shanghai', balance: null });
  const tenantId = tenants[0].id;

  t.match(await knex('access_numbers'), [{ number: '4001012345', tenant_id: tenantId, kind: 'hotline', enabled: 1 }]);
  const groups = await knex<Record<string, unknown>>('destination_groups');
  t.match(groups, [{ tenant_id: tenantId, name: 'Sales', strategy: 'sequential', ring_timeout_s: 15 }]);
  t.match(await knex('destinations').orderBy('position'), [
    { group_id: groups[0].id, number: '13800000001', position: 1, enabled: 1 },
    { group_id: groups[0].id, number: '13800000002', position: 2, enabled: 1 },
  ]);
  t.match(await knex('routing_rules'), [
    { tenant_id: tenantId, priority: 10, action: 'group', target_id: groups[0].id, enabled: 1, percent: 100 },
  ]);

  const rates = await knex<Record<string, unknown>>('rates').whereNull('tenant_id').orderBy('call_type');
  // DECIMAL comes back as an exact string from MySQL, a number from SQLite.
  const money = (v: string): string | number => (target === 'mariadb' ? v : Number(v));
  t.same(
    rates.map((r) => [r.call_type, r.per_minute, r.increment_s, r.connect_fee]),
    [
      ['international', money('1.5000'), 60, money('0.0000')],
      ['local', money('0.1000'), 60, money('0.0000')],
      ['long_distance', money('0.2000'), 60, money('0.0000')],
      ['mobile', money('0.1500'), 60, money('0.0000')],
    ],
  );
});

// Several daemons starting at once on one empty database seed exactly once.
for (const target of dbTargets()) {
  void t.test(`${target.name}: concurrent seeding`, async (t) => {
    const db = await target.create();
    t.teardown(() => db.destroy());
    const results = await Promise.all([1, 2, 3].map(() => seedDemoIfEmpty(db.knex)));
    t.same(results.filter(Boolean), [true], 'exactly one call seeded');
    t.match(await db.knex('tenants').count({ n: '*' }), [{ n: 1 }]);
  });
}
