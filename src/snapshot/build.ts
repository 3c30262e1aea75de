/**
 * Turns the raw rows of the configuration tables into a validated ConfigSnapshot. Pure: the
 * same rows always give the same snapshot, and nothing here touches the database.
 *
 * A bad row is skipped and reported (RejectedRow), never fatal. References are checked too: a
 * routing rule pointing at a group of another tenant, or at a missing one, is rejected; a group
 * whose failover link dangles keeps working without the link (and the link is reported).
 */
import { parseScheduleSlot, ScheduleSyntaxError, type ScheduleSlot } from '../domain/schedule';
import { parseRegionTokens } from '../domain/geo';
import { isValidTimeZone } from '../domain/timezone';
import { RowError, RowReader, type Row } from './rows';
import { buildWidgets } from './widgets';
import {
  CALL_TYPES, FILTER_KINDS, FILTER_LISTS, IVR_ACTIONS, NUMBER_KINDS, RULE_ACTIONS, STRATEGIES, TENANT_STATUSES,
  type AccessNumber, type ConfigSnapshot, type Destination, type DestinationGroup, type Extension,
  type IvrMenu, type IvrOption, type Prompt, type Rate, type RejectedRow, type RoutingRule, type Tenant,
  type TenantFilters, type TenantSchedule,
} from './types';

export interface RawTables {
  tenants: Row[];
  access_numbers: Row[];
  destination_groups: Row[];
  destinations: Row[];
  routing_rules: Row[];
  prompts: Row[];
  schedules?: Row[];
  schedule_slots?: Row[];
  holidays?: Row[];
  call_filters?: Row[];
  rates?: Row[];
  ivr_menus?: Row[];
  ivr_options?: Row[];
  extensions?: Row[];
  extension_phones?: Row[];
  click_to_call_widgets?: Row[];
}

export const SNAPSHOT_TABLES: ReadonlyArray<keyof RawTables> = [
  'tenants', 'access_numbers', 'destination_groups', 'destinations', 'routing_rules', 'prompts',
  'schedules', 'schedule_slots', 'holidays', 'call_filters', 'rates', 'ivr_menus', 'ivr_options',
  'extensions', 'extension_phones', 'click_to_call_widgets',
];

