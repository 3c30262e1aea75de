// Raw configuration rows shaped like the database returns them, for snapshot tests.
// Two tenants, each with an access number, groups, destinations, a rule and prompts; nothing invalid.
import type { RawTables } from '../../src/snapshot/build';

export type Row = Record<string, unknown>;

export function tenantRow(id: number, extra: Row = {}): Row {
  return {
    id,
    name: `Tenant ${id}`,
    status: 'active',
    timezone: 'Asia/Shanghai',
    balance: '100.0000',
    pin: null,
    pin_max_attempts: 3,
    ring_timeout_s: 15,
    record_calls: 0,
    voicemail_enabled: 1,
    caller_memory_hours: 24,
    missed_call_notify: null,
    max_calls_day: null,
    max_calls_month: null,
    max_spend_day: null,
    max_spend_month: null,
    welcome_prompt_id: null,
    after_hours_prompt_id: null,
    ringback_prompt_id: null,
    business_hours_schedule_id: null,
    operator_group_id: null,
    ...extra,
  };
}

export function accessNumberRow(id: number, tenantId: number, number: string, extra: Row = {}): Row {
  return { id, number, tenant_id: tenantId, kind: 'hotline', enabled: 1, ...extra };
}

export function groupRow(id: number, tenantId: number, extra: Row = {}): Row {
  return {
    id,
    tenant_id: tenantId,
    name: `Group ${id}`,
    strategy: 'sequential',
    ring_timeout_s: null,
    max_queue: 0,
    queue_timeout_s: 60,
    failover_group_id: null,
    ...extra,
  };
}

export function destinationRow(id: number, groupId: number, number: string, extra: Row = {}): Row {
  return { id, group_id: groupId, number, position: 1, weight: 1, enabled: 1, label: null, ...extra };
}

export function ruleRow(id: number, tenantId: number, extra: Row = {}): Row {
  return {
    id,
    tenant_id: tenantId,
    access_number_id: null,
    priority: 100,
    regions: null,
    schedule_id: null,
    percent: 100,
    action: 'group',
    target_id: null,
    enabled: 1,
    ...extra,
  };
}

export function promptRow(id: number, tenantId: number | null, extra: Row = {}): Row {
  return { id, tenant_id: tenantId, name: `Prompt ${id}`, file: `/sounds/p${id}.wav`, tts_text: null, language: 'zh-CN', ...extra };
}

/**
 * Tenant 1 (Acme): number 4001000001 (id 1), groups 10 (→ failover 11) and 11, destinations
 * 100, 101 (group 10) and 110 (group 11), rule 1000 → group 10, prompt 500.
 * Tenant 2 (Beta, suspended, New York, PIN 1234): switchboard 4002000002 (id 2), group 20 with
 * destination 200, rule 2000 → group 20, prompt 502. System prompt 501 (TTS).
 */
export function goodRaw(): RawTables {
  return {
    tenants: [
      tenantRow(1, { name: 'Acme 贸易有限公司' }),
      tenantRow(2, { name: 'Beta', status: 'suspended', timezone: 'America/New_York', balance: null, pin: '1234' }),
    ],
    access_numbers: [accessNumberRow(1, 1, '4001000001'), accessNumberRow(2, 2, '4002000002', { kind: 'switchboard' })],
    destination_groups: [
      groupRow(10, 1, { name: 'Sales', failover_group_id: 11 }),
      groupRow(11, 1, { name: 'Backup', strategy: 'simultaneous', ring_timeout_s: 30 }),
      groupRow(20, 2, { name: 'Beta desk', strategy: 'round_robin' }),
    ],
    destinations: [
      destinationRow(100, 10, '13800000001', { position: 1 }),
      destinationRow(101, 10, '02088886666', { position: 2, label: 'front desk' }),
      destinationRow(110, 11, '+8613900000000'),
      destinationRow(200, 20, '13700000000'),
    ],
    routing_rules: [
      ruleRow(1000, 1, { access_number_id: 1, priority: 10, action: 'group', target_id: 10 }),
      ruleRow(2000, 2, { priority: 10, action: 'group', target_id: 20 }),
    ],
    prompts: [
      promptRow(500, 1),
      promptRow(501, null, { file: null, tts_text: '您好，欢迎致电' }),
      promptRow(502, 2),
    ],
  };
}

/** `base` (the fixtures by default) with one row's columns set, edited a minute before 2026-11-23T02:00Z. */
export function edited(table: keyof RawTables, id: number, set: Row, base: RawTables = goodRaw()): RawTables {
  const raw = structuredClone(base);
  const rows = raw[table]!;
  const i = rows.findIndex((r) => r.id === id);
  rows[i] = { ...rows[i], ...set, updated_at: '2026-11-23 01:59:00.000' };
  return raw;
}
