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
  const [widgetId] = await knex('click_to_call_widgets').insert({ tenant_id: 1, access_number_id: 1, public_key: 'demo-click-to-call' });
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

  // The same call as a click-to-call from the tenant's web site: the plan calls carry out for it.
  const c2c = (await explainCall(snap, { dialed: '4001012345', caller: '13800138000', at: new Date('2026-11-20T20:00:00+08:00'), clickToCall: { widgetId } }, knex)).join('\n');
  t.match(c2c, /PIN: none for a click-to-call/, 'no PIN: the tenant\'s own page invited the visitor');
  t.match(c2c, new RegExp(`click-to-call from widget ${widgetId} \\(key demo-click-to-call\\): .*answer prompt ringback\\.wav \\(system\\) first, then the greeting`));
  t.match(c2c, /rule 1 priority 10 group 1 100%: MATCHES/, 'then routed like a dialled call');
});

t.test('explain prints the plan calls carry out: switchboard, IVR tree, voicemail', async (t) => {
  await loadGeoData();
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const { knex } = db;
  await seedDemoIfEmpty(knex);
  const [tenantId] = await knex('tenants').insert({ name: '总机公司', status: 'active', timezone: 'Asia/Shanghai', voicemail_enabled: 1 });
  await knex('access_numbers').insert([
    { number: '02088880000', tenant_id: tenantId, kind: 'switchboard', enabled: 1 },
    { number: '4004000000', tenant_id: tenantId, kind: 'hotline', enabled: 1 },
    { number: '4004000001', tenant_id: tenantId, kind: 'hotline', enabled: 1 },
  ]);
  const [ext] = await knex('extensions').insert({ tenant_id: tenantId, ext: '801', name: '张三', voicemail_enabled: 1 });
  await knex('extension_phones').insert({ extension_id: ext, number: '13877778011', position: 1 });
  const [main] = await knex('ivr_menus').insert({ tenant_id: tenantId, name: 'main', digits: 1, timeout_s: 5, max_retries: 2 });
  const [sales] = await knex('ivr_menus').insert({ tenant_id: tenantId, name: 'sales', digits: 3, timeout_s: 5, max_retries: 1 });
  await knex('ivr_options').insert([
    { menu_id: main, digits: '1', action: 'menu', target_id: sales },
    { menu_id: main, digits: '9', action: 'repeat', target_id: null },
    { menu_id: sales, digits: '801', action: 'extension', target_id: ext },
  ]);
  const numbers: Array<{ id: number; number: string }> = await knex('access_numbers').where({ tenant_id: tenantId }).select('id', 'number');
  const idOf = (n: string): number => numbers.find((x) => x.number === n)!.id;
  await knex('routing_rules').insert([
    { tenant_id: tenantId, access_number_id: idOf('4004000000'), priority: 1, percent: 100, action: 'ivr', target_id: main, enabled: 1 },
    { tenant_id: tenantId, access_number_id: idOf('4004000001'), priority: 1, percent: 100, action: 'voicemail', target_id: null, enabled: 1 },
  ]);
  const snap = await loadSnapshot(knex, 1);
  const at = new Date('2026-11-20T10:00:00+08:00');

  const sb = (await explainCall(snap, { dialed: '02088880000', caller: '13800138000', at }, knex)).join('\n');
  t.match(sb, /no rule matches: a switchboard number goes to the switchboard/);
  t.match(sb, /8 action: the switchboard/);
  t.match(sb, /extensions: 801 张三 \(13877778011, voicemail\)/);
  t.match(sb, /played as one prompt with the switchboard prompt/);
  t.notMatch(sb, /outcome failed/, 'not "service unavailable": calls to a switchboard number without rules reach the switchboard');

  const ivr = (await explainCall(snap, { dialed: '4004000000', caller: '13800138000', at }, knex)).join('\n');
  t.match(ivr, /8 action: IVR menu \d+ "main"/);
  t.match(ivr, /menu \d+ "main": prompt choose_option\.wav \(system\), 1 digit\(s\)/, 'a menu without a prompt: choose_option.wav, not the welcome again');
  t.match(ivr, /1 → IVR menu \d+ "sales"/);
  t.match(ivr, /9 → this menu again/);
  t.match(ivr, /801 → ring extension id \d+/);
  t.match(ivr, /played as one prompt with the first menu prompt/);

  const vm = (await explainCall(snap, { dialed: '4004000001', caller: '13800138000', at }, knex)).join('\n');
  t.match(vm, /8 action: voicemail: the tenant's box/);
});
