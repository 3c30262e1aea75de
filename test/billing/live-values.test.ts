// A tenants balance or cap a DBA typed into junk, read live (admission, spend guards, caps job):
// never 0 (calls cut), never no limit without a word: the last good value read, else no limit,
// reported. The snapshot refuses the same row with a finding.
import t from 'tap';
import { loadTenantLimits } from '../../src/billing/caps';
import { liveIntOrNull, LiveValues, readLiveBalance, readLiveCap, readLiveCount, type UnreadableLiveValue } from '../../src/billing/live-values';
import { readSpendLimits } from '../../src/billing/usage';
import { parseColumnMoney } from '../../src/domain/money';
import { buildSnapshot } from '../../src/snapshot/build';
import { goodRaw, tenantRow } from '../snapshot/fixtures';
import { loadSnapshot } from '../../src/snapshot/store';
import { writeCdrs } from '../../src/cdr/batch';
import { cdr } from '../cdr/records';
import { addTenant, eachDb } from './helpers';

const NOW = new Date('2026-11-21T03:00:00Z');

function recorded(): { live: LiveValues; reports: UnreadableLiveValue[] } {
  const live = new LiveValues();
  const reports: UnreadableLiveValue[] = [];
  live.onUnreadable((u) => reports.push(u));
  return { live, reports };
}

t.test('parseColumnMoney: what DECIMAL(14,4) holds, nothing truncated', async (t) => {
  t.equal(parseColumnMoney('100.0000'), 1_000_000);
  t.equal(parseColumnMoney(' -5.5 '), -55_000);
  t.equal(parseColumnMoney(12.34), 123_400, 'SQLite returns a float');
  t.equal(parseColumnMoney(1.23456), 12_346, 'a float is rounded to 4 places, as DECIMAL(14,4) rounds');
  for (const junk of ['abc', '', '1,000.00', '1.23456', '12345678901', '1e3', Number.NaN, 1e10, null, true]) {
    t.throws(() => parseColumnMoney(junk), `${String(junk)} is refused`);
  }
});

t.test('readers: NULL, a value, or junk', async (t) => {
  t.same(readLiveBalance(null), { kind: 'null' }, 'NULL balance: postpaid');
  t.same(readLiveBalance(''), { kind: 'unreadable' }, 'a cleared balance is not postpaid');
  t.same(readLiveBalance('-3.0000'), { kind: 'ok', value: -30_000 }, 'a negative balance is a balance');
  t.same(readLiveBalance('0.0000'), { kind: 'ok', value: 0 });
  t.same(readLiveCap(''), { kind: 'null' }, 'a cleared cap is no cap, as in the snapshot');
  t.same(readLiveCap('-1'), { kind: 'unreadable' }, 'a negative cap is refused, as the snapshot refuses it (was: no cap)');
  t.same(readLiveCap('1,000.00'), { kind: 'unreadable' });
  t.same(liveIntOrNull('0'), { kind: 'ok', value: 0 }, 'a cap of 0 calls is a cap');
  t.same(liveIntOrNull(' 12 '), { kind: 'ok', value: 12 });
  t.same(liveIntOrNull(''), { kind: 'null' });
  t.same(liveIntOrNull('-1'), { kind: 'null' });
  for (const junk of ['12abc', '1.5', 'ten', 1.5, Number.POSITIVE_INFINITY]) t.same(liveIntOrNull(junk), { kind: 'unreadable' }, `${String(junk)}`);
});

t.test('LiveValues: the last good value stands in, reported once per edit', async (t) => {
  const { live, reports } = recorded();
  t.equal(live.balance(1, 'abc'), null, 'no value read before: limits nothing');
  t.match(reports, [{ tenantId: 1, column: 'balance', used: null, first: true }]);
  t.equal(live.balance(1, '20.0000'), 200_000);
  t.equal(live.balance(1, 'abc'), 200_000, 'the last good balance, not 0 and not unlimited');
  t.equal(live.balance(1, 'abc'), 200_000);
  t.same(reports.map((r) => [r.used, r.first]), [[null, true], [200_000, true], [200_000, false]], 'logged once per edit, counted each read');
  t.equal(live.balance(2, 'abc'), null, "another tenant's last good value is not used");
  t.equal(live.count(1, 'max_calls_day', '5'), 5);
  t.equal(live.count(1, 'max_calls_day', '5x'), 5);
  t.equal(live.balance(1, null), null, 'set to NULL: postpaid, and forgotten');
  t.equal(live.balance(1, 'abc'), null, 'so that junk after NULL limits nothing');
});

