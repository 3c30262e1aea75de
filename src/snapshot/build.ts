/**
 * Turns the raw rows of the configuration tables into a validated ConfigSnapshot. Pure: the
 * same rows always give the same snapshot, and nothing here touches the database.
 *
 * A bad row is skipped and reported (RejectedRow), never fatal. References are checked too: a
 * routing rule pointing at a group of another tenant, or at a missing one, is rejected; a group
 * whose failover link dangles keeps working without the link (and the link is reported).
 */
import { isValidTimeZone } from '../domain/timezone';
import { RowError, RowReader, type Row } from './rows';
import {
  NUMBER_KINDS, RULE_ACTIONS, STRATEGIES, TENANT_STATUSES,
  type AccessNumber, type ConfigSnapshot, type Destination, type DestinationGroup, type Prompt,
  type RejectedRow, type RoutingRule, type Tenant,
} from './types';

export interface RawTables {
  tenants: Row[];
  access_numbers: Row[];
  destination_groups: Row[];
  destinations: Row[];
  routing_rules: Row[];
  prompts: Row[];
}

export const SNAPSHOT_TABLES: ReadonlyArray<keyof RawTables> = [
  'tenants', 'access_numbers', 'destination_groups', 'destinations', 'routing_rules', 'prompts',
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

  const rulesByTenant = new Map<number, RoutingRule[]>();
  const accessNumberTenant = new Map([...accessNumbers.values()].map((a) => [a.id, a.tenantId]));
  for (const rule of each('routing_rules', raw.routing_rules, readRule)) {
    const problem = ruleProblem(rule, { tenants, groups, prompts, accessNumberTenant });
    if (problem) {
      rejected.push({ table: 'routing_rules', id: rule.id, reason: problem });
      continue;
    }
    const list = rulesByTenant.get(rule.tenantId) ?? [];
    list.push(rule);
    rulesByTenant.set(rule.tenantId, list);
  }
  for (const list of rulesByTenant.values()) list.sort((a, b) => a.priority - b.priority || a.id - b.id);

  return { version, loadedAt, tenants, accessNumbers, groups, rulesByTenant, prompts, rejected };
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
  };
}

function readAccessNumber(r: RowReader): AccessNumber {
  return {
    id: r.id,
    number: r.text('number', { pattern: DIGITS, what: 'a number of 3 to 32 digits as dialled' }),
    tenantId: r.int('tenant_id', { min: 1 }),
    kind: r.oneOf('kind', NUMBER_KINDS),
    enabled: r.flag('enabled', true),
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
  },
): string | null {
  if (!ctx.tenants.has(rule.tenantId)) return `tenant_id ${rule.tenantId} does not exist`;
  if (rule.accessNumberId !== null && ctx.accessNumberTenant.get(rule.accessNumberId) !== rule.tenantId) {
    return `access_number_id ${rule.accessNumberId} is not a number of tenant ${rule.tenantId}`;
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
    default:
      return null;
  }
}
