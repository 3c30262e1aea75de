// Values round-trip as the rest of the daemon expects, on both databases.
import t from 'tap';
import { fromDbTimestamp, toDbTimestamp } from '../../src/db/connect';
import { withDatabases } from '../helpers/db';

withDatabases(t, async (t, knex, target) => {
  await t.test('Chinese text (utf8mb4)', async (t) => {
    const [tenantId] = await knex('tenants').insert({ name: '北京测试' });
    await knex('routing_rules').insert({ tenant_id: tenantId, action: 'group', regions: '北京,广东' });
    const tenant = (await knex('tenants').where({ id: tenantId }).first()) as Record<string, unknown>;
    t.equal(tenant.name, '北京测试');
    t.match(tenant, { status: 'active', timezone: 'Asia/Shanghai', pin_max_attempts: 3, ring_timeout_s: 15,
      caller_memory_hours: 24, record_calls: 0, balance: null }, 'SCHEMA.md defaults; flags are numbers 0/1');
    const rule = (await knex('routing_rules').where({ tenant_id: tenantId }).first()) as Record<string, unknown>;
    t.equal(rule.regions, '北京,广东');
    t.match(rule, { priority: 100, percent: 100, enabled: 1 });
    const byRegion: unknown[] = await knex('routing_rules').where('regions', 'like', '%广东%');
    t.equal(byRegion.length, 1, 'LIKE on Chinese text');
  });

  await t.test('DECIMAL(14,4) money', async (t) => {
    const [id] = await knex('tenants').insert({ name: 'money', balance: '12345678.1234', max_spend_day: '0.0001' });
    const row = (await knex('tenants').where({ id }).first()) as { balance: unknown; max_spend_day: unknown };
    if (target === 'mariadb') {
      // mysql2 returns DECIMAL as an exact string (decimalNumbers stays false).
      t.equal(row.balance, '12345678.1234');
      t.equal(row.max_spend_day, '0.0001');
    } else {
      // SQLite has no DECIMAL: the value is a float, exact enough to round-trip 4 decimals of 14 digits.
      t.equal(row.balance, 12345678.1234);
      t.equal(row.max_spend_day, 0.0001);
    }
    const sum = (await knex('tenants').sum({ total: 'balance' }).first()) as { total: unknown };
    t.equal(Number(sum.total), 12345678.1234, 'SUM works on both');
  });

  await t.test('cdrs.call_uuid is unique (CDR replays are idempotent)', async (t) => {
    const startedAt = new Date('2026-01-02T03:04:05.678Z');
    const cdr = { call_uuid: 'a5b6c7d8-0000-4000-8000-000000000001', tenant_id: null, caller: '13900000000',
      started_at: toDbTimestamp(startedAt), outcome: 'failed', cost: '0.3000' };
    await knex('cdrs').insert(cdr);
    await t.rejects(knex('cdrs').insert(cdr), 'a second insert of the same uuid fails');
    await knex('cdrs').insert({ ...cdr, outcome: 'answered' }).onConflict('call_uuid').ignore();
    const rows = await knex<Record<string, unknown>>('cdrs').where({ call_uuid: cdr.call_uuid });
    t.equal(rows.length, 1, 'onConflict().ignore() keeps exactly one row');
    t.equal(rows[0].outcome, 'failed', 'the first write wins');
    t.equal(fromDbTimestamp(rows[0].started_at as Date | string)?.toISOString(), startedAt.toISOString(),
      'started_at keeps UTC milliseconds');
    const since: unknown[] = await knex('cdrs').where('started_at', '>=', toDbTimestamp(new Date('2026-01-02T03:04:05Z')));
    t.equal(since.length, 1, 'timestamps compare against toDbTimestamp() values');
  });

  await t.test('tenant_usage is unique per tenant and period', async (t) => {
    const usage = { tenant_id: 1, period_kind: 'day', period_start: '2026-01-02', calls: 1, spend: '0.1000' };
    await knex('tenant_usage').insert(usage);
    await t.rejects(knex('tenant_usage').insert(usage));
    await knex('tenant_usage').insert({ ...usage, period_kind: 'month', period_start: '2026-01-01' });
  });

  await t.test('enum-like columns accept bad values so the daemon can report them', async (t) => {
    await knex('access_numbers').insert({ number: '4000000000', tenant_id: 99, kind: 'bogus' });
    const row = (await knex('access_numbers').where({ number: '4000000000' }).first()) as { kind: string };
    t.equal(row.kind, 'bogus');
  });
});