eachDb(t, 'a junk balance read live: the last good one is used, reported; the snapshot has the finding', async (t, { knex, target }) => {
  const { live, reports } = recorded();
  const tenant = await addTenant(knex, { balance: '10.0000', max_calls_day: 0, max_spend_day: '0.0000' });
  t.match(await readSpendLimits(knex, tenant, NOW, { live }), { balance: 100_000, maxSpendDay: 0 }, 'values as the driver returns them');
  t.match((await loadTenantLimits(knex, [tenant], { live }))[0], { balance: 100_000, maxCallsDay: 0, maxSpendDay: 0 }, 'a cap of 0 is a cap');
  if (target !== 'sqlite') {
    t.same(reports, [], 'MariaDB: nothing unreadable');
    return; // MySQL's DECIMAL and INT columns cannot hold junk
  }
  const before = await loadSnapshot(knex, 1);
  await knex('tenants').where({ id: tenant }).update({ balance: '1,000.00', max_calls_day: 'ten', updated_at: '2026-11-21 03:05:00.000' });
  t.match(await readSpendLimits(knex, tenant, NOW, { live }), { balance: 100_000 }, 'the guards keep the last good balance');
  t.match((await loadTenantLimits(knex, [tenant], { live }))[0], { balance: 100_000, maxCallsDay: 0 }, 'so does the caps job');
  t.match(reports.map((r) => [r.column, r.used, r.first]), [['balance', 100_000, true], ['balance', 100_000, false], ['max_calls_day', 0, true]]);

  const after = await loadSnapshot(knex, 2, before.lastGood);
  t.equal(after.tenants.get(tenant)?.balance, 100_000, 'the snapshot keeps the last good row');
  t.match(after.rejected, [{ table: 'tenants', id: tenant, status: 'last_good', column: 'balance' }], 'and reports it');

  // A new daemon (nothing read before): no limit, reported, never a balance of 0.
  const fresh = recorded();
  t.match(await readSpendLimits(knex, tenant, NOW, { live: fresh.live }), { balance: null });
  t.match(fresh.reports, [{ column: 'balance', used: null, first: true }]);

  // A cleared balance ('' in SQLite) is not NULL (postpaid).
  await knex('tenants').where({ id: tenant }).update({ balance: '', max_calls_day: 0 });
  t.match((await loadSnapshot(knex, 3, after.lastGood)).rejected, [{ table: 'tenants', id: tenant, column: 'balance', status: 'last_good' }]);
  t.match(await readSpendLimits(knex, tenant, NOW, { live }), { balance: 100_000 });
});

t.test('parseColumnMoney: floats as SQLite returns them, up to the largest DECIMAL(14,4)', async (t) => {
  t.equal(parseColumnMoney(9999999999.9999), 99_999_999_999_999);
  t.equal(parseColumnMoney(-9999999999.9999), -99_999_999_999_999);
  t.equal(parseColumnMoney(0.3), 3_000);
  t.equal(parseColumnMoney(0.1 + 0.2), 3_000, 'float noise is not an amount of its own');
  for (let m = 1; m < 100_000; m += 7919) t.equal(parseColumnMoney(m / 10_000), m, `${m} / 10000`);
});

t.test("snapshot: a cleared balance ('') is reported; a tenant that had it stays in service, postpaid as before", async (t) => {
  const raw = goodRaw();
  raw.tenants.push(tenantRow(3, { balance: '' }), tenantRow(4, { balance: '1,000.00' }));
  const s = buildSnapshot(raw, 1, NOW);
  t.equal(s.tenants.get(3)?.balance, null, 'in force, as earlier releases read it');
  t.match(s.rejected.find((f) => f.id === 3), { table: 'tenants', status: 'link_ignored', column: 'balance', reason: /cleared cell.*postpaid/ });
  t.notOk(s.tenants.has(4), 'junk that never was an amount: skipped, as before');
  t.match(s.rejected.find((f) => f.id === 4), { status: 'skipped', column: 'balance' });
  // A balance edited to '': its last good version stays.
  const edited = structuredClone(raw);
  edited.tenants[0] = { ...edited.tenants[0], balance: '', updated_at: '2026-11-21 03:05:00.000' };
  const next = buildSnapshot(edited, 2, NOW, s.lastGood);
  t.equal(next.tenants.get(1)?.balance, 1_000_000, 'tenant 1 keeps its balance of 100');
  t.match(next.rejected.find((f) => f.id === 1), { status: 'last_good', column: 'balance' });
});

