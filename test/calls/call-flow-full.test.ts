/**
 * The whole hotline flow through a real daemon (SQLite, real TCP, the FreeSWITCH stand-in):
 * screening, PIN with lockout, greetings by business hours, routing by region and schedule,
 * the hunting strategies, caller memory, company ringback and the queue.
 */
import t from 'tap';
import type { Knex } from 'knex';
import { placeCall, startCall, type CallScript } from '../peer/fake-freeswitch';
import { until } from '../helpers/wait';
import { allApps, apps, servedClaimApp } from './helpers';
import { startTestDaemon, tempSqliteUrl, type TestDaemon } from '../helpers/daemon';

let caller = 13900000000;
const nextCaller = (): string => String(++caller);


async function tenantWithGroup(knex: Knex, number: string, strategy: string, phones: string[], extra: Record<string, unknown> = {}, group: Record<string, unknown> = {}) {
  const [tenantId] = await knex('tenants').insert({ name: `T ${number}`, status: 'active', timezone: 'Asia/Shanghai', caller_memory_hours: 0, ...extra });
  const [accessId] = await knex('access_numbers').insert({ number, tenant_id: tenantId, kind: 'hotline', enabled: 1 });
  const [groupId] = await knex('destination_groups').insert({ tenant_id: tenantId, name: strategy, strategy, max_queue: 0, queue_timeout_s: 0, ...group });
  await knex('destinations').insert(phones.map((p, i) => ({ group_id: groupId, number: p, position: i + 1, weight: 1, enabled: 1 })));
  const [ruleId] = await knex('routing_rules').insert({ tenant_id: tenantId, priority: 100, percent: 100, action: 'group', target_id: groupId, enabled: 1 });
  return { tenantId: tenantId, accessId: accessId, groupId: groupId, ruleId: ruleId };
}

