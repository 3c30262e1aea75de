// Hand-edited rows a DBA could plausibly type that validation let through, and that then misrouted
// calls or took a number down without a finding. Each case: the row, what the snapshot keeps, and
// what a call gets.
import t from 'tap';
import { callerNumber } from '../../src/domain/caller-number';
import type { CallerGeo } from '../../src/domain/geo';
import { tenantZone } from '../../src/domain/periods';
import { screenCaller } from '../../src/domain/screening';
import { buildSnapshot, NO_FILTERS } from '../../src/snapshot/build';
import { formatFinding, summarizeFindings } from '../../src/snapshot/findings';
import { goodRaw, ruleRow, tenantRow } from './fixtures';

const WHEN = new Date('2026-11-21T08:00:00.000Z');

/** A Beijing mobile caller, as geocode() describes one. */
const BEIJING: CallerGeo = { e164: '+8613800138000', country: 'CN', province: '北京市', city: '北京市', areaCode: '10', isMobile: true, description: '北京市' };

t.test('call_filters: a region value listing several tokens ("北京,上海") screens by each of them', async (t) => {
  const raw = goodRaw();
  raw.call_filters = [
    // Tenant 1 only lets callers from Beijing or Shanghai in (one row, the way regions are written in routing_rules).
    { id: 1, tenant_id: 1, list: 'allow', kind: 'region', value: '北京,上海' },
    // Tenant 2 blocks Beijing, with a trailing full-width comma.
    { id: 2, tenant_id: 2, list: 'block', kind: 'region', value: '北京，' },
  ];
  const s = buildSnapshot(raw, 1, WHEN);
  t.same(s.rejected, [], 'both rows pass validation');
  const caller = callerNumber('13800138000');
  const allow = screenCaller(s.tenants.get(1)!, s.filtersByTenant.get(1) ?? NO_FILTERS, caller, BEIJING);
  t.equal(allow.verdict, 'pass', `a Beijing caller passes the allow list "北京,上海" (${allow.reason})`);
  const block = screenCaller(s.tenants.get(2)!, s.filtersByTenant.get(2) ?? NO_FILTERS, caller, BEIJING);
  t.equal(block.verdict, 'blocked', `a Beijing caller is blocked by "北京，" (${block.reason})`);

  // A value that lists no token at all is reported, as routing_rules.regions is.
  const empty = buildSnapshot({ ...goodRaw(), call_filters: [{ id: 3, tenant_id: 1, list: 'allow', kind: 'region', value: ' , ' }] }, 1, WHEN);
  t.match(empty.rejected, [{ table: 'call_filters', id: 3, status: 'skipped', column: 'value', reason: /lists no region token/ }]);
  t.equal(empty.filtersByTenant.get(1)?.allow.regions.length ?? 0, 0, 'and it lets nobody in or out');
});