const PHONE = /^\+?[0-9*#]{1,32}$/;
const DIGITS = /^[0-9]{3,32}$/;

export function buildSnapshot(raw: RawTables, version: number, loadedAt: Date): ConfigSnapshot {
  const rejected: RejectedRow[] = [];
  const each = <T>(table: string, rows: Row[], read: (r: RowReader, row: Row) => T | null): T[] => {
    const out: T[] = [];
    for (const row of rows) {
      const r = new RowReader(row);
      try {
        const value = read(r, row);
        if (value !== null) out.push(value);
      } catch (err) {
        if (!(err instanceof RowError)) throw err;
        rejected.push({ table, id: rowId(row), reason: err.message });
      }
    }
    return out;
  };

  const tenants = new Map<number, Tenant>();
  for (const t of each('tenants', raw.tenants, readTenant)) tenants.set(t.id, t);

  const prompts = new Map<number, Prompt>();
  for (const p of each('prompts', raw.prompts, readPrompt)) {
    if (p.tenantId !== null && !tenants.has(p.tenantId)) rejected.push({ table: 'prompts', id: p.id, reason: `tenant_id ${p.tenantId} does not exist` });
    else prompts.set(p.id, p);
  }

  const accessNumbers = new Map<string, AccessNumber>();
  for (const a of each('access_numbers', raw.access_numbers, readAccessNumber)) {
    if (!tenants.has(a.tenantId)) rejected.push({ table: 'access_numbers', id: a.id, reason: `tenant_id ${a.tenantId} does not exist` });
    else if (accessNumbers.has(a.number)) rejected.push({ table: 'access_numbers', id: a.id, reason: `number ${a.number} is listed twice` });
    else accessNumbers.set(a.number, a);
  }

  const destinationsByGroup = new Map<number, Destination[]>();
  for (const d of each('destinations', raw.destinations, readDestination)) {
    const list = destinationsByGroup.get(d.groupId) ?? [];
    list.push(d);
    destinationsByGroup.set(d.groupId, list);
  }
  const groupRows = each('destination_groups', raw.destination_groups, readGroup);
  const groupIds = new Set(groupRows.map((g) => g.id));
  for (const [groupId, list] of destinationsByGroup) {
    if (!groupIds.has(groupId)) for (const d of list) rejected.push({ table: 'destinations', id: d.id, reason: `group_id ${groupId} does not exist` });
  }
  const groups = new Map<number, DestinationGroup>();
  const groupTenant = new Map(groupRows.map((g) => [g.id, g.tenantId]));
  for (const g of groupRows) {
    if (!tenants.has(g.tenantId)) {
      rejected.push({ table: 'destination_groups', id: g.id, reason: `tenant_id ${g.tenantId} does not exist` });
      continue;
    }
    let failoverGroupId = g.failoverGroupId;
    if (failoverGroupId !== null && groupTenant.get(failoverGroupId) !== g.tenantId) {
      rejected.push({ table: 'destination_groups', id: g.id, reason: `failover_group_id ${failoverGroupId} is not a group of the same tenant; the link is ignored` });
      failoverGroupId = null;
    }
    const destinations = (destinationsByGroup.get(g.id) ?? []).sort((a, b) => a.position - b.position || a.id - b.id);
    groups.set(g.id, { ...g, failoverGroupId, destinations });
  }

  // A tenant's own links must stay inside the tenant: another company's operator group or
  // prompt is dropped (reported), the tenant keeps working without it.
  for (const [id, tenant] of tenants) {
    const fixed: Record<string, number | null> = {};
    const check = (column: string, value: number | null, ok: boolean, what: string): void => {
      if (value === null || ok) return;
      fixed[column] = null;
      rejected.push({ table: 'tenants', id, reason: `${column} ${value} is not ${what} of this tenant; the link is ignored` });
    };
    check('operator_group_id', tenant.operatorGroupId, groups.get(tenant.operatorGroupId ?? -1)?.tenantId === id, 'a destination group');
    for (const [column, value] of [
      ['welcome_prompt_id', tenant.welcomePromptId],
      ['after_hours_prompt_id', tenant.afterHoursPromptId],
      ['ringback_prompt_id', tenant.ringbackPromptId],
    ] as const) {
      const prompt = prompts.get(value ?? -1);
      check(column, value, prompt !== undefined && (prompt.tenantId === null || prompt.tenantId === id), 'a system prompt or a prompt');
    }
    if (Object.keys(fixed).length > 0) {
      tenants.set(id, {
        ...tenant,
        operatorGroupId: 'operator_group_id' in fixed ? null : tenant.operatorGroupId,
        welcomePromptId: 'welcome_prompt_id' in fixed ? null : tenant.welcomePromptId,
        afterHoursPromptId: 'after_hours_prompt_id' in fixed ? null : tenant.afterHoursPromptId,
        ringbackPromptId: 'ringback_prompt_id' in fixed ? null : tenant.ringbackPromptId,
      });
    }
  }

  const schedules = buildSchedules(raw, tenants, each, rejected);
  const { holidaysByTenant, commonHolidays } = buildHolidays(raw, tenants, each, rejected);
  const filtersByTenant = buildFilters(raw, tenants, each, rejected);
  const rates = buildRates(raw, tenants, each, rejected);
  const menus = buildMenus(raw, tenants, prompts, each, rejected);
  const extensionsByTenant = buildExtensions(raw, tenants, each, rejected);
  const widgets = buildWidgets(raw.click_to_call_widgets ?? [], { tenants, accessNumbers, prompts }, each, rejected);

  const rulesByTenant = new Map<number, RoutingRule[]>();
  const accessNumberTenant = new Map([...accessNumbers.values()].map((a) => [a.id, a.tenantId]));
  for (const rule of each('routing_rules', raw.routing_rules, readRule)) {
    const problem = ruleProblem(rule, { tenants, groups, prompts, accessNumberTenant, schedules, menus });
    if (problem) {
      rejected.push({ table: 'routing_rules', id: rule.id, reason: problem });
      continue;
    }
    const list = rulesByTenant.get(rule.tenantId) ?? [];
    list.push(rule);
    rulesByTenant.set(rule.tenantId, list);
  }
  for (const list of rulesByTenant.values()) list.sort((a, b) => a.priority - b.priority || a.id - b.id);

  return {
    version, loadedAt, tenants, accessNumbers, groups, rulesByTenant, prompts, schedules, holidaysByTenant,
    commonHolidays, filtersByTenant, rates, menus, extensionsByTenant, widgets, rejected,
  };
}

type Each = <T>(table: string, rows: Row[], read: (r: RowReader, row: Row) => T | null) => T[];

function buildSchedules(raw: RawTables, tenants: ReadonlyMap<number, Tenant>, each: Each, rejected: RejectedRow[]): Map<number, TenantSchedule> {
  const slots = new Map<number, ScheduleSlot[]>();
  for (const { scheduleId, slot } of each('schedule_slots', raw.schedule_slots ?? [], (r, row) => {
    const scheduleId = r.int('schedule_id', { min: 1 });
    try {
      // Text columns as text, a missing column as NULL: the slot parser trusts its input's types.
      const text = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);
      const slotRow = {
        weekdays: text(row.weekdays),
        start_time: text(row.start_time) ?? '',
        end_time: text(row.end_time) ?? '',
        date_from: text(row.date_from),
        date_to: text(row.date_to),
      };
      return { scheduleId, slot: parseScheduleSlot(slotRow) };
    } catch (err) {
      if (err instanceof ScheduleSyntaxError) throw new RowError(err.message);
      throw err;
    }
  })) {
    slots.set(scheduleId, [...(slots.get(scheduleId) ?? []), slot]);
  }
  const schedules = new Map<number, TenantSchedule>();
  for (const s of each('schedules', raw.schedules ?? [], (r) => ({
    id: r.id,
    tenantId: r.int('tenant_id', { min: 1 }),
    name: r.text('name', { max: 255 }),
    excludeHolidays: r.flag('exclude_holidays', false),
  }))) {
    if (!tenants.has(s.tenantId)) rejected.push({ table: 'schedules', id: s.id, reason: `tenant_id ${s.tenantId} does not exist` });
    else schedules.set(s.id, { ...s, slots: slots.get(s.id) ?? [] });
  }
  for (const [scheduleId] of slots) {
    if (!schedules.has(scheduleId)) rejected.push({ table: 'schedule_slots', id: null, reason: `schedule_id ${scheduleId} does not exist` });
  }
  return schedules;
}

