/**
 * The enterprise switchboard through a real daemon: three-level IVR menus with wrong keys,
 * timeouts and loops; extension dialling with # and the operator; voicemail when nobody answers;
 * whole-call recording paths in the CDR.
 */
import t from 'tap';
import { placeCall } from '../peer/fake-freeswitch';
import { apps } from './helpers';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';


t.test('switchboard', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { recordings: { dir: '/rec' } });
  t.teardown(() => d.stop());
  const { knex } = d;
  const [tenantId] = await knex('tenants').insert({ name: '总机公司', status: 'active', timezone: 'Asia/Shanghai', caller_memory_hours: 0, record_calls: 1, voicemail_enabled: 1 });
  await knex('access_numbers').insert([
    { number: '02088880000', tenant_id: tenantId, kind: 'switchboard', enabled: 1 },
    { number: '4004000000', tenant_id: tenantId, kind: 'hotline', enabled: 1 },
  ]);
  const [operatorGroup] = await knex('destination_groups').insert({ tenant_id: tenantId, name: 'operator', strategy: 'sequential', max_queue: 0, queue_timeout_s: 0 });
  await knex('destinations').insert({ group_id: operatorGroup, number: '13877770000', position: 1, weight: 1, enabled: 1 });
  await knex('tenants').where({ id: tenantId }).update({ operator_group_id: operatorGroup });
  const [ext801] = await knex('extensions').insert({ tenant_id: tenantId, ext: '801', name: '张三', department: '销售', voicemail_enabled: 1 });
  await knex('extension_phones').insert([
    { extension_id: ext801, number: '13877778011', position: 1 },
    { extension_id: ext801, number: '01087778012', position: 2 },
  ]);
  const [m1] = await knex('ivr_menus').insert({ tenant_id: tenantId, name: 'main', digits: 1, timeout_s: 5, max_retries: 2 });
  const [m2] = await knex('ivr_menus').insert({ tenant_id: tenantId, name: 'sales', digits: 1, timeout_s: 5, max_retries: 2 });
  const [m3] = await knex('ivr_menus').insert({ tenant_id: tenantId, name: 'people', digits: 3, timeout_s: 5, max_retries: 2 });
  await knex('ivr_options').insert([
    { menu_id: m1, digits: '1', action: 'menu', target_id: m2 },
    { menu_id: m1, digits: '9', action: 'menu', target_id: m1 },
    { menu_id: m1, digits: '7', action: 'menu', target_id: 99999 },
    { menu_id: m1, digits: '0', action: 'operator', target_id: null },
    { menu_id: m2, digits: '3', action: 'menu', target_id: m3 },
    { menu_id: m2, digits: '*', action: 'repeat', target_id: null },
    { menu_id: m3, digits: '801', action: 'extension', target_id: ext801 },
  ]);
  await knex('routing_rules').insert({ tenant_id: tenantId, access_number_id: null, priority: 10, percent: 100, action: 'ivr', target_id: m1, enabled: 1 });
  // The switchboard number has its own rule: straight to the switchboard.
  const sbNumber = (await knex('access_numbers').where({ number: '02088880000' }).first()) as { id: number };
  await knex('routing_rules').insert({ tenant_id: tenantId, access_number_id: sbNumber.id, priority: 1, percent: 100, action: 'switchboard', enabled: 1 });
  await d.daemon.store.poll();
  // Option 7 names a menu that does not exist: reported, and not in force.
  t.match(d.daemon.store.current.rejected, [{ table: 'ivr_options', status: 'skipped', column: 'target_id', value: '99999', reason: /target_id 99999 is not an IVR menu of tenant/ }]);
  t.equal(d.daemon.store.current.rejected.length, 1);

  const call = async (digits: string[], legs: Record<string, { result: 'answer' | 'busy' | 'no_answer' }> = {}, destination = '4004000000') => {
    const c = await placeCall(d.port, { caller: '13912345678', destination, digits, legs });
    return { c, cdr: await d.cdr(c.uuid) };
  };

  t.test('three levels: 1 > 3 > 801, the extension answers', async (t) => {
    const { c, cdr } = await call(['1', '3', '801'], { '13877778011': { result: 'answer' } });
    t.equal(cdr.ivr_path, '1>3>801');
    t.equal(cdr.answered_by, '13877778011');
    t.equal(cdr.outcome, 'answered');
    t.match(cdr.recording_path, /^\/rec\/\d+\/\d{4}-\d{2}-\d{2}\/[0-9a-f-]{36}\.wav$/);
    t.ok(apps(c).some((a) => a === `record_session ${String(cdr.recording_path)}`), 'record_session with that path');
    t.ok(apps(c).includes('multiset RECORD_STEREO=true'));
    const pagd = apps(c).filter((a) => a.startsWith('play_and_get_digits'));
    t.match(pagd[2], /^play_and_get_digits 1 3 1 5000 # /, 'the third level expects up to 3 digits');
  });

  t.test('wrong key, then timeout, then the right key; repeat', async (t) => {
    const { c, cdr } = await call(['5', '', '1', '*', '3', '801'], { '13877778011': { result: 'answer' } });
    t.equal(apps(c).filter((a) => a.includes(' file_string:///sounds/hotline/invalid_entry.wav!/sounds/hotline/choose_option.wav ')).length, 2, 'invalid entry and the menu again, as one prompt to type over');
    t.notOk(apps(c).some((a) => a.startsWith('playback /sounds/hotline/invalid_entry')), 'never by playback (it drops keys)');
    t.equal(cdr.ivr_path, '1>*>3>801');
    t.equal(cdr.outcome, 'answered');
  });

  t.test('no input at all: retries, then goodbye', async (t) => {
    const { c, cdr } = await call([]);
    t.equal(apps(c).filter((a) => a.startsWith('play_and_get_digits')).length, 3, 'max_retries 2: three tries');
    t.same(apps(c).slice(-2), ['playback /sounds/hotline/goodbye.wav', 'hangup NORMAL_CLEARING']);
    t.equal(cdr.outcome, 'announced');
  });

  t.test('a menu that points at itself cannot trap the caller', async (t) => {
    const { c, cdr } = await call(Array.from({ length: 40 }, () => '9'));
    t.equal(apps(c).filter((a) => a.startsWith('play_and_get_digits')).length, 20);
    t.equal(cdr.outcome, 'announced');
    t.equal(String(cdr.ivr_path).split('>').length, 20, 'every key pressed is in the path');
  });

  t.test('an option pointing at a missing menu is not in force: 7 is an invalid entry, the call ends politely', async (t) => {
    const { cdr } = await call(['7']);
    t.equal(cdr.outcome, 'announced');
    t.equal(cdr.ivr_path ?? '', '', 'no option was chosen');
  });

  t.test('operator from the menu', async (t) => {
    const { cdr } = await call(['0'], { '13877770000': { result: 'answer' } });
    t.equal(cdr.answered_by, '13877770000');
  });

  t.test('switchboard: unknown extension re-prompted, then 801 rings its phones in order', async (t) => {
    const { c, cdr } = await call(['555', '801'], { '13877778011': { result: 'busy' }, '01087778012': { result: 'answer' } }, '02088880000');
    const pagd = apps(c).filter((a) => a.startsWith('play_and_get_digits'));
    t.match(pagd[0], /^play_and_get_digits 1 16 1 8000 # file_string:\/\/\/sounds\/hotline\/welcome\.wav!\/sounds\/hotline\/enter_extension\.wav /, 'the greeting and the switchboard prompt: one prompt');
    t.match(pagd[1], /^play_and_get_digits 1 16 1 8000 # file_string:\/\/\/sounds\/hotline\/invalid_entry\.wav!\/sounds\/hotline\/enter_extension\.wav /);
    t.same(c.bridges.map((b) => b.number), ['13877778011', '01087778012']);
    t.equal(cdr.outcome, 'answered');
    t.equal(cdr.ivr_path, '555>801');
  });

  t.test('switchboard: 0 for the operator', async (t) => {
    const { cdr } = await call(['0'], { '13877770000': { result: 'answer' } }, '02088880000');
    t.equal(cdr.answered_by, '13877770000');
  });

  t.test('nobody at the extension: the caller leaves a message', async (t) => {
    const { c, cdr } = await call(['801'], {}, '02088880000');
    t.equal(cdr.outcome, 'voicemail');
    t.ok(apps(c).includes('playback /sounds/hotline/leave_message.wav'));
    t.equal(c.recordings.length, 1);
    t.match(c.recordings[0], /-vm\.wav$/);
    const vm = (await knex('voicemails').where({ call_uuid: c.uuid }).first()) as { extension_id: number; duration_s: number; file_path: string; tenant_id: number };
    t.match(vm, { extension_id: ext801, duration_s: 3, tenant_id: tenantId, file_path: c.recordings[0] });
  });

  t.test('an empty message is not kept: no voicemail, the call is what the hunt made it', async (t) => {
    const c = await placeCall(d.port, { caller: '13912345678', destination: '02088880000', digits: ['801'], recordSeconds: 0 });
    const cdr = await d.cdr(c.uuid);
    t.equal(cdr.outcome, 'no_answer', 'nobody answered, and no message was left');
    t.equal(await knex('voicemails').where({ call_uuid: c.uuid }).first(), undefined);
  });

  t.test('the caller hangs up as the message starts: one CDR, no voicemail', async (t) => {
    const c = await placeCall(d.port, { caller: '13912345678', destination: '02088880000', digits: ['801'], recordSeconds: 5, callerHangsUpOnApp: 'record' });
    const cdr = await d.cdr(c.uuid);
    t.equal(cdr.outcome, 'no_answer');
    t.equal(await knex('voicemails').where({ call_uuid: c.uuid }).first(), undefined);
    const rows = await knex('cdrs').where({ call_uuid: c.uuid }).select('id');
    t.equal(rows.length, 1, 'exactly one CDR');
  });
});