t.test("ivr_options.target_id must name a group, menu, extension or prompt of the menu's tenant", async (t) => {
  const raw = goodRaw();
  raw.extensions = [{ id: 7, tenant_id: 1, ext: '801' }, { id: 8, tenant_id: 2, ext: '801' }];
  raw.ivr_menus = [{ id: 1, tenant_id: 1, name: 'Main', digits: 1 }, { id: 2, tenant_id: 1, name: 'Sales', digits: 1 }, { id: 3, tenant_id: 2, name: 'Beta', digits: 1 }];
  raw.ivr_options = [
    // Good ones: the tenant's own group, menu, extension, prompt, the system prompt; actions without a target.
    { id: 1, menu_id: 1, digits: '1', action: 'group', target_id: 10 },
    { id: 2, menu_id: 1, digits: '2', action: 'menu', target_id: 2 },
    { id: 3, menu_id: 1, digits: '3', action: 'extension', target_id: 7 },
    { id: 4, menu_id: 1, digits: '4', action: 'announce', target_id: 501 },
    { id: 5, menu_id: 1, digits: '5', action: 'voicemail', target_id: null },
    { id: 6, menu_id: 1, digits: '0', action: 'operator', target_id: null },
    // Typos: another tenant's group, prompt, menu and extension; a group deleted; a group without its id.
    { id: 11, menu_id: 2, digits: '1', action: 'group', target_id: 20 },
    { id: 12, menu_id: 2, digits: '2', action: 'announce', target_id: 502 },
    { id: 13, menu_id: 2, digits: '3', action: 'menu', target_id: 3 },
    { id: 14, menu_id: 2, digits: '4', action: 'extension', target_id: 8 },
    { id: 15, menu_id: 2, digits: '5', action: 'group', target_id: 999 },
    { id: 16, menu_id: 2, digits: '6', action: 'group', target_id: null },
    { id: 17, menu_id: 2, digits: '7', action: 'voicemail', target_id: 8 },
  ];
  const s = buildSnapshot(raw, 1, WHEN);
  t.same([...s.menus.get(1)!.options.keys()].sort(), ['0', '1', '2', '3', '4', '5'], 'the good options are in force');
  // A voicemail option with another tenant's box stays, with the tenant's own box: the caller can still leave the message.
  t.same([...s.menus.get(2)!.options.keys()], ['7'], 'no option of menu 2 reaches outside tenant 1 or nowhere');
  t.equal(s.menus.get(2)!.options.get('7')?.targetId, null, "option 7 leaves the message in tenant 1's own box");
  t.same(s.rejected.map((f) => [f.table, f.id, f.status, f.column]), [
    ...[11, 12, 13, 14, 15, 16].map((id) => ['ivr_options', id, 'skipped', 'target_id']),
    ['ivr_options', 17, 'link_ignored', 'target_id'],
  ], 'each one reported');
  t.match(s.rejected.find((f) => f.id === 17), { tenantId: 1, reason: /target_id 8 is not an extension of tenant 1; the tenant's own box is used/ });
  t.match(s.rejected.find((f) => f.id === 11), { tenantId: 1, reason: /target_id 20 is not a destination group of tenant 1/ });
  t.match(s.rejected.find((f) => f.id === 12), { reason: /target_id 502 is not a prompt of tenant 1 or a system prompt/ });
  t.match(s.rejected.find((f) => f.id === 13), { reason: /target_id 3 is not an IVR menu of tenant 1/ });
  t.match(s.rejected.find((f) => f.id === 14), { reason: /target_id 8 is not an extension of tenant 1/ });
  t.match(s.rejected.find((f) => f.id === 16), { reason: /target_id null/ });

  // An option edited to a typo keeps its last good version.
  const edited = structuredClone(raw);
  edited.ivr_options![0] = { ...edited.ivr_options![0], target_id: 20, updated_at: '2026-11-21 08:05:00.000' };
  const next = buildSnapshot(edited, 2, WHEN, s.lastGood);
  t.equal(next.menus.get(1)!.options.get('1')?.targetId, 10, 'option 1 still hunts group 10');
  t.match(next.rejected.find((f) => f.table === 'ivr_options' && f.id === 1), { status: 'last_good', column: 'target_id' });
});

t.test('tenants.timezone: "CST" (China Standard Time to a DBA, US Central to ICU) is reported and read as the default zone', async (t) => {
  // `date` on a server in China prints CST, and MySQL's system_time_zone says CST: an easy copy.
  // ICU takes the old Java id CST as America/Chicago, 14 hours off: business hours would open at night.
  const raw = goodRaw();
  raw.tenants.push(tenantRow(3, { timezone: 'CST' }), tenantRow(4, { timezone: 'IST' }), tenantRow(5, { timezone: 'PRC' }), tenantRow(6, { timezone: 'UTC' }), tenantRow(7, { timezone: 'Asia/Chongqing' }));
  const s = buildSnapshot(raw, 1, WHEN);
  t.match(s.rejected, [
    { table: 'tenants', id: 3, status: 'link_ignored', column: 'timezone', value: '"CST"', reason: /timezone "CST" is an old abbreviation the runtime reads as America\/Chicago.*Asia\/Shanghai, the default, is used/ },
  ]);
  t.equal(s.rejected.length, 1, 'the other old ids (IST: Asia/Kolkata) are read as earlier releases read them');
  // Never skipped: a tenant that had CST before this check existed must not go out of service.
  t.same([3, 4].map((id) => s.tenants.get(id)?.timezone), ['Asia/Shanghai', 'IST'], 'in force, CST in the default zone');
  t.equal(tenantZone(' cst '), 'Asia/Shanghai');
  t.equal(tenantZone('CST'), 'Asia/Shanghai', 'and the live readers (caps, reports, guards) read it the same way');
  t.equal(tenantZone('Asia/Tokyo'), 'Asia/Tokyo');
  t.same([5, 6, 7].map((id) => s.tenants.get(id)?.timezone), ['PRC', 'UTC', 'Asia/Chongqing'], 'zones of the tz database stay accepted');

  // Edited into CST: the last good zone stays in force.
  const before = buildSnapshot(goodRaw(), 1, WHEN);
  const edited = goodRaw();
  edited.tenants[0] = { ...edited.tenants[0], timezone: 'cst', updated_at: '2026-11-21 08:05:00.000' };
  const after = buildSnapshot(edited, 2, WHEN, before.lastGood);
  t.equal(after.tenants.get(1)?.timezone, 'Asia/Shanghai');
  t.match(after.rejected, [{ table: 'tenants', id: 1, status: 'last_good', column: 'timezone' }]);
});

t.test('tenants.timezone: "Etc/GMT+8" (UTC-08:00 to the runtime, written for China\'s UTC+08:00) is reported; an edit into it keeps the last good zone', async (t) => {
  // POSIX inverts the Etc zones' signs: Etc/GMT+8 is eight hours WEST of Greenwich. A DBA who
  // wants "GMT+8" and picks it from the zone list gets hours 16 hours off: open at night.
  const raw = goodRaw();
  raw.tenants.push(tenantRow(3, { timezone: 'Etc/GMT+8' }), tenantRow(4, { timezone: ' etc/gmt+12 ' }), tenantRow(5, { timezone: 'Etc/GMT-8' }), tenantRow(6, { timezone: 'Etc/GMT+0' }));
  const s = buildSnapshot(raw, 1, WHEN);
  t.match(s.rejected, [
    { table: 'tenants', id: 3, status: 'doubtful', column: 'timezone', value: '"Etc/GMT+8"', reason: /is UTC-08:00: the Etc\/GMT zones' signs are inverted, so China's UTC\+08:00 is Etc\/GMT-8.*UTC-08:00 is used as written/ },
    { table: 'tenants', id: 4, status: 'doubtful', column: 'timezone', reason: /is UTC-12:00/ },
  ]);
  t.equal(s.rejected.length, 2, 'Etc/GMT-8 (China, spelt right) and Etc/GMT+0 are not reported');
  // Names the runtime does not know are not "used as written": the default zone, one finding.
  const unknown = goodRaw();
  unknown.tenants.push(tenantRow(5, { timezone: 'Etc/GMT+08' }), tenantRow(6, { timezone: 'Etc/GMT+13' }));
  const u = buildSnapshot(unknown, 1, WHEN);
  t.same([5, 6].map((id) => u.tenants.get(id)?.timezone), ['Asia/Shanghai', 'Asia/Shanghai'], 'an unknown Etc name: the default zone');
  t.same(u.rejected.map((f) => [f.id, f.status, f.column]), [[5, 'link_ignored', 'timezone'], [6, 'link_ignored', 'timezone']], 'one finding each, not a second "used as written"');
  // Without an earlier version it stays as written: a tenant that had it before this check keeps its hours.
  t.same([3, 5, 6].map((id) => s.tenants.get(id)?.timezone), ['Etc/GMT+8', 'Etc/GMT-8', 'Etc/GMT+0'], 'in force as written');
  t.match(summarizeFindings(s.rejected), /2 findings: 2 in force as written but doubtful/);
  t.match(formatFinding(s.rejected[0]), /tenants id=3 timezone="Etc\/GMT\+8": .* → in force; check it is what was meant/);

  // Edited from Asia/Shanghai into it: the last good zone stays in force, and the edit is reported.
  const before = buildSnapshot(goodRaw(), 1, WHEN);
  const edited = goodRaw();
  edited.tenants[0] = { ...edited.tenants[0], timezone: 'Etc/GMT+8', updated_at: '2026-11-21 08:05:00.000' };
  const after = buildSnapshot(edited, 2, WHEN, before.lastGood);
  t.equal(after.tenants.get(1)?.timezone, before.tenants.get(1)?.timezone);
  t.match(after.rejected, [{ table: 'tenants', id: 1, status: 'last_good', column: 'timezone', reason: /is UTC-08:00/ }]);
  // And the next reload, with nothing edited, still keeps it (the last good version is kept as such).
  const again = buildSnapshot(edited, 3, WHEN, after.lastGood);
  t.equal(again.tenants.get(1)?.timezone, before.tenants.get(1)?.timezone, 'still the last good zone a reload later');
});

t.test('tenants.pin written as a number (pin = 0042 stores 42): an edit into a PIN under 4 digits keeps the last good PIN; a new one stands, reported', async (t) => {
  const base = goodRaw();
  base.tenants[0] = { ...base.tenants[0], pin: '0042' };
  const before = buildSnapshot(base, 1, WHEN);
  t.equal(before.tenants.get(1)?.pin, '0042');
  t.same(before.rejected, [], 'a 4-digit PIN with leading zeros is fine');
  const edited = goodRaw();
  edited.tenants[0] = { ...edited.tenants[0], pin: '42', updated_at: '2026-11-21 08:05:00.000' };
  const after = buildSnapshot(edited, 2, WHEN, before.lastGood);
  t.equal(after.tenants.get(1)?.pin, '0042', 'callers keying 0042 still get in');
  t.match(after.rejected, [{ table: 'tenants', id: 1, status: 'last_good', column: 'pin', value: '(hidden)', reason: /pin has 2 digits: .* loses its leading zeros/ }]);
  t.notMatch(JSON.stringify(after.rejected), /"42"|0042/, 'the PIN itself is never shown');

  const fresh = goodRaw();
  fresh.tenants.push(tenantRow(3, { pin: '7' }), tenantRow(4, { pin: '1234' }));
  const s = buildSnapshot(fresh, 1, WHEN);
  t.match(s.rejected, [{ table: 'tenants', id: 3, status: 'doubtful', column: 'pin', value: '(hidden)', reason: /pin has 1 digit: / }]);
  t.equal(s.rejected.length, 1);
  t.same([3, 4].map((id) => s.tenants.get(id)?.pin), ['7', '1234'], 'in force as written');
});

t.test("tenants.blocked_prompt_id and business_hours_schedule_id must stay inside the tenant, like its other links", async (t) => {
  const raw = goodRaw();
  raw.schedules = [{ id: 40, tenant_id: 1, name: 'Acme hours' }, { id: 41, tenant_id: 2, name: 'Beta hours' }];
  raw.schedule_slots = [{ id: 1, schedule_id: 40, weekdays: '1-5', start_time: '09:00', end_time: '18:00' }, { id: 2, schedule_id: 41, weekdays: '1-5', start_time: '09:00', end_time: '18:00' }];
  raw.tenants.push(
    tenantRow(3, { blocked_prompt_id: 502 }), // tenant 2's prompt: blocked callers would hear Beta's announcement
    tenantRow(4, { business_hours_schedule_id: 41 }), // tenant 2's schedule
    tenantRow(5, { business_hours_schedule_id: 999, blocked_prompt_id: 9999 }), // deleted ones
    tenantRow(6, { business_hours_schedule_id: 40, blocked_prompt_id: 501 }), // another tenant's schedule, a system prompt
  );
  raw.tenants[0] = { ...raw.tenants[0], business_hours_schedule_id: 40, blocked_prompt_id: 500 };
  const s = buildSnapshot(raw, 1, WHEN);
  t.same(s.rejected.map((f) => [f.id, f.status, f.column]), [
    [3, 'link_ignored', 'blocked_prompt_id'],
    [4, 'link_ignored', 'business_hours_schedule_id'],
    [5, 'link_ignored', 'blocked_prompt_id'],
    [5, 'link_ignored', 'business_hours_schedule_id'],
    [6, 'link_ignored', 'business_hours_schedule_id'],
  ].sort((a, b) => (a[0] as number) - (b[0] as number)), 'each broken link reported');
  t.match(s.rejected.find((f) => f.id === 4), { reason: /business_hours_schedule_id 41 is not a schedule of this tenant; the link is ignored/ });
  t.same([3, 4, 5, 6].map((id) => [s.tenants.get(id)?.blockedPromptId, s.tenants.get(id)?.businessHoursScheduleId]), [[null, null], [null, null], [null, null], [501, null]], 'the tenants stay in force without those links');
  t.same([s.tenants.get(1)?.blockedPromptId, s.tenants.get(1)?.businessHoursScheduleId], [500, 40], "a tenant's own prompt and schedule are kept");

  // Edited to another tenant's schedule: the last good version stays.
  const edited = structuredClone(raw);
  edited.tenants[0] = { ...edited.tenants[0], business_hours_schedule_id: 41, updated_at: '2026-11-21 08:05:00.000' };
  const next = buildSnapshot(edited, 2, WHEN, s.lastGood);
  t.equal(next.tenants.get(1)?.businessHoursScheduleId, 40);
  t.match(next.rejected.find((f) => f.id === 1), { table: 'tenants', status: 'last_good', column: 'business_hours_schedule_id' });
});

t.test('tenants.missed_call_notify that is neither a phone nor an e-mail address is reported, not silently unused', async (t) => {
  const raw = goodRaw();
  raw.tenants.push(
    tenantRow(3, { missed_call_notify: 'boss@acme' }), // no top-level domain: the queue sends nothing
    tenantRow(4, { missed_call_notify: '139-1234-5678' }), // as DBAs type phones: usable
    tenantRow(5, { missed_call_notify: 'boss@acme.com.cn' }),
  );
  const s = buildSnapshot(raw, 1, WHEN);
  t.match(s.rejected, [{ table: 'tenants', id: 3, status: 'link_ignored', column: 'missed_call_notify', value: '"boss@acme"', reason: /neither a phone number nor an e-mail address/ }]);
  t.equal(s.rejected.length, 1, 'the usable ones are not reported');
  t.same([3, 4, 5].map((id) => s.tenants.get(id)?.missedCallNotify), [null, '139-1234-5678', 'boss@acme.com.cn'], 'tenant 3 stays in force, without notices');
  // Edited from a good address into a typo: the good one stays in force.
  const edited = structuredClone(raw);
  edited.tenants[4] = { ...edited.tenants[4], missed_call_notify: 'boss@acme,com.cn', updated_at: '2026-11-21 08:05:00.000' };
  const next = buildSnapshot(edited, 2, WHEN, s.lastGood);
  t.equal(next.tenants.get(5)?.missedCallNotify, 'boss@acme.com.cn');
  t.match(next.rejected.find((f) => f.id === 5), { status: 'last_good', column: 'missed_call_notify' });
});

t.test("a voicemail rule's target_id that is not an extension of the rule's tenant is reported, and the tenant's own box used", async (t) => {
  const raw = goodRaw();
  raw.extensions = [{ id: 7, tenant_id: 1, ext: '801' }, { id: 8, tenant_id: 2, ext: '801' }];
  raw.routing_rules.push(
    ruleRow(1001, 1, { priority: 20, action: 'voicemail', target_id: 7 }), // its own extension's box
    ruleRow(1002, 1, { priority: 30, action: 'voicemail', target_id: null }), // the tenant's box
    ruleRow(1003, 1, { priority: 40, action: 'voicemail', target_id: 8 }), // tenant 2's extension: messages in Beta's box
    ruleRow(1004, 1, { priority: 50, action: 'voicemail', target_id: 10 }), // a leftover group id
  );
  const s = buildSnapshot(raw, 1, WHEN);
  t.same(s.rejected.map((f) => [f.table, f.id, f.status, f.column]), [['routing_rules', 1003, 'link_ignored', 'target_id'], ['routing_rules', 1004, 'link_ignored', 'target_id']]);
  t.match(s.rejected[0], { reason: /target_id 8 is not an extension of tenant 1; the tenant's own box is used/ });
  // Never out of service for it (it may have stood before this check existed): the tenant's own box.
  t.same((s.rulesByTenant.get(1) ?? []).map((r) => [r.id, r.targetId]).sort((a, b) => Number(a[0]) - Number(b[0])), [[1000, 10], [1001, 7], [1002, null], [1003, null], [1004, null]]);
  t.match(s.rejected, [{ id: 1003, tenantId: 1, editedAt: null }, { id: 1004, tenantId: 1 }], 'reported with their tenant (route explain lists them)');
  // Edited from its own extension to a typo: the last good version, as for any other edit.
  const edited = structuredClone(raw);
  const at = edited.routing_rules.findIndex((r) => r.id === 1001);
  edited.routing_rules[at] = { ...edited.routing_rules[at], target_id: 70, updated_at: '2026-11-21 08:05:00.000' };
  const next = buildSnapshot(edited, 2, WHEN, s.lastGood);
  t.equal(next.rulesByTenant.get(1)?.find((r) => r.id === 1001)?.targetId, 7, "messages still reach extension 801's box");
  t.match(next.rejected.find((f) => f.id === 1001), { status: 'last_good', column: 'target_id', tenantId: 1 });
});

t.test("an empty string in an optional number column means NULL, as it does in a text column", async (t) => {
  // SQLite keeps '' in an INTEGER column: what a SQLite editor writes when a DBA clears a cell.
  const raw = goodRaw();
  raw.tenants.push(tenantRow(3, { operator_group_id: '', welcome_prompt_id: ' ', ring_timeout_s: '', max_calls_day: '', pin: '', balance: '', max_spend_day: ' ', record_calls: '', voicemail_enabled: '' }));
  raw.access_numbers.push({ id: 3, number: '4003000003', tenant_id: 3, kind: 'hotline', enabled: 1 });
  raw.routing_rules.push({ id: 3000, tenant_id: 3, access_number_id: '', priority: '', regions: '', schedule_id: '', percent: '', action: 'voicemail', target_id: '', enabled: 1 });
  const s = buildSnapshot(raw, 1, WHEN);
  // A cleared balance is NULL (postpaid) too, but said: a prepaid tenant must not lose its limit without a word.
  t.same(s.rejected.map((f) => [f.table, f.id, f.status, f.column]), [['tenants', 3, 'link_ignored', 'balance']], 'nothing rejected; the cleared balance reported');
  t.match(s.tenants.get(3), { operatorGroupId: null, welcomePromptId: null, ringTimeoutS: 15, maxCallsDay: null, pin: null, balance: null, maxSpendDay: null, recordCalls: false, voicemailEnabled: false });
  t.equal(s.accessNumbers.get('4003000003')?.tenantId, 3, "the tenant's number is in service");
  t.match(s.rulesByTenant.get(3), [{ id: 3000, accessNumberId: null, priority: 100, scheduleId: null, percent: 100, targetId: null }]);
  // A cleared enabled (on by default) does not switch on a row a DBA had disabled: refused, the last good version stays.
  const disabled = goodRaw();
  disabled.routing_rules.push(ruleRow(1005, 1, { priority: 1, action: 'reject', enabled: 0 }));
  const before = buildSnapshot(disabled, 1, WHEN);
  t.notOk(before.rulesByTenant.get(1)?.some((r) => r.id === 1005), 'the disabled reject rule is not in force');
  const cleared = structuredClone(disabled);
  cleared.routing_rules[cleared.routing_rules.length - 1] = { ...cleared.routing_rules[cleared.routing_rules.length - 1], enabled: '', updated_at: '2026-11-21 08:05:00.000' };
  const after = buildSnapshot(cleared, 2, WHEN, before.lastGood);
  t.notOk(after.rulesByTenant.get(1)?.some((r) => r.id === 1005), 'still not in force: it would refuse every call of the number');
  t.match(after.rejected, [{ table: 'routing_rules', id: 1005, status: 'last_good', column: 'enabled' }]);
  // A cleared tenant_id where NULL means every tenant (a holiday, a rate, a prompt) is an error, not everyone's row.
  const holiday = buildSnapshot({ ...goodRaw(), holidays: [{ id: 1, tenant_id: '', day: '2026-11-21' }] }, 1, WHEN);
  t.match(holiday.rejected, [{ table: 'holidays', id: 1, column: 'tenant_id' }]);
  t.same([...holiday.commonHolidays], [], 'not a holiday for every tenant');
  // A required column stays required.
  const bad = buildSnapshot({ ...goodRaw(), routing_rules: [{ id: 3001, tenant_id: '', action: 'reject' }] }, 1, WHEN);
  t.match(bad.rejected, [{ table: 'routing_rules', id: 3001, column: 'tenant_id', reason: /tenant_id must be a whole number/ }]);
});

t.test('schedule_slots and holidays: a value of another type is read or refused, never taken as NULL; an impossible day is refused', async (t) => {
  const base = (): ReturnType<typeof goodRaw> => {
    const raw = goodRaw();
    raw.schedules = [{ id: 40, tenant_id: 1, name: 'Acme hours' }];
    raw.schedule_slots = [{ id: 1, schedule_id: 40, weekdays: '1-5', start_time: '09:00', end_time: '18:00', date_from: '2026-12-01', date_to: '2026-12-31' }];
    raw.holidays = [{ id: 1, tenant_id: null, day: '2026-10-01' }];
    return raw;
  };
  const before = buildSnapshot(base(), 1, WHEN);
  t.same(before.rejected, []);
  const slot = (s: ReturnType<typeof buildSnapshot>): unknown => s.schedules.get(40)?.slots[0];
  const edit = (table: 'schedule_slots' | 'holidays', set: Record<string, unknown>): ReturnType<typeof buildSnapshot> => {
    const raw = base();
    const rows = raw[table]!;
    rows[0] = { ...rows[0], ...set, updated_at: '2026-11-21 08:05:00.000' };
    return buildSnapshot(raw, 2, WHEN, before.lastGood);
  };

  // A DATE column (a DBA's ALTER): the driver's Date at midnight UTC is that day.
  const dates = edit('schedule_slots', { date_from: new Date('2026-12-01T00:00:00.000Z'), date_to: new Date('2026-12-31T00:00:00.000Z') });
  t.same(dates.rejected, [], 'DATE values are days');
  t.same(slot(dates), slot(before), 'the same slot, its date range kept');
  // A Date with a time of day, and a BLOB: refused, the last good version stays (not "no date range", not "every day").
  const timed = edit('schedule_slots', { date_from: new Date('2026-12-01T08:00:00.000Z') });
  t.match(timed.rejected, [{ table: 'schedule_slots', id: 1, status: 'last_good', column: 'date_from', reason: /must be a day YYYY-MM-DD without a time of day, got 2026-12-01T08:00:00\.000Z/ }]);
  t.same(slot(timed), slot(before));
  const blob = edit('schedule_slots', { weekdays: Buffer.from('1-5') });
  t.match(blob.rejected, [{ table: 'schedule_slots', id: 1, status: 'last_good', column: 'weekdays', reason: /weekdays must be text/ }]);
  t.same(slot(blob), slot(before), 'not read as NULL (every day)');
  // A syntax error shows the value typed, not NULL.
  const comma = edit('schedule_slots', { weekdays: '1-5,' });
  t.match(comma.rejected, [{ table: 'schedule_slots', id: 1, status: 'last_good', column: 'weekdays', value: '"1-5,"' }]);
  const time = edit('schedule_slots', { start_time: '09.00' });
  t.match(time.rejected, [{ column: 'start_time', value: '"09.00"' }]);

  // holidays.day: a day that does not exist is refused and the last good day stays.
  for (const day of ['2026-13-45', '2026-02-30']) {
    const s = edit('holidays', { day });
    t.match(s.rejected, [{ table: 'holidays', id: 1, status: 'last_good', column: 'day', value: JSON.stringify(day), reason: /must be a day YYYY-MM-DD that exists/ }], `${day} refused`);
    t.ok(s.commonHolidays.has('2026-10-01'), `${day}: the holiday it replaced stays`);
    t.notOk(s.commonHolidays.has(day));
  }
  const asDate = edit('holidays', { day: new Date('2026-10-02T00:00:00.000Z') });
  t.same(asDate.rejected, []);
  t.ok(asDate.commonHolidays.has('2026-10-02'), 'a DATE column\'s value is the day');
  t.ok(edit('holidays', { day: ' 2026-10-03 ' }).commonHolidays.has('2026-10-03'), 'spaces around are read');
});