function buildHolidays(raw: RawTables, tenants: ReadonlyMap<number, Tenant>, each: Each, rejected: RejectedRow[]) {
  const common = new Set<string>();
  const own = new Map<number, Set<string>>();
  for (const h of each('holidays', raw.holidays ?? [], (r) => ({
    id: r.id,
    tenantId: r.intOrNull('tenant_id', { min: 1 }),
    day: r.text('day', { pattern: /^\d{4}-\d{2}-\d{2}$/, what: 'a day YYYY-MM-DD' }),
  }))) {
    if (h.tenantId === null) common.add(h.day);
    else if (!tenants.has(h.tenantId)) rejected.push({ table: 'holidays', id: h.id, reason: `tenant_id ${h.tenantId} does not exist` });
    else own.set(h.tenantId, (own.get(h.tenantId) ?? new Set()).add(h.day));
  }
  const holidaysByTenant = new Map<number, ReadonlySet<string>>();
  for (const [tenantId, days] of own) holidaysByTenant.set(tenantId, new Set([...common, ...days]));
  return { holidaysByTenant, commonHolidays: common as ReadonlySet<string> };
}

function buildFilters(raw: RawTables, tenants: ReadonlyMap<number, Tenant>, each: Each, rejected: RejectedRow[]): Map<number, TenantFilters> {
  type Mutable = { numbers: Set<string>; prefixes: string[]; regions: string[] };
  const lists = new Map<number, { block: Mutable; allow: Mutable }>();
  for (const f of each('call_filters', raw.call_filters ?? [], (r) => {
    const kind = r.oneOf('kind', FILTER_KINDS);
    const value = kind === 'region'
      ? r.text('value', { max: 64 })
      : r.text('value', { pattern: /^\+?[0-9]{1,32}$/, what: 'digits (an optional leading +)' });
    if (kind === 'region') {
      const { invalid } = parseRegionTokens(value);
      if (invalid.length > 0) throw new RowError(`value ${JSON.stringify(value)} is not a region token (province, city, area code or CN-xx)`);
    }
    return { id: r.id, tenantId: r.int('tenant_id', { min: 1 }), list: r.oneOf('list', FILTER_LISTS), kind, value };
  })) {
    if (!tenants.has(f.tenantId)) {
      rejected.push({ table: 'call_filters', id: f.id, reason: `tenant_id ${f.tenantId} does not exist` });
      continue;
    }
    const entry = lists.get(f.tenantId) ?? { block: empty(), allow: empty() };
    const list = entry[f.list];
    // Numbers are compared in one spelling: digits only, without a + (a caller's 86/0 prefix
    // variants are handled by the screening function).
    const digits = f.value.replace(/^\+/, '');
    if (f.kind === 'number') list.numbers.add(digits);
    else if (f.kind === 'prefix') list.prefixes.push(digits);
    else list.regions.push(f.value);
    lists.set(f.tenantId, entry);
  }
  return lists;

  function empty(): Mutable {
    return { numbers: new Set(), prefixes: [], regions: [] };
  }
}