// A junk balance must not hold CDRs back: the batch reads its tenants' balances (to see a charge
// cut at the column's floor) by the same rule, never by throwing, since one thrown batch holds
// every tenant's CDRs behind it in the spool. SQLite only: MySQL's DECIMAL cannot hold junk.
eachDb(t, "CDRs of a tenant whose balance is junk ('', 'abc') are written, not held", async (t, { knex, target }) => {
  if (target !== 'sqlite') return;
  for (const junk of ['', 'abc', '1,000.00']) {
    const tenant = await addTenant(knex, { balance: '5.0000' });
    await knex('tenants').where({ id: tenant }).update({ balance: junk });
    const written = await writeCdrs(knex, [cdr(1, { tenant_id: tenant, cost: '0.1500' }), cdr(2, { tenant_id: tenant, cost: '0.0000', outcome: 'no_answer', billsec: 0 })]);
    t.equal(written, 2, `balance ${JSON.stringify(junk)}: both CDRs written`);
    t.equal(await knex('cdrs').where({ tenant_id: tenant }).count({ n: '*' }).then((r) => Number(r[0].n)), 2);
  }
});

t.test('caps read live as the snapshot keeps them: 0 and a negative cap are the cap in force, one decision (domain/caps.ts)', async (t) => {
  // Before: read live, -1 was no cap while the snapshot refused it (kept the last good cap), and
  // 0 was a cap of 0 while the snapshot had no word on it: the guards and the caps job limited by
  // another cap than admission.
  t.same(readLiveCap('-1'), { kind: 'unreadable' }, 'a negative cap is refused, as the snapshot refuses it');
  t.same(readLiveCount(-1), { kind: 'unreadable' });
  t.same(readLiveCap('0.0000'), { kind: 'doubtful', value: 0 });
  t.same(readLiveCount('0'), { kind: 'doubtful', value: 0 });
  t.same(readLiveCount(' 12 '), { kind: 'ok', value: 12 });
  t.same(readLiveCount(''), { kind: 'null' });

  // With the snapshot in force: what it keeps (the last good cap of an edited row).
  const base = goodRaw();
  base.tenants[0] = { ...base.tenants[0], max_calls_day: 100, max_spend_day: '50.0000' };
  const v1 = buildSnapshot(base, 1, NOW);
  const edited = structuredClone(base);
  edited.tenants[0] = { ...edited.tenants[0], max_calls_day: 0, max_spend_day: -1, updated_at: '2026-11-21 03:05:00.000' };
  const v2 = buildSnapshot(edited, 2, NOW, v1.lastGood);
  t.equal(v2.tenants.get(1)?.maxCallsDay, 100);
  t.equal(v2.tenants.get(1)?.maxSpendDay, 500_000);
  const { live, reports } = recorded();
  live.followSnapshot(() => v2.tenants);
  t.equal(live.count(1, 'max_calls_day', 0), 100, 'a fresh daemon: 0 live is the last good cap the snapshot keeps');
  t.equal(live.cap(1, 'max_spend_day', -1), 500_000, '-1 live: the same');
  t.match(reports, [{ column: 'max_spend_day', used: 500_000 }], 'the refused value is reported, as junk is');
  const fresh = buildSnapshot(edited, 1, NOW);
  live.followSnapshot(() => fresh.tenants);
  t.notOk(fresh.tenants.has(1), 'a tenant whose row never was valid is not in force (its -1 cap)');
  live.followSnapshot(null);

  // Without a snapshot (a tool): the last good cap read, else 0 as written / no limit.
  const alone = recorded().live;
  t.equal(alone.count(2, 'max_calls_day', 0), 0, 'no cap read before: 0 as written, as the snapshot has it');
  t.equal(alone.count(3, 'max_calls_day', 20), 20);
  t.equal(alone.count(3, 'max_calls_day', 0), 20, 'an edit into 0 keeps the last good cap read');
  t.equal(alone.count(3, 'max_calls_day', -1), 20, 'and so does -1');
  t.equal(alone.cap(4, 'max_spend_day', '-1'), null, '-1 with nothing read before limits nothing');
});
