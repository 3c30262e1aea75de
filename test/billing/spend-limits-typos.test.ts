// The spend guards read a tenant's balance and spend caps live from the tenants row (the snapshot
// does not follow balance debits). A cap the snapshot refuses as a DBA's typo (and keeps the last
// good version of) must not be what the guards cut calls by.
import t from 'tap';
import { cappedReasons, loadTenantLimits, runCaps } from '../../src/billing/caps';
import { LiveValues } from '../../src/billing/live-values';
import { readSpendHeadroom, readSpendLimits } from '../../src/billing/usage';
import { createLogger } from '../../src/log';
import { loadSnapshot } from '../../src/snapshot/store';
import { addTenant, eachDb } from './helpers';

const NOW = new Date('2026-11-21T03:00:00Z');

eachDb(t, 'max_spend_day = -1 ("no cap" to a DBA): the snapshot keeps the last good cap, the guards do not cut every call at once', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: null, max_spend_day: '500.0000' });
  const before = await loadSnapshot(knex, 1);
  t.equal(before.tenants.get(tenant)?.maxSpendDay, 5_000_000);
  t.equal(await readSpendHeadroom(knex, tenant, NOW), 5_000_000, 'a cap of 500 leaves 500 today');

  await knex('tenants').where({ id: tenant }).update({ max_spend_day: -1 });
  const after = await loadSnapshot(knex, 2, before.lastGood);
  t.equal(after.tenants.get(tenant)?.maxSpendDay, 5_000_000, 'the snapshot keeps the cap of 500');
  t.match(after.rejected, [{ table: 'tenants', id: tenant, status: 'last_good', column: 'max_spend_day' }], 'and reports the row');
  const headroom = await readSpendHeadroom(knex, tenant, NOW);
  t.ok(headroom === null || headroom >= 0, `the guards see no negative headroom (got ${String(headroom)}): a negative one cuts each call as it is answered`);
});

eachDb(t, 'a cap or balance that is not an amount does not make the live read throw', async (t, { knex, target }) => {
  if (target !== 'sqlite') return; // MySQL's DECIMAL columns cannot hold text
  const tenant = await addTenant(knex, { balance: '10.0000', max_spend_month: '100' });
  await knex('tenants').where({ id: tenant }).update({ max_spend_month: '1,000.00' });
  // One tenant's typo threw out of the live-call job's run, so no tenant's live calls were checked.
  // A fresh LiveValues: no last good cap read before (LIVE_VALUES is the process's, shared by tests).
  const limits = await readSpendLimits(knex, tenant, NOW, { live: new LiveValues() });
  t.match(limits, { balance: 100_000, maxSpendMonth: null });
});

eachDb(t, "max_calls_day = '' (a cleared cell in SQLite) is no cap for the caps job, as for the snapshot", async (t, { knex, target }) => {
  if (target !== 'sqlite') return; // MySQL's INT columns cannot hold ''
  const tenant = await addTenant(knex, { max_calls_day: 100 });
  await knex('tenants').where({ id: tenant }).update({ max_calls_day: '', max_calls_month: ' ' });
  const [limits] = await loadTenantLimits(knex, [tenant], { live: new LiveValues() });
  t.match(limits, { maxCallsDay: null, maxCallsMonth: null }, 'not a cap of 0 calls');
  t.match((await loadSnapshot(knex, 1)).tenants.get(tenant), { maxCallsDay: null, maxCallsMonth: null });
});

eachDb(t, 'max_spend_day = -1: the caps job does not mark the tenant capped (which refuses its click-to-call requests)', async (t, { knex }) => {
  const tenant = await addTenant(knex, { balance: null, max_spend_day: '500.0000' });
  await knex('tenants').where({ id: tenant }).update({ max_spend_day: -1 });
  // Read live, -1 is refused as the snapshot refuses it: the cap the snapshot keeps when the
  // daemon follows one, else the last one read, else (as here, a fresh LiveValues) no limit.
  const [limits] = await loadTenantLimits(knex, [tenant], { live: new LiveValues() });
  t.match(limits, { maxSpendDay: null }, 'read live with nothing read before, -1 limits nothing, as for the guards');
  await runCaps(knex, NOW, createLogger('silent'));
  t.same(await cappedReasons(knex, tenant), [], 'not capped for spending 0 of -1 today');
});