export const NO_FILTERS: TenantFilters = {
  block: { numbers: new Set(), prefixes: [], regions: [] },
  allow: { numbers: new Set(), prefixes: [], regions: [] },
};

function buildRates(raw: RawTables, tenants: ReadonlyMap<number, Tenant>, each: Each, rejected: RejectedRow[]): Rate[] {
  const out: Rate[] = [];
  const seen = new Set<string>();
  for (const rate of each('rates', raw.rates ?? [], (r) => {
    const perMinute = r.moneyOrNull('per_minute');
    if (perMinute === null || perMinute < 0) throw new RowError('per_minute must be an amount of at least 0');
    const connectFee = r.moneyOrNull('connect_fee') ?? (0 as typeof perMinute);
    if (connectFee < 0) throw new RowError('connect_fee must not be negative');
    const incrementS = r.intOrNull('increment_s', { min: 1, max: 60 }) ?? 60;
    if (60 % incrementS !== 0) throw new RowError(`increment_s ${incrementS} must divide a minute (60, 30, 6, 1 …)`);
    return { id: r.id, tenantId: r.intOrNull('tenant_id', { min: 1 }), callType: r.oneOf('call_type', CALL_TYPES), perMinute, incrementS, connectFee };
  })) {
    const key = `${rate.tenantId ?? 'default'}/${rate.callType}`;
    if (rate.tenantId !== null && !tenants.has(rate.tenantId)) rejected.push({ table: 'rates', id: rate.id, reason: `tenant_id ${rate.tenantId} does not exist` });
    else if (seen.has(key)) rejected.push({ table: 'rates', id: rate.id, reason: `a second ${rate.callType} rate for ${rate.tenantId === null ? 'the default' : `tenant ${rate.tenantId}`}; the first (lowest id) is used` });
    else {
      seen.add(key);
      out.push(rate);
    }
  }
  return out;
}

