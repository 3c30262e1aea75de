/** `route explain` says what calls do: checked against a configuration with known answers. */
import t from 'tap';
import { explainCall } from '../../src/calls/explain';
import { seedDemoIfEmpty } from '../../src/db/demo-seed';
import { loadGeoData } from '../../src/domain/geo';
import { loadSnapshot } from '../../src/snapshot/store';
import { dbTargets } from '../helpers/db';

t.test('explain', async (t) => {
  await loadGeoData();
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const { knex } = db;
  await seedDemoIfEmpty(knex);
  await knex('tenants').where({ id: 1 }).update({ max_calls_day: 100, pin: '1234' });
  await knex('call_filters').insert({ tenant_id: 1, list: 'block', kind: 'region', value: '广东' });
  const [schedule] = await knex('schedules').insert({ tenant_id: 1, name: 'office', exclude_holidays: 0 });
  await knex('schedule_slots').insert({ schedule_id: schedule, weekdays: '1-5', start_time: '09:00', end_time: '18:00' });
  await knex('routing_rules').insert({ tenant_id: 1, priority: 1, percent: 100, action: 'reject', schedule_id: schedule, enabled: 1 });
  const snap = await loadSnapshot(knex, 1);

  const evening = (await explainCall(snap, { dialed: '4001012345', caller: '13800138000', at: new Date('2026-11-20T20:00:00+08:00') }, knex)).join('\n');
  t.match(evening, /tenant 1 "Demo Trading Co\."/);
  t.match(evening, /北京市/);
  t.match(evening, /calls today 0\/100/);
  t.match(evening, /PIN: 4 digits, 3 attempts/);
  t.match(evening, /rule \d+ priority 1 reject 100%: no — outside schedule "office"/);
  t.match(evening, /rule 1 priority 10 group 1 100%: MATCHES/);
  t.match(evening, /group 1 "Sales" sequential, ring 15 s: 13800000001 → 13800000002/);

  const office = (await explainCall(snap, { dialed: '4001012345', caller: '13800138000', at: new Date('2026-11-20T10:00:00+08:00') }, knex)).join('\n');
  t.match(office, /priority 1 reject 100%: MATCHES — inside schedule "office"/);
  t.match(office, /rule 1 priority 10 group 1 100%: not reached/);

  const guangdong = (await explainCall(snap, { dialed: '4001012345', caller: '02088888888', at: new Date() }, knex)).join('\n');
  t.match(guangdong, /screening: blocked — block list: region 广东/);
  t.notMatch(guangdong, /routing rules/);

  t.match((await explainCall(snap, { dialed: '4009999999', caller: '1', at: new Date() }, null)).join('\n'), /unknown number → not_in_service\.wav/);
});
