// tenants.timezone typed wrong ('Asia/Shangai'): the snapshot keeps the row's last good zone (a
// finding), and every reader that counts by local day or month takes the zone from the snapshot
// (snapshot/zones.ts), never from the raw column, so they all agree with the calls.
import t from 'tap';
import { loadTenantLimits } from '../../src/billing/caps';
import { LiveValues } from '../../src/billing/live-values';
import { loadReportTenant } from '../../src/billing/reports';
import { readBatchTenants, readSpendLimits } from '../../src/billing/usage';
import { DEFAULT_TIMEZONE } from '../../src/domain/periods';
import { loadSnapshot } from '../../src/snapshot/store';
import { liveTenantZone, zonesOf } from '../../src/snapshot/zones';
import { addTenant, eachDb } from './helpers';

const NOW = new Date('2026-11-21T03:00:00Z');

t.test('liveTenantZone: the snapshot tenant zone, else the default', async (t) => {
  const tenants = new Map([[1, { timezone: 'America/New_York' }]]);
  t.equal(liveTenantZone(tenants, 1), 'America/New_York');
  t.equal(liveTenantZone(tenants, 2), DEFAULT_TIMEZONE, 'a tenant not in force counts in the default zone');
});

eachDb(t, "a zone edited into a typo: caps, spend guards and reports keep the snapshot's last good zone", async (t, { knex }) => {
  const tenant = await addTenant(knex, { timezone: 'America/New_York', balance: '10.0000' });
  const before = await loadSnapshot(knex, 1);
  await knex('tenants').where({ id: tenant }).update({ timezone: 'Asia/Shangai', updated_at: '2026-11-21 03:05:00.000' });
  const after = await loadSnapshot(knex, 2, before.lastGood);
  t.match(after.rejected, [{ table: 'tenants', id: tenant, status: 'last_good', column: 'timezone', reason: /Asia\/Shangai" is not an IANA time zone/ }], 'a finding');
  const zoneOf = zonesOf(() => after.tenants);
  t.equal(zoneOf(tenant), 'America/New_York');

  const limits = await readSpendLimits(knex, tenant, NOW, { zone: zoneOf(tenant), live: new LiveValues() });
  t.equal(limits?.day.zone, 'America/New_York', 'the spend guards count the day in the last good zone');
  t.equal(limits?.day.start, '2026-11-20', 'still 20 November in New York at 03:00 UTC');
  t.equal((await loadTenantLimits(knex, [tenant], { zoneOf, live: new LiveValues() }))[0].zone, 'America/New_York', 'so does the caps job');
  t.equal((await loadReportTenant(knex, tenant, zoneOf))?.zone, 'America/New_York', 'and the reports');

  // A tenant whose zone was never one the runtime knows is in force on the default zone (a
  // link_ignored finding; before, it was skipped whole), the same for all.
  const never = await addTenant(knex, { timezone: 'Mars/Olympus' });
  const third = await loadSnapshot(knex, 3, after.lastGood);
  t.match(third.rejected.find((f) => f.id === never), { status: 'link_ignored', column: 'timezone' });
  t.equal(third.tenants.get(never)?.timezone, DEFAULT_TIMEZONE);
  t.equal((await loadTenantLimits(knex, [never], { zoneOf: zonesOf(() => third.tenants), live: new LiveValues() }))[0].zone, DEFAULT_TIMEZONE);

  // Charging (the CDR batch) counts in the same zones as the caps job, or the two would keep
  // tenant_usage rows of different periods: the typo'd tenant in its last good zone, the one with
  // no zone to keep and the one not in force in the default zone.
  // (refused is out of force for its status; its own zone is a real one, not the one counted in.)
  const refused = await addTenant(knex, { timezone: 'Asia/Tokyo', status: 'actve' });
  const fourth = await loadSnapshot(knex, 4, third.lastGood);
  t.match(fourth.rejected.find((f) => f.id === refused), { status: 'skipped', column: 'status' });
  const charged = await knex.transaction((trx) => readBatchTenants(trx, [tenant, never, refused], fourth.tenants));
  t.equal(charged.get(tenant)?.zone, 'America/New_York', 'charging: the last good zone');
  t.equal(charged.get(never)?.zone, DEFAULT_TIMEZONE, 'charging: the default zone, as the caps job');
  t.equal(charged.get(refused)?.zone, DEFAULT_TIMEZONE, 'charging: not the row\'s zone of a tenant not in force');
  t.equal((await loadTenantLimits(knex, [refused], { zoneOf: zonesOf(() => fourth.tenants), live: new LiveValues() }))[0].zone, DEFAULT_TIMEZONE, 'the caps job alike');
});