function buildMenus(raw: RawTables, tenants: ReadonlyMap<number, Tenant>, prompts: ReadonlyMap<number, Prompt>, each: Each, rejected: RejectedRow[]): Map<number, IvrMenu> {
  const options = new Map<number, Map<string, IvrOption>>();
  for (const o of each('ivr_options', raw.ivr_options ?? [], (r) => ({
    id: r.id,
    menuId: r.int('menu_id', { min: 1 }),
    digits: r.text('digits', { pattern: /^[0-9*#]{1,16}$/, what: 'keypad digits' }),
    action: r.oneOf('action', IVR_ACTIONS),
    targetId: r.intOrNull('target_id', { min: 1 }),
  }))) {
    const byDigits = options.get(o.menuId) ?? new Map<string, IvrOption>();
    if (byDigits.has(o.digits)) rejected.push({ table: 'ivr_options', id: o.id, reason: `digits ${o.digits} already used in menu ${o.menuId}` });
    else byDigits.set(o.digits, o);
    options.set(o.menuId, byDigits);
  }
  const menus = new Map<number, IvrMenu>();
  for (const m of each('ivr_menus', raw.ivr_menus ?? [], (r) => ({
    id: r.id,
    tenantId: r.int('tenant_id', { min: 1 }),
    name: r.text('name', { max: 255 }),
    promptId: r.intOrNull('prompt_id', { min: 1 }),
    digits: r.intOrNull('digits', { min: 1, max: 16 }) ?? 1,
    timeoutS: r.intOrNull('timeout_s', { min: 1, max: 60 }) ?? 5,
    maxRetries: r.intOrNull('max_retries', { min: 0, max: 10 }) ?? 3,
    invalidPromptId: r.intOrNull('invalid_prompt_id', { min: 1 }),
  }))) {
    if (!tenants.has(m.tenantId)) {
      rejected.push({ table: 'ivr_menus', id: m.id, reason: `tenant_id ${m.tenantId} does not exist` });
      continue;
    }
    const promptOk = (id: number | null): boolean => id === null || (prompts.has(id) && [null, m.tenantId].includes(prompts.get(id)!.tenantId));
    if (!promptOk(m.promptId) || !promptOk(m.invalidPromptId)) {
      rejected.push({ table: 'ivr_menus', id: m.id, reason: 'prompt_id or invalid_prompt_id is not a prompt of this tenant or a system prompt' });
      continue;
    }
    menus.set(m.id, { ...m, options: options.get(m.id) ?? new Map() });
  }
  for (const [menuId, byDigits] of options) {
    if (!menus.has(menuId)) for (const o of byDigits.values()) rejected.push({ table: 'ivr_options', id: o.id, reason: `menu_id ${menuId} does not exist` });
  }
  return menus;
}

function buildExtensions(raw: RawTables, tenants: ReadonlyMap<number, Tenant>, each: Each, rejected: RejectedRow[]): Map<number, Map<string, Extension>> {
  const phones = new Map<number, Array<{ position: number; id: number; number: string }>>();
  for (const p of each('extension_phones', raw.extension_phones ?? [], (r) => ({
    id: r.id,
    extensionId: r.int('extension_id', { min: 1 }),
    number: r.text('number', { pattern: /^\+?[0-9*#]{1,32}$/, what: 'a dialable number' }),
    position: r.intOrNull('position') ?? 0,
  }))) {
    phones.set(p.extensionId, [...(phones.get(p.extensionId) ?? []), p]);
  }
  const out = new Map<number, Map<string, Extension>>();
  for (const e of each('extensions', raw.extensions ?? [], (r) => ({
    id: r.id,
    tenantId: r.int('tenant_id', { min: 1 }),
    ext: r.text('ext', { pattern: /^[0-9]{1,16}$/, what: 'an extension of digits' }),
    name: r.textOrNull('name', { max: 255 }),
    department: r.textOrNull('department', { max: 255 }),
    voicemailEnabled: r.flag('voicemail_enabled', true),
  }))) {
    if (!tenants.has(e.tenantId)) {
      rejected.push({ table: 'extensions', id: e.id, reason: `tenant_id ${e.tenantId} does not exist` });
      continue;
    }
    const byExt = out.get(e.tenantId) ?? new Map<string, Extension>();
    if (byExt.has(e.ext)) {
      rejected.push({ table: 'extensions', id: e.id, reason: `extension ${e.ext} already exists for tenant ${e.tenantId}` });
      continue;
    }
    const list = (phones.get(e.id) ?? []).sort((a, b) => a.position - b.position || a.id - b.id).map((p) => p.number);
    byExt.set(e.ext, { ...e, phones: list });
    out.set(e.tenantId, byExt);
  }
  return out;
}

function rowId(row: Row): number | string | null {
  const id = row.id;
  return typeof id === 'number' || typeof id === 'string' ? id : null;
}

function readTenant(r: RowReader): Tenant {
  const timezone = r.textOrNull('timezone') ?? 'Asia/Shanghai';
  if (!isValidTimeZone(timezone)) throw new RowError(`timezone ${JSON.stringify(timezone)} is not an IANA time zone`);
  return {
    id: r.id,
    name: r.text('name', { max: 200 }),
    status: r.oneOf('status', TENANT_STATUSES),
    timezone,
    balance: r.moneyOrNull('balance'),
    pin: r.textOrNull('pin', { pattern: /^[0-9]{1,16}$/, what: 'a PIN of 1 to 16 digits' }),
    pinMaxAttempts: r.intOrNull('pin_max_attempts', { min: 1, max: 10 }) ?? 3,
    ringTimeoutS: r.intOrNull('ring_timeout_s', { min: 1, max: 60 }) ?? 15,
    recordCalls: r.flag('record_calls', false),
    voicemailEnabled: r.flag('voicemail_enabled', false),
    callerMemoryHours: r.intOrNull('caller_memory_hours', { min: 0, max: 24 * 365 }) ?? 24,
    missedCallNotify: r.textOrNull('missed_call_notify', { max: 200 }),
    maxCallsDay: r.intOrNull('max_calls_day', { min: 0 }),
    maxCallsMonth: r.intOrNull('max_calls_month', { min: 0 }),
    maxSpendDay: r.moneyOrNull('max_spend_day'),
    maxSpendMonth: r.moneyOrNull('max_spend_month'),
    welcomePromptId: r.intOrNull('welcome_prompt_id', { min: 1 }),
    afterHoursPromptId: r.intOrNull('after_hours_prompt_id', { min: 1 }),
    ringbackPromptId: r.intOrNull('ringback_prompt_id', { min: 1 }),
    businessHoursScheduleId: r.intOrNull('business_hours_schedule_id', { min: 1 }),
    operatorGroupId: r.intOrNull('operator_group_id', { min: 1 }),
    anonymousCallers: r.isNullOrMissing('anonymous_callers') ? 'allow' : r.oneOf('anonymous_callers', ['allow', 'block'] as const),
    blockedAction: r.isNullOrMissing('blocked_action') ? 'announce' : r.oneOf('blocked_action', ['announce', 'silent'] as const),
    blockedPromptId: r.intOrNull('blocked_prompt_id', { min: 1 }),
    pinLockoutFailures: r.intOrNull('pin_lockout_failures', { min: 0, max: 1000 }) ?? 5,
    pinLockoutMinutes: r.intOrNull('pin_lockout_minutes', { min: 1, max: 7 * 24 * 60 }) ?? 30,
  };
}

function readAccessNumber(r: RowReader): AccessNumber {
  return {
    id: r.id,
    number: r.text('number', { pattern: DIGITS, what: 'a number of 3 to 32 digits as dialled' }),
    tenantId: r.int('tenant_id', { min: 1 }),
    kind: r.oneOf('kind', NUMBER_KINDS),
    enabled: r.flag('enabled', true),
    homeAreaCode: r.textOrNull('home_area_code', { pattern: /^0?[1-9][0-9]{1,3}$/, what: 'an area code such as 010 or 0755' })?.replace(/^0/, '') ?? null,
  };
}

function readDestination(r: RowReader): Destination | null {
  if (!r.flag('enabled', true)) return null;
  return {
    id: r.id,
    groupId: r.int('group_id', { min: 1 }),
    number: r.text('number', { pattern: PHONE, what: 'a dialable number (digits, optional leading +)' }),
    position: r.intOrNull('position') ?? 0,
    weight: r.intOrNull('weight', { min: 0, max: 1000 }) ?? 1,
    label: r.textOrNull('label', { max: 200 }),
  };
}

function readGroup(r: RowReader): Omit<DestinationGroup, 'destinations'> {
  return {
    id: r.id,
    tenantId: r.int('tenant_id', { min: 1 }),
    name: r.text('name', { max: 200 }),
    strategy: r.oneOf('strategy', STRATEGIES),
    ringTimeoutS: r.intOrNull('ring_timeout_s', { min: 1, max: 60 }),
    maxQueue: r.intOrNull('max_queue', { min: 0, max: 10000 }) ?? 0,
    queueTimeoutS: r.intOrNull('queue_timeout_s', { min: 0, max: 3600 }) ?? 0,
    failoverGroupId: r.intOrNull('failover_group_id', { min: 1 }),
  };
}

function readRule(r: RowReader): RoutingRule | null {
  if (!r.flag('enabled', true)) return null;
  const regions = r.textOrNull('regions', { max: 2000 });
  return {
    id: r.id,
    tenantId: r.int('tenant_id', { min: 1 }),
    accessNumberId: r.intOrNull('access_number_id', { min: 1 }),
    priority: r.intOrNull('priority') ?? 100,
    regions: regions === null ? null : regions.split(/[,，]/).map((t) => t.trim()).filter((t) => t !== ''),
    scheduleId: r.intOrNull('schedule_id', { min: 1 }),
    percent: r.intOrNull('percent', { min: 1, max: 100 }) ?? 100,
    action: r.oneOf('action', RULE_ACTIONS),
    targetId: r.intOrNull('target_id', { min: 1 }),
  };
}

function readPrompt(r: RowReader): Prompt {
  const file = r.textOrNull('file', { max: 1024, pattern: /^[^\s${}|!^,[\]]+$/, what: 'a path without spaces or any of $ { } | ! ^ , [ ]' });
  const ttsText = r.textOrNull('tts_text', { max: 2000 });
  if (file === null && ttsText === null) throw new RowError('needs a file or a tts_text');
  return { id: r.id, tenantId: r.intOrNull('tenant_id', { min: 1 }), name: r.text('name', { max: 200 }), file, ttsText, language: r.textOrNull('language', { max: 16 }) };
}

function ruleProblem(
  rule: RoutingRule,
  ctx: {
    tenants: ReadonlyMap<number, Tenant>;
    groups: ReadonlyMap<number, DestinationGroup>;
    prompts: ReadonlyMap<number, Prompt>;
    accessNumberTenant: ReadonlyMap<number, number>;
    schedules: ReadonlyMap<number, TenantSchedule>;
    menus: ReadonlyMap<number, IvrMenu>;
  },
): string | null {
  if (!ctx.tenants.has(rule.tenantId)) return `tenant_id ${rule.tenantId} does not exist`;
  if (rule.accessNumberId !== null && ctx.accessNumberTenant.get(rule.accessNumberId) !== rule.tenantId) {
    return `access_number_id ${rule.accessNumberId} is not a number of tenant ${rule.tenantId}`;
  }
  if (rule.scheduleId !== null && ctx.schedules.get(rule.scheduleId)?.tenantId !== rule.tenantId) {
    return `schedule_id ${rule.scheduleId} is not a schedule of tenant ${rule.tenantId}`;
  }
  if (rule.regions !== null) {
    const { invalid } = parseRegionTokens(rule.regions.join(','));
    if (invalid.length > 0) return `regions: ${invalid.map((t) => JSON.stringify(t)).join(', ')} is not a province, city, area code or CN-xx token`;
    if (rule.regions.length === 0) return 'regions is set but lists no token (NULL means anywhere)';
  }
  switch (rule.action) {
    case 'group': {
      const group = rule.targetId === null ? undefined : ctx.groups.get(rule.targetId);
      if (!group || group.tenantId !== rule.tenantId) return `target_id ${rule.targetId} is not a destination group of tenant ${rule.tenantId}`;
      return null;
    }
    case 'announce': {
      const prompt = rule.targetId === null ? undefined : ctx.prompts.get(rule.targetId);
      if (!prompt || (prompt.tenantId !== null && prompt.tenantId !== rule.tenantId)) return `target_id ${rule.targetId} is not a prompt of tenant ${rule.tenantId} or a system prompt`;
      return null;
    }
    case 'ivr': {
      const menu = rule.targetId === null ? undefined : ctx.menus.get(rule.targetId);
      if (!menu || menu.tenantId !== rule.tenantId) return `target_id ${rule.targetId} is not an IVR menu of tenant ${rule.tenantId}`;
      return null;
    }
    default:
      return null;
  }
}