t.test('full flow', async (t) => {
  const d: TestDaemon = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  const { knex } = d;
  const call = async (script: Partial<CallScript> & { destination: string }) => {
    const record = await placeCall(d.port, { caller: nextCaller(), ...script });
    return { c: record, cdr: await d.cdr(record.uuid) };
  };

  await tenantWithGroup(knex, '4003000001', 'sequential', ['13811110001'], { pin: '2468', pin_max_attempts: 2, pin_lockout_failures: 2, pin_lockout_minutes: 5 });
  const blockT = await tenantWithGroup(knex, '4003000002', 'sequential', ['13811110002'], { anonymous_callers: 'block' });
  await knex('call_filters').insert([
    { tenant_id: blockT.tenantId, list: 'block', kind: 'number', value: '13966666666' },
    { tenant_id: blockT.tenantId, list: 'block', kind: 'region', value: '广东' },
  ]);
  const silentT = await tenantWithGroup(knex, '4003000003', 'sequential', ['13811110003'], { blocked_action: 'silent' });
  await knex('call_filters').insert({ tenant_id: silentT.tenantId, list: 'allow', kind: 'prefix', value: '010' });
  await tenantWithGroup(knex, '4003000004', 'round_robin', ['13822220001', '13822220002', '13822220003']);
  await tenantWithGroup(knex, '4003000005', 'simultaneous', ['13833330001', '13833330002', '13833330003']);
  const memT = await tenantWithGroup(knex, '4003000006', 'sequential', ['13844440001', '13844440002'], { caller_memory_hours: 24 });
  await tenantWithGroup(knex, '4003000007', 'sequential', ['13855550001'], {}, { max_queue: 1, queue_timeout_s: 2 });
  const [ringbackPrompt] = await knex('prompts').insert({ tenant_id: memT.tenantId, name: 'ring', file: '/sounds/t/ring.wav' });
  await knex('tenants').where({ id: memT.tenantId }).update({ ringback_prompt_id: ringbackPrompt });
  // Region and schedule routing for one tenant: Beijing callers to group B, office hours only.
  const regionT = await tenantWithGroup(knex, '4003000008', 'sequential', ['13866660001']);
  const [groupB] = await knex('destination_groups').insert({ tenant_id: regionT.tenantId, name: 'Beijing', strategy: 'sequential', max_queue: 0, queue_timeout_s: 0 });
  await knex('destinations').insert({ group_id: groupB, number: '13866660002', position: 1, weight: 1, enabled: 1 });
  const [never] = await knex('schedules').insert({ tenant_id: regionT.tenantId, name: 'never', exclude_holidays: 0 });
  await knex('schedule_slots').insert({ schedule_id: never, weekdays: '1-7', start_time: '00:00', end_time: '00:01', date_from: '2000-01-01', date_to: '2000-01-01' });
  const [nightGroup] = await knex('destination_groups').insert({ tenant_id: regionT.tenantId, name: 'never', strategy: 'sequential', max_queue: 0, queue_timeout_s: 0 });
  await knex('routing_rules').insert([
    { tenant_id: regionT.tenantId, priority: 1, percent: 100, action: 'group', target_id: nightGroup, schedule_id: never, enabled: 1 },
    { tenant_id: regionT.tenantId, priority: 10, percent: 100, action: 'group', target_id: groupB, regions: '北京', enabled: 1 },
  ]);
  await knex('tenants').where({ id: regionT.tenantId }).update({ business_hours_schedule_id: never });
  await d.daemon.store.poll();
  t.same(d.daemon.store.current.rejected, [], 'the test configuration is valid');

  t.test('PIN: right first time', async (t) => {
    const { c, cdr } = await call({ destination: '4003000001', digits: ['2468'], legs: { '13811110001': { result: 'answer' } } });
    t.match(apps(c)[0], /^answer/);
    // The greeting and the PIN prompt are one prompt: a caller who knows the PIN keys it over the greeting.
    t.match(apps(c)[1], /^play_and_get_digits 4 17 1 6000 # file_string:\/\/\/sounds\/hotline\/welcome\.wav!\/sounds\/hotline\/enter_pin\.wav silence_stream:\/\/250 hotline_pin \^\\d\{4\}\$ 3000$/);
    t.notOk(apps(c).some((a) => a.startsWith('playback')), 'no prompt by playback: nothing the caller types is dropped');
    t.equal(cdr.outcome, 'answered');
  });

  t.test('PIN: wrong, then right', async (t) => {
    const { c, cdr } = await call({ destination: '4003000001', digits: ['1111', '2468'], legs: { '13811110001': { result: 'answer' } } });
    t.match(apps(c).filter((a) => a.startsWith('play_and_get_digits'))[1], / file_string:\/\/\/sounds\/hotline\/wrong_pin\.wav!\/sounds\/hotline\/enter_pin\.wav /, '"wrong PIN" and "enter your PIN" again: one prompt to type over');
    t.equal(cdr.outcome, 'answered');
  });

  t.test('PIN: all wrong twice locks the caller out', async (t) => {
    const who = nextCaller();
    for (let i = 0; i < 2; i++) {
      const record = await placeCall(d.port, { caller: who, destination: '4003000001', digits: ['1111', '', '9'] });
      const cdr = await d.cdr(record.uuid);
      t.equal(cdr.outcome, 'pin_failed');
      t.same(apps(record).slice(-2), ['playback /sounds/hotline/pin_failed.wav', 'hangup CALL_REJECTED']);
      t.equal(record.bridges.length, 0);
    }
    const locked = await placeCall(d.port, { caller: who, destination: '4003000001', digits: ['2468'] });
    t.same(apps(locked), ['playback /sounds/hotline/pin_failed.wav', 'hangup CALL_REJECTED'], 'locked out: not even asked');
    const other = await call({ destination: '4003000001', digits: ['2468'], legs: { '13811110001': { result: 'answer' } } });
    t.equal(other.cdr.outcome, 'answered', 'another caller still gets in');
  });

  t.test('screening: block list, region, anonymous, silent rejection', async (t) => {
    for (const who of ['13966666666', '02088888888', 'anonymous']) {
      const { c, cdr } = await call({ destination: '4003000002', caller: who });
      t.same(apps(c), ['playback /sounds/hotline/blocked.wav', 'hangup CALL_REJECTED'], who);
      t.equal(cdr.outcome, 'blocked');
    }
    const ok = await call({ destination: '4003000002', caller: '01012345678', legs: { '13811110002': { result: 'answer' } } });
    t.equal(ok.cdr.outcome, 'answered');
    t.equal(ok.cdr.caller_region, '北京市');
    const silent = await call({ destination: '4003000003', caller: '02188888888' });
    t.same(apps(silent.c), ['hangup CALL_REJECTED'], 'allow list not matched: silent');
    const allowed = await call({ destination: '4003000003', caller: '01088888888', legs: { '13811110003': { result: 'answer' } } });
    t.equal(allowed.cdr.outcome, 'answered');
  });

  t.test('round robin hands the first ring to each phone in turn', async (t) => {
    const firsts: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { c } = await call({ destination: '4003000004', defaultLeg: { result: 'answer' } });
      firsts.push(c.bridges[0].number);
    }
    t.same(firsts, ['13822220001', '13822220002', '13822220003', '13822220001']);
  });

  t.test('simultaneous: one bridge with every phone; the one that answers is recorded', async (t) => {
    const { c, cdr } = await call({ destination: '4003000005', legs: { '13833330002': { result: 'answer', ringMs: 20 }, '13833330001': { result: 'no_answer' }, '13833330003': { result: 'busy' } } });
    const bridgeApps = apps(c).filter((a) => a.startsWith('bridge'));
    t.equal(bridgeApps.length, 1);
    t.match(bridgeApps[0], /^bridge \{leg_timeout=15,ignore_early_media=true,origination_caller_id_number=\d+\}sofia\/gateway\/carrier\/13833330001,sofia\/gateway\/carrier\/13833330002,sofia\/gateway\/carrier\/13833330003$/);
    t.equal(cdr.answered_by, '13833330002');
  });

  t.test('caller memory and company ringback', async (t) => {
    const who = nextCaller();
    const first = await placeCall(d.port, { caller: who, destination: '4003000006', legs: { '13844440001': { result: 'busy' }, '13844440002': { result: 'answer' } } });
    t.equal((await d.cdr(first.uuid)).answered_by, '13844440002');
    t.equal(allApps(first)[0], servedClaimApp('/sounds/t/ring.wav'), 'the company ringback set with the claim, before the legs ring');
    const again = await placeCall(d.port, { caller: who, destination: '4003000006', defaultLeg: { result: 'answer' } });
    t.equal(again.bridges[0].number, '13844440002', 'the phone that answered last time rings first');
    const stranger = await call({ destination: '4003000006', defaultLeg: { result: 'answer' } });
    t.equal(stranger.c.bridges[0].number, '13844440001', 'other callers keep the normal order');
  });

  t.test('queue: all busy, wait with music, answered when the phone frees up', async (t) => {
    const { c, cdr } = await call({ destination: '4003000007', legs: { '13855550001': [{ result: 'busy' }, { result: 'busy' }, { result: 'answer' }] } });
    t.equal(c.bridges.length, 3);
    t.ok(apps(c).includes('playback local_stream://moh'), 'hold music');
    t.ok(apps(c).some((a) => /^multiset playback_timeout_sec=\d+$/.test(a)), 'hold music is bounded');
    t.equal(cdr.outcome, 'answered');
  });

  t.test('queue: timeout ends in all-busy; a full queue refuses at once', async (t) => {
    // The second caller comes once the first waits in the queue (its hold music started).
    const first = startCall(d.port, { caller: nextCaller(), destination: '4003000007', defaultLeg: { result: 'busy' }, playbackMs: 300 });
    const waiting = first.done.then(async (record) => ({ c: record, cdr: await d.cdr(record.uuid) }));
    await until('the first caller in the queue', () => apps(first.live).includes('playback local_stream://moh'));
    const full = await call({ destination: '4003000007', defaultLeg: { result: 'busy' } });
    t.notOk(apps(full.c).includes('playback local_stream://moh'), 'queue (max 1) was full');
    t.same(apps(full.c).slice(-2), ['playback /sounds/hotline/all_busy.wav', 'hangup USER_BUSY']);
    t.equal(full.cdr.outcome, 'busy');
    const timedOut = await waiting;
    t.ok(timedOut.c.bridges.length >= 2, 're-hunted while queued');
    t.equal(timedOut.cdr.outcome, 'busy');
  });

  t.test('region rule, schedule rule that never matches, after-hours greeting', async (t) => {
    const beijing = await call({ destination: '4003000008', caller: '01066666666', defaultLeg: { result: 'answer' } });
    t.equal(beijing.c.bridges[0].number, '13866660002');
    t.equal(apps(beijing.c)[0], 'playback /sounds/hotline/after_hours.wav');
    const shanghai = await call({ destination: '4003000008', caller: '02166666666', defaultLeg: { result: 'answer' } });
    t.equal(shanghai.c.bridges[0].number, '13866660001', 'falls through to the catch-all rule');
  });
});
