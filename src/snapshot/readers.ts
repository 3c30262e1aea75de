/**
 * How one row of each configuration table is read, column by column (rows.ts RowReader): the
 * values a row must hold to be in force. Used by build.ts, which checks the references between
 * rows and decides what a bad row costs.
 */
import { formatMoney, MAX_MONEY } from '../domain/money';
import { exactCallCost } from '../domain/rating';
import { accessNumberDigits, accessNumberProblem } from '../domain/access-number';
import { homeAreaCodeOf } from '../domain/geo';
import { capVerdict, NEGATIVE_CAP, type CapColumn } from '../domain/caps';
import { RowError, showValue, type RowReader } from './rows';
import {
  CALL_TYPES, NUMBER_KINDS, RULE_ACTIONS, STRATEGIES, TENANT_STATUSES,
  type AccessNumber, type Destination, type DestinationGroup, type Prompt, type Rate, type RoutingRule, type Tenant,
} from './types';

/** A phone number as dialled (digits, * and #, an optional leading +). */
export const PHONE = /^\+?[0-9*#]{1,32}$/;

/**
 * A rate, checked against what the database can hold: the longest call (CALL_MAX_DURATION_S) must
 * cost no more than DECIMAL(14,4) holds in cdrs.cost and tenant_usage.spend (9999999999.9999).
 */
export function readRate(r: RowReader, maxCallS: number): Rate {
  const perMinute = r.moneyOrNull('per_minute');
  if (perMinute === null || perMinute < 0) throw r.fail('per_minute', 'must be an amount of at least 0');
  const connectFee = r.moneyOrNull('connect_fee') ?? (0 as typeof perMinute);
  if (connectFee < 0) throw r.fail('connect_fee', 'must not be negative');
  const incrementS = r.intOrNull('increment_s', { min: 1, max: 60 }) ?? 60;
  if (60 % incrementS !== 0) throw r.fail('increment_s', 'must divide a minute (60, 30, 6, 1 …)');
  const longest = exactCallCost({ perMinute, incrementS, connectFee }, maxCallS, true);
  if (longest > BigInt(MAX_MONEY)) {
    const column = BigInt(connectFee) * 2n >= longest ? 'connect_fee' : 'per_minute';
    throw new RowError(
      `${column} ${formatMoney(column === 'connect_fee' ? connectFee : perMinute)} is too large: a call of ${maxCallS} s (CALL_MAX_DURATION_S) ` +
        `would cost ${longest / 10_000n}.${String(longest % 10_000n).padStart(4, '0')}, more than cdrs.cost and tenant_usage.spend hold (${formatMoney(MAX_MONEY)})`,
      column,
      r.raw(column),
    );
  }
  return { id: r.id, tenantId: r.intOrNull('tenant_id', { min: 1, blank: 'error' }), callType: r.oneOf('call_type', CALL_TYPES), perMinute, incrementS, connectFee };
}

export function readTenant(r: RowReader): Tenant {
  // A zone the runtime does not know ('Beijing', 'GMT+8') is not this row's error: the tenant stays
  // in force, on its last good zone or the default (build.ts linkTenants, zoneProblem).
  const timezone = r.textOrNull('timezone') ?? 'Asia/Shanghai';
  // Caps: a negative one is refused, 0 is doubtful (build.ts linkTenants): domain/caps.ts, which
  // the live reads (billing/live-values.ts) follow too.
  const cap = (column: CapColumn) => {
    const m = r.moneyOrNull(column);
    if (m !== null && capVerdict(m) === 'negative') throw r.fail(column, NEGATIVE_CAP);
    return m;
  };
  const calls = (column: CapColumn) => {
    const n = r.intOrNull(column);
    if (n !== null && capVerdict(n) === 'negative') throw r.fail(column, NEGATIVE_CAP);
    return n;
  };
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
    maxCallsDay: calls('max_calls_day'),
    maxCallsMonth: calls('max_calls_month'),
    maxSpendDay: cap('max_spend_day'),
    maxSpendMonth: cap('max_spend_month'),
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

/**
 * An access number in any spelling a DBA types (+86 400-101-2345, 0086 4001012345, 400 101 2345):
 * kept as its digits without the country code (access-number.ts); the snapshot keys it by its
 * national number, so two spellings of one number are one number (build.ts `listed twice`).
 */
export function readAccessNumber(r: RowReader): AccessNumber {
  // A whole number too: a DBA who changed the column to BIGINT ("it is a number") loses only a
  // trunk 0, which the national number drops anyway; one past 2^53 has lost digits already.
  const v = r.raw('number');
  if ((typeof v === 'number' && !Number.isSafeInteger(v)) || (typeof v === 'bigint' && v > BigInt(Number.MAX_SAFE_INTEGER))) throw r.fail('number', 'must be text (a number column cannot hold every digit)');
  const text = typeof v === 'number' || typeof v === 'bigint' ? String(v) : r.text('number', { max: 64 });
  const number = accessNumberDigits(text);
  if (number === null) throw new RowError(`number ${showValue('number', text)} is not a number of 3 to 32 digits (spaces, dashes, +86 or 0086 allowed)`, 'number', r.raw('number'));
  const problem = accessNumberProblem(number);
  if (problem !== null) throw new RowError(`number ${showValue('number', text)} ${problem}`, 'number', r.raw('number'));
  const kind = r.oneOf('kind', NUMBER_KINDS);
  return {
    id: r.id,
    number,
    tenantId: r.int('tenant_id', { min: 1 }),
    kind,
    enabled: r.flag('enabled', true),
    // NULL: a switchboard number (a fixed line) is local to its own area code; a 400 number to none.
    homeAreaCode: homeAreaCodeOf(r.textOrNull('home_area_code', { pattern: /^0?[1-9][0-9]{1,3}$/, what: 'an area code such as 010 or 0755' }), kind, number),
  };
}

export function readDestination(r: RowReader): Destination | null {
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

export function readGroup(r: RowReader): Omit<DestinationGroup, 'destinations'> {
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

export function readRule(r: RowReader): RoutingRule | null {
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

export function readPrompt(r: RowReader): Prompt {
  const file = r.textOrNull('file', { max: 1024, pattern: /^[^\s${}|!^,[\]]+$/, what: 'a path without spaces or any of $ { } | ! ^ , [ ]' });
  const ttsText = r.textOrNull('tts_text', { max: 2000 });
  if (file === null && ttsText === null) throw new RowError('needs a file or a tts_text', 'file', r.raw('file'));
  return { id: r.id, tenantId: r.intOrNull('tenant_id', { min: 1, blank: 'error' }), name: r.text('name', { max: 200 }), file, ttsText, language: r.textOrNull('language', { max: 16 }) };
}
