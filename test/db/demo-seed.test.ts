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

// Several daemons starting at once on one empty database seed exactly once. Six seeders, five
// rounds: with three, InnoDB's deadlock victims retrying into each other failed one CI run in ~30.
for (const target of dbTargets()) {
  void t.test(`${target.name}: concurrent seeding`, async (t) => {
    for (let round = 1; round <= 5; round++) {
      const db = await target.create();
      try {
        const results = await Promise.all([1, 2, 3, 4, 5, 6].map(() => seedDemoIfEmpty(db.knex)));
        t.same(results.filter(Boolean), [true], `round ${round}: exactly one call seeded`);
        t.match(await db.knex('tenants').count({ n: '*' }), [{ n: 1 }], `round ${round}: one tenant`);
      } finally {
        await db.destroy();
      }
    }
  });

  // The retry itself, without waiting for InnoDB to pick a victim: the first transactions are
  // refused the way mysql2 reports a deadlock, the next one seeds.
  void t.test(`${target.name}: a deadlocked seeding transaction is run again`, async (t) => {
    const db = await target.create();
    t.teardown(() => db.destroy());
    let refused = 0;
    const flaky = new Proxy(db.knex, {
      get(real, prop, receiver): unknown {
        if (prop !== 'transaction') return Reflect.get(real, prop, receiver) as unknown;
        return (work: (trx: unknown) => Promise<unknown>) => {
          if (refused < 3) {
            refused++;
            return Promise.reject(Object.assign(new Error('Deadlock found when trying to get lock'), { code: 'ER_LOCK_DEADLOCK', errno: 1213 }));
          }
          return real.transaction(work);
        };
      },
    });
    t.equal(await seedDemoIfEmpty(flaky), true, 'seeded on the fourth try');
    t.equal(refused, 3);
    t.match(await db.knex('tenants').count({ n: '*' }), [{ n: 1 }]);

    // Something other than a lock conflict is not retried: it reaches the caller at once.
    let calls = 0;
    const broken = new Proxy(db.knex, {
      get(real, prop, receiver): unknown {
        if (prop !== 'transaction') return Reflect.get(real, prop, receiver) as unknown;
        return () => {
          calls++;
          return Promise.reject(Object.assign(new Error("Table 'tenants' doesn't exist"), { code: 'ER_NO_SUCH_TABLE' }));
        };
      },
    });
    await t.rejects(seedDemoIfEmpty(broken), { code: 'ER_NO_SUCH_TABLE' });
    t.equal(calls, 1, 'tried once');
  });
}
