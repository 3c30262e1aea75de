/**
 * Turns the raw rows of the configuration tables into a validated ConfigSnapshot. Pure: the
 * same rows (and the same last good rows) always give the same snapshot; nothing here touches
 * the database.
 *
 * A bad row is never fatal. Every row is read column by column (readers.ts, rows.ts) and its references are
 * checked against what is in force (a routing rule pointing at a group of another tenant, or at a
 * missing one, does not hold). What then happens is ledger.ts's business: a row edited into a bad
 * state keeps its last good version (`lastGood`, the rows in force at the previous build), a row
 * that was never valid is skipped, and the children of a skipped row are reported once, with it.
 * A broken optional link (a group's failover, a tenant's operator group, prompt, business-hours
 * schedule, or a missed-call notice address nothing can be sent to) is ignored and reported, the
 * row stays in force.
 *
 * Tables are taken parents first: tenants, prompts, access numbers, groups and their destinations,
 * schedules, the tenants' links, holidays, filters, rates, extensions, IVR (options name groups,
 * menus, extensions and prompts), click-to-call widgets (widgets.ts), and routing rules last.
 */
import { parseDay, parseScheduleSlot, ScheduleSyntaxError, slotDoubt, type ScheduleSlot } from '../domain/schedule';
import { fixedLineWithoutTrunkZero, parseRegionTokens } from '../domain/geo';
import { notifyTarget } from '../notify/target';
import { DEFAULT_TIMEZONE } from '../domain/periods';
import { CAP_COLUMNS, zeroCapReason } from '../domain/caps';
import { isValidTimeZone, legacyZoneAlias, westernEtcZoneOffset } from '../domain/timezone';
import { chooseRate } from '../domain/rating';
import { nationalNumber } from '../domain/access-number';
import { listedNumber, listedPrefix } from '../domain/screening';
import { extensionProblem, keypadText, MAX_KEYS, menuKeyProblem, OPERATOR_KEY } from '../domain/keypad';
import { Ledger, ROWS_PER_STEP, type Problem } from './ledger';
import { readAccessNumber, readDestination, readGroup, readPrompt, readRate, readRule, readTenant } from './readers';
import { RowError, RowReader, type Row } from './rows';
import { buildWidgets, widgetsById } from './widgets';
import {
  CALL_TYPES, CONFIG_TABLES, FILTER_KINDS, FILTER_LISTS, IVR_ACTIONS,
  type AccessNumber, type ConfigSnapshot, type Destination, type DestinationGroup, type Extension,
  type IvrAction, type IvrMenu, type IvrOption, type Prompt, type Rate, type RoutingRule, type RowsByTable, type RuleAction, type Tenant,
  type TenantFilters, type TenantSchedule,
} from './types';
import { nextTurn } from '../next-turn';

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

export const SNAPSHOT_TABLES: ReadonlyArray<keyof RawTables> = CONFIG_TABLES;

/** No rows were in force before (the first load, `config:lint` without a cache). */
export const NO_LAST_GOOD: RowsByTable = new Map();

/** CALL_MAX_DURATION_S's default: the longest call a rate is checked against. */
export const DEFAULT_MAX_CALL_S = 14_400;

export interface BuildOptions {
  /** Longest call (calls.maxDurationS): a rate whose longest call would cost more than DECIMAL(14,4) holds is refused. */
  readonly maxCallS?: number;
}

/** Builds the snapshot at once (tools, tests, the cache at start-up). */
export function buildSnapshot(raw: RawTables, version: number, loadedAt: Date, lastGood: RowsByTable = NO_LAST_GOOD, options: BuildOptions = {}): ConfigSnapshot {
  const steps = snapshotSteps(raw, version, loadedAt, lastGood, options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * The same snapshot, built in steps of at most ROWS_PER_STEP rows of a table (ledger.ts), with
 * the event loop let run between them: a reload while calls are up. The build is synchronous and
 * took 331-519 ms for 10,000 tenants' configuration (bench/PROFILE.md, release 18), every call's
 * setup waiting meanwhile; in steps it takes about as long, and no call waits for more than a step.
 */
export async function buildSnapshotYielding(raw: RawTables, version: number, loadedAt: Date, lastGood: RowsByTable = NO_LAST_GOOD, options: BuildOptions = {}): Promise<ConfigSnapshot> {
  const steps = snapshotSteps(raw, version, loadedAt, lastGood, options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await nextTurn();
  }
}

function* snapshotSteps(raw: RawTables, version: number, loadedAt: Date, lastGood: RowsByTable, options: BuildOptions): Generator<void, ConfigSnapshot, undefined> {
  const ledger = new Ledger(raw as unknown as Record<string, Row[] | undefined>, lastGood);
  const maxCallS = options.maxCallS ?? DEFAULT_MAX_CALL_S;

  const tenants = new Map<number, Tenant>();
  // Tenants read from a row whose balance is a cleared cell (linkTenants reports them).
  const blankBalance = new WeakSet<Tenant>();
  yield* ledger.table('tenants', (r, row) => {
    const t = readTenant(r);
    if (isBlankBalance(row)) blankBalance.add(t);
    return t;
  }, () => null, (t) => tenants.set(t.id, t));
  const tenantOwner = (tenantId: number): Problem | null => ledger.owner('tenant_id', 'tenants', tenantId, tenants.has(tenantId));

  const prompts = new Map<number, Prompt>();
  yield* ledger.table('prompts', readPrompt, (p) => (p.tenantId === null ? null : tenantOwner(p.tenantId)), (p) => prompts.set(p.id, p));

  // Keyed by national number: +86 400-101-2345 and 4001012345 are one number. Which row keeps a
  // number listed twice: the one in force as it stands, else the one that was in force with it
  // before an edit, else the one edited longest ago, then the lower id (ledger.ts uniqueClaims).
  const accessNumbers = new Map<string, AccessNumber>();
  const listedTwice = (a: AccessNumber): Problem | null => {
    const first = accessNumbers.get(accessNumberKey(a));
    if (!first) return null;
    const spelling = first.number === a.number ? '' : ` as ${first.number}`;
    return { kind: 'value', column: 'number', value: a.number, reason: `number ${a.number} is listed twice (access number ${first.id} has it${spelling})` };
  };
  yield* ledger.table('access_numbers', readAccessNumber, (a) => tenantOwner(a.tenantId) ?? listedTwice(a), (a) => accessNumbers.set(accessNumberKey(a), a), { key: accessNumberKey, columns: ['number'] });

  const groups = yield* buildGroups(ledger, tenantOwner);
  const schedules = yield* buildSchedules(ledger, tenantOwner);
  yield* linkTenants(ledger, tenants, { groups, prompts, schedules, blankBalance });

  const { holidaysByTenant, commonHolidays } = yield* buildHolidays(ledger, tenantOwner);
  const filtersByTenant = yield* buildFilters(ledger, tenantOwner);
  const rates = yield* buildRates(ledger, tenantOwner, maxCallS);
  yield* reportUnratedCalls(ledger, rates, tenants);
  const extensionsByTenant = yield* buildExtensions(ledger, tenantOwner);
  const extensionsById = new Map([...extensionsByTenant.values()].flatMap((byExt) => [...byExt.values()].map((e) => [e.id, e] as const)));
  const menus = yield* buildMenus(ledger, tenantOwner, { prompts, groups, extensionsById });
  const widgets = yield* buildWidgets(ledger, { tenantOwner, accessNumbers, prompts });

  const rulesByTenant = new Map<number, RoutingRule[]>();
  const accessNumberTenant = new Map([...accessNumbers.values()].map((a) => [a.id, a.tenantId]));
  yield* ledger.table('routing_rules', readRule, (rule) => ruleProblem(ledger, rule, { tenantOwner, groups, prompts, accessNumberTenant, schedules, menus, extensionsById }), (rule) => {
    const list = rulesByTenant.get(rule.tenantId) ?? [];
    list.push(rule);
    rulesByTenant.set(rule.tenantId, list);
  });
  for (const list of rulesByTenant.values()) list.sort((a, b) => a.priority - b.priority || a.id - b.id);

  const { findings, lastGood: inForce } = ledger.result(SNAPSHOT_TABLES);
  return {
    version, loadedAt, tenants, accessNumbers, groups, rulesByTenant, prompts, schedules, holidaysByTenant,
    commonHolidays, filtersByTenant, rates, menus, extensionsByTenant, extensionsById, widgets, widgetsById: widgetsById(widgets), rejected: findings, lastGood: inForce,
    numbersNotInForce: ledger.numbersNotInForce,
  };
}

type TenantOwner = (tenantId: number) => Problem | null;

/** snapshot.accessNumbers' key: the national number (a.number passed the reader, so it is one). */
function accessNumberKey(a: AccessNumber): string {
  return nationalNumber(a.number) ?? a.number;
}

/**
 * A phone number the daemon dials (destinations, extension_phones) that lost its trunk 0: dialled
 * as written it never rings, so an edit into one keeps the last good number; a row that had it
 * before this check stays as it is, reported (Ledger `doubt`).
 */
function dialledNumberDoubt(number: string): Problem | null {
  if (!fixedLineWithoutTrunkZero(number)) return null;
  return {
    kind: 'doubt', column: 'number', value: number,
    reason: `number ${number} reads as the fixed line 0${number} without its trunk 0 (a number written unquoted loses it: number = 0${number} stores ${number}); it is dialled as written, which no carrier connects: write it quoted, '0${number}'`,
  };
}

function* buildGroups(ledger: Ledger, tenantOwner: TenantOwner): Generator<void, Map<number, DestinationGroup>, undefined> {
  const groups = new Map<number, Omit<DestinationGroup, 'destinations'>>();
  yield* ledger.table('destination_groups', readGroup, (g) => tenantOwner(g.tenantId), (g) => groups.set(g.id, g));
  // A failover link must stay inside the tenant. A group edited to a bad link keeps its last good
  // version; one that never had a good link works without it.
  for (const [id, g] of groups) {
    const linkOk = (x: Omit<DestinationGroup, 'destinations'>): boolean => x.failoverGroupId === null || groups.get(x.failoverGroupId)?.tenantId === x.tenantId;
    if (linkOk(g)) continue;
    const reason = `failover_group_id ${g.failoverGroupId} is not a group of the same tenant`;
    const last = ledger.lastGoodOf('destination_groups', id);
    const previous = last ? readLast(readGroup, last) : null;
    if (last && previous && previous.tenantId === g.tenantId && linkOk(previous)) {
      ledger.useLastGood('destination_groups', id, last, { kind: 'value', column: 'failover_group_id', value: g.failoverGroupId, reason });
      groups.set(id, previous);
    } else {
      ledger.linkIgnored('destination_groups', id, 'failover_group_id', g.failoverGroupId, `${reason}; the link is ignored`);
      groups.set(id, { ...g, failoverGroupId: null });
    }
  }
  const destinations = new Map<number, Destination[]>();
  yield* ledger.table('destinations', readDestination, (d) => ledger.owner('group_id', 'destination_groups', d.groupId, groups.has(d.groupId)) ?? dialledNumberDoubt(d.number), (d) => {
    const list = destinations.get(d.groupId);
    if (list) list.push(d);
    else destinations.set(d.groupId, [d]);
  });
  const out = new Map<number, DestinationGroup>();
  let assembled = 0;
  for (const [id, g] of groups) {
    // The steps go on here too: at 10,000 groups this and linkTenants were one step of 20-33 ms.
    if (++assembled % ROWS_PER_STEP === 0) yield;
    out.set(id, { ...g, destinations: (destinations.get(id) ?? []).sort((a, b) => a.position - b.position || a.id - b.id) });
  }
  return out;
}

/**
 * A tenant's own links must stay inside the tenant: another company's operator group, prompt or
 * business-hours schedule is not used; nor is a missed-call address nothing can be sent to, a zone
 * the runtime does not know or the zone CST (both read as Asia/Shanghai). Doubtful values (a zone
 * Etc/GMT+N, a cap of 0) stay as written when there is no last good version, reported. A tenant edited to such a value keeps its last good version
 * when that one's values hold; otherwise it works without it (reported).
 */
function* linkTenants(
  ledger: Ledger,
  tenants: Map<number, Tenant>,
  ctx: { groups: ReadonlyMap<number, DestinationGroup>; prompts: ReadonlyMap<number, Prompt>; schedules: ReadonlyMap<number, TenantSchedule>; blankBalance: WeakSet<Tenant> },
): Generator<void, void, undefined> {
  const { groups, prompts, schedules } = ctx;
  /**
   * A value the tenant cannot use, what it becomes instead (null: no link), and why. `doubtful`:
   * a value the tenant can use but likely not what was meant; `instead` keeps it as written.
   */
  type BadLink = { column: keyof typeof LINKS; value: number | string; reason: string; instead: { value: number | string | null; said: string }; doubtful?: true };
  const IGNORED = { value: null, said: 'the link is ignored' };
  const badLinks = (t: Tenant, blankBalance: boolean): BadLink[] => {
    const out: BadLink[] = [];
    // A cleared balance ('' in SQLite) is not NULL (postpaid) to a DBA who meant a number: read as
    // NULL, as earlier releases did (a tenant must not go out of service with an upgrade), and said.
    if (blankBalance) {
      out.push({
        column: 'balance', value: '',
        reason: 'balance is a cleared cell, not an amount; NULL means postpaid',
        instead: { value: null, said: 'no balance (postpaid) is used until it is fixed' },
      });
    }
    const notOurs = (column: keyof typeof LINKS, value: number, what: string): void => void out.push({ column, value, reason: `${column} ${value} is not ${what} of this tenant`, instead: IGNORED });
    // A zone the runtime does not know ('Beijing', 'GMT+8', '+08:00', 'China Standard Time'): in
    // force with the default zone, as CST. Before, the tenant was skipped when it had no last good
    // version, and all its numbers went out of service for a zone name.
    const knownZone = isValidTimeZone(t.timezone);
    if (!knownZone) {
      out.push({
        column: 'timezone', value: t.timezone,
        reason: `timezone ${JSON.stringify(t.timezone)} is not an IANA time zone (e.g. Asia/Shanghai; an offset such as GMT+8 is not one)`,
        instead: { value: DEFAULT_TIMEZONE, said: `${DEFAULT_TIMEZONE}, the default, is used` },
      });
    }
    // CST: a real zone to the runtime (America/Chicago), not the China Standard Time a DBA here
    // means (timezone.ts). In force with the default zone, never skipped: a tenant that already
    // had it must not go out of service with an upgrade.
    const alias = legacyZoneAlias(t.timezone);
    if (alias !== null) {
      out.push({
        column: 'timezone', value: t.timezone,
        reason: `timezone ${JSON.stringify(t.timezone)} is an old abbreviation the runtime reads as ${alias}, not a zone name (China Standard Time is Asia/Shanghai)`,
        instead: { value: DEFAULT_TIMEZONE, said: `${DEFAULT_TIMEZONE}, the default, is used` },
      });
    }
    // Etc/GMT+8 is UTC-08:00 (POSIX inverts the sign), written for China's UTC+08:00: business
    // hours 16 hours off. A real zone, so kept as written when there is no earlier version (a
    // tenant that had it before this check must keep its hours); an edit into it keeps the last good.
    // Only for a zone the runtime knows: Etc/GMT+08 or Etc/GMT+13 are unknown, already read as the
    // default zone above, and "used as written" would put an unknown zone in force (every call of
    // the tenant failed in planCall).
    const western = knownZone ? westernEtcZoneOffset(t.timezone) : null;
    if (western !== null) {
      out.push({
        column: 'timezone', value: t.timezone, doubtful: true,
        reason: `timezone ${JSON.stringify(t.timezone)} is ${western}: the Etc/GMT zones' signs are inverted, so China's UTC+08:00 is Etc/GMT-8 (or Asia/Shanghai); for ${western} name the zone by its place`,
        instead: { value: t.timezone, said: `${western} is used as written` },
      });
    }
    // A cap of 0 refuses every call (status 'suspended' is for that; 0 is "off" in the sibling
    // columns): kept as written when there is no earlier version (a tenant that had it before this
    // check keeps its behaviour), but an edit into it keeps the last good cap (domain/caps.ts).
    for (const column of CAP_COLUMNS) {
      if (t[LINKS[column]] === 0) {
        out.push({ column, value: 0, doubtful: true, reason: zeroCapReason(column), instead: { value: 0, said: '0 is used as written' } });
      }
    }
    // A PIN shorter than 4 digits (the product's PIN is 4): most likely one written as a number,
    // which loses its leading zeros (UPDATE tenants SET pin = 0042 stores '42'), and every caller
    // keying 0042 then fails and is locked out. Kept as written when there is no earlier version
    // (a tenant that had a short PIN before this check keeps it); an edit into one keeps the last good.
    if (t.pin !== null && t.pin.length < 4) {
      out.push({
        column: 'pin', value: t.pin, doubtful: true,
        reason: `pin has ${t.pin.length} digit${t.pin.length === 1 ? '' : 's'}: a PIN has 4 or more, and one written as a number loses its leading zeros (pin = 0123 stores 123): write it quoted`,
        instead: { value: t.pin, said: 'the PIN is used as written' },
      });
    }
    if (t.operatorGroupId !== null && groups.get(t.operatorGroupId)?.tenantId !== t.id) notOurs('operator_group_id', t.operatorGroupId, 'a destination group');
    for (const column of ['welcome_prompt_id', 'after_hours_prompt_id', 'ringback_prompt_id', 'blocked_prompt_id'] as const) {
      const value = t[LINKS[column]];
      const prompt = prompts.get(value ?? -1);
      if (value !== null && !(prompt !== undefined && (prompt.tenantId === null || prompt.tenantId === t.id))) notOurs(column, value, 'a system prompt or a prompt');
    }
    if (t.businessHoursScheduleId !== null && schedules.get(t.businessHoursScheduleId)?.tenantId !== t.id) notOurs('business_hours_schedule_id', t.businessHoursScheduleId, 'a schedule');
    // Where missed-call notices go: a value the queue cannot use sent none, silently, for as long as it stood.
    if (t.missedCallNotify !== null && notifyTarget(t.missedCallNotify) === null) {
      out.push({ column: 'missed_call_notify', value: t.missedCallNotify, reason: `missed_call_notify ${JSON.stringify(t.missedCallNotify)} is neither a phone number nor an e-mail address: no missed-call notice could be sent`, instead: IGNORED });
    }
    return out;
  };
  let checked = 0;
  for (const [id, tenant] of tenants) {
    if (++checked % ROWS_PER_STEP === 0) yield;
    const bad = badLinks(tenant, ctx.blankBalance.has(tenant));
    if (bad.length === 0) continue;
    const last = ledger.lastGoodOf('tenants', id);
    const previous = last ? readLast(readTenant, last) : null;
    const before = last && previous ? badLinks(previous, isBlankBalance(last)) : [];
    // What the edit brought: a bad value its last good version did not have. That version stands
    // in when its own are doubtful ones only (in force as written, a cap of 0 …), reported again;
    // an edit that brought none (a new name beside a cap of 0 that was there) is not undone.
    const brought = bad.filter((b) => !before.some((p) => p.column === b.column && p.value === b.value));
    if (last && previous && brought.length > 0 && before.every((p) => p.doubtful)) {
      ledger.useLastGood('tenants', id, last, { kind: 'value', column: brought[0].column, value: brought[0].value, reason: brought[0].reason });
      for (const p of before) ledger.doubtful('tenants', id, p.column, p.value, `${p.reason}; ${p.instead.said}`);
      tenants.set(id, previous);
      continue;
    }
    const fixed: Record<string, number | string | null> = {};
    for (const b of bad) {
      if (b.doubtful) ledger.doubtful('tenants', id, b.column, b.value, `${b.reason}; ${b.instead.said}`);
      else ledger.linkIgnored('tenants', id, b.column, b.value, `${b.reason}; ${b.instead.said}`);
      fixed[LINKS[b.column]] = b.instead.value;
    }
    tenants.set(id, { ...tenant, ...fixed });
  }
}

const LINKS = {
  operator_group_id: 'operatorGroupId',
  welcome_prompt_id: 'welcomePromptId',
  after_hours_prompt_id: 'afterHoursPromptId',
  ringback_prompt_id: 'ringbackPromptId',
  blocked_prompt_id: 'blockedPromptId',
  business_hours_schedule_id: 'businessHoursScheduleId',
  missed_call_notify: 'missedCallNotify',
  timezone: 'timezone',
  balance: 'balance',
  max_calls_day: 'maxCallsDay',
  max_calls_month: 'maxCallsMonth',
  max_spend_day: 'maxSpendDay',
  max_spend_month: 'maxSpendMonth',
  pin: 'pin',
} as const;

function isBlankBalance(row: Row): boolean {
  return typeof row.balance === 'string' && row.balance.trim() === '';
}

/** A last good row read again (it passed before; the reader is pure, but a bug must not throw here). */
function readLast<T>(read: (r: RowReader) => T | null, row: Row): T | null {
  try {
    return read(new RowReader(row));
  } catch (err) {
    if (err instanceof RowError) return null;
    throw err;
  }
}

function* buildSchedules(ledger: Ledger, tenantOwner: TenantOwner): Generator<void, Map<number, TenantSchedule>, undefined> {
  const schedules = new Map<number, Omit<TenantSchedule, 'slots'>>();
  yield* ledger.table('schedules', (r) => ({
    id: r.id,
    tenantId: r.int('tenant_id', { min: 1 }),
    name: r.text('name', { max: 255 }),
    excludeHolidays: r.flag('exclude_holidays', false),
  }), (s) => tenantOwner(s.tenantId), (s) => schedules.set(s.id, s));
  const slots = new Map<number, ScheduleSlot[]>();
  yield* ledger.table('schedule_slots', (r) => {
    const scheduleId = r.int('schedule_id', { min: 1 });
    // Each column as the slot parser's text, a missing column as NULL (it trusts its input's
    // types); a value of another type is this row's error, never read as NULL ("every day",
    // "no end date").
    const slotRow = {
      weekdays: cellText(r, 'weekdays'),
      start_time: cellText(r, 'start_time') ?? '',
      end_time: cellText(r, 'end_time') ?? '',
      date_from: cellText(r, 'date_from', { day: true }),
      date_to: cellText(r, 'date_to', { day: true }),
    };
    try {
      return { scheduleId, slot: parseScheduleSlot(slotRow), endTime: slotRow.end_time };
    } catch (err) {
      if (err instanceof ScheduleSyntaxError) throw new RowError(err.message, slotColumn(err.field) ?? slotColumn(err.message), err.value);
      throw err;
    }
  }, (s) => {
    const doubt = slotDoubt(s.slot);
    return ledger.owner('schedule_id', 'schedules', s.scheduleId, schedules.has(s.scheduleId))
      ?? (doubt === null ? null : { kind: 'doubt', column: 'end_time', value: s.endTime, reason: doubt });
  }, ({ scheduleId, slot }) => {
    slots.set(scheduleId, [...(slots.get(scheduleId) ?? []), slot]);
  });
  const out = new Map<number, TenantSchedule>();
  for (const [id, s] of schedules) {
    const own = slots.get(id) ?? [];
    // A schedule with no slot is never in hours: as a tenant's business hours every call is after
    // hours, a rule on it never matches. Valid, and what a DBA who deletes the slots to write them
    // again has for a moment; said, so that it is not a silence.
    if (own.length === 0) {
      ledger.doubtful('schedules', id, null, null, `schedule ${id} has no slot in force (no schedule_slots row names it, or none is in force): it is never in hours, so a tenant's business hours on it are always closed and a rule on it never matches`);
    }
    out.set(id, { ...s, slots: own });
  }
  return out;
}

/**
 * A text column's value as text: NULL (or a missing column) as null, a number as its digits, and
 * with `day` a DATE column's value (the driver's Date at midnight UTC: a DBA changed the column's
 * type) as YYYY-MM-DD. Anything else (a BLOB, a Date with a time of day) is a RowError about the
 * column, not a NULL that would widen the row's meaning.
 */
function cellText(r: RowReader, column: string, opts: { day?: boolean } = {}): string | null {
  const v = r.raw(column);
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (opts.day === true && v instanceof Date && !Number.isNaN(v.getTime())) {
    const iso = v.toISOString();
    if (iso.endsWith('T00:00:00.000Z')) return iso.slice(0, 10);
    throw r.fail(column, 'must be a day YYYY-MM-DD without a time of day');
  }
  throw r.fail(column, opts.day === true ? 'must be a day YYYY-MM-DD' : 'must be text');
}

/** The column a schedule-slot syntax error is about (its message starts with the column's name). */
function slotColumn(message: string): string | null {
  return /^(weekdays|start_time|end_time|date_from|date_to)\b/.exec(message)?.[1] ?? null;
}

/** holidays.day: a real calendar day YYYY-MM-DD (not 2026-02-30), as text or a DATE column's value. */
function holidayDay(r: RowReader): string {
  const text = cellText(r, 'day', { day: true });
  if (text === null) throw r.fail('day', 'must be a day YYYY-MM-DD');
  try {
    return parseDay(text);
  } catch (err) {
    if (err instanceof ScheduleSyntaxError) throw r.fail('day', 'must be a day YYYY-MM-DD that exists');
    throw err;
  }
}

function* buildHolidays(ledger: Ledger, tenantOwner: TenantOwner): Generator<void, { holidaysByTenant: Map<number, ReadonlySet<string>>; commonHolidays: ReadonlySet<string> }, undefined> {
  const common = new Set<string>();
  const own = new Map<number, Set<string>>();
  yield* ledger.table('holidays', (r) => ({
    id: r.id,
    tenantId: r.intOrNull('tenant_id', { min: 1, blank: 'error' }),
    day: holidayDay(r),
  }), (h) => (h.tenantId === null ? null : tenantOwner(h.tenantId)), (h) => {
    if (h.tenantId === null) common.add(h.day);
    else own.set(h.tenantId, (own.get(h.tenantId) ?? new Set()).add(h.day));
  });
  const holidaysByTenant = new Map<number, ReadonlySet<string>>();
  for (const [tenantId, days] of own) holidaysByTenant.set(tenantId, new Set([...common, ...days]));
  return { holidaysByTenant, commonHolidays: common };
}

function* buildFilters(ledger: Ledger, tenantOwner: TenantOwner): Generator<void, Map<number, TenantFilters>, undefined> {
  type Mutable = { numbers: Set<string>; prefixes: string[]; regions: string[] };
  const lists = new Map<number, { block: Mutable; allow: Mutable }>();
  yield* ledger.table('call_filters', (r) => {
    const kind = r.oneOf('kind', FILTER_KINDS);
    const value = kind === 'region'
      ? r.text('value', { max: 64 })
      : r.text('value', { pattern: /^\+?[0-9]{1,32}$/, what: 'digits (an optional leading +)' });
    // A region value may list several tokens, as routing_rules.regions does ('北京,上海', '北京，'):
    // screening matches token by token, so the tokens are what the lists hold, never the whole text.
    let regions: string[] = [];
    if (kind === 'region') {
      const { tokens, invalid } = parseRegionTokens(value);
      if (invalid.length > 0) throw new RowError(`value ${JSON.stringify(value)} is not a region token (province, city, area code or CN-xx)`, 'value', value);
      if (tokens.length === 0) throw new RowError(`value ${JSON.stringify(value)} lists no region token (province, city, area code or CN-xx)`, 'value', value);
      regions = tokens;
    }
    return { id: r.id, tenantId: r.int('tenant_id', { min: 1 }), list: r.oneOf('list', FILTER_LISTS), kind, value, regions };
  }, (f) => tenantOwner(f.tenantId), (f) => {
    const entry = lists.get(f.tenantId) ?? { block: empty(), allow: empty() };
    const list = entry[f.list];
    // Numbers and prefixes are held in a spelling the caller's spellings include (screening.ts):
    // 008613912345678, 8613912345678 and 013912345678 are all 13912345678, 0086139 is 86139.
    // Before, only a + was dropped, and a 0086 or trunk-0 value never matched its caller.
    if (f.kind === 'number') list.numbers.add(listedNumber(f.value));
    else if (f.kind === 'prefix') list.prefixes.push(listedPrefix(f.value));
    else list.regions.push(...f.regions);
    lists.set(f.tenantId, entry);
  });
  return lists;

  function empty(): Mutable {
    return { numbers: new Set(), prefixes: [], regions: [] };
  }
}

export const NO_FILTERS: TenantFilters = {
  block: { numbers: new Set(), prefixes: [], regions: [] },
  allow: { numbers: new Set(), prefixes: [], regions: [] },
};

/** Frozen: chooseRate (rating.ts) keeps its index of a list nobody can change. */
function* buildRates(ledger: Ledger, tenantOwner: TenantOwner, maxCallS: number): Generator<void, readonly Rate[], undefined> {
  const out: Rate[] = [];
  const byKey = new Map<string, Rate>();
  const key = (rate: Rate): string => `${rate.tenantId ?? 'default'}/${rate.callType}`;
  yield* ledger.table('rates', (r) => readRate(r, maxCallS), (rate) => {
    if (rate.tenantId !== null) {
      const owner = tenantOwner(rate.tenantId);
      if (owner) return owner;
    }
    const first = byKey.get(key(rate));
    if (!first) return null;
    return { kind: 'value', column: 'call_type', value: rate.callType, reason: `a second ${rate.callType} rate for ${rate.tenantId === null ? 'the default' : `tenant ${rate.tenantId}`}; rate ${first.id} is used` };
  }, (rate) => {
    byKey.set(key(rate), rate);
    out.push(rate);
  }, { key, columns: ['tenant_id', 'call_type'] });
  return Object.freeze(out);
}

/**
 * A call type some tenants have no rate for (neither their own nor a default, tenant_id NULL): their
 * calls of that type cost nothing (rating.ts chooseRate, the one the CDRs are rated with). One
 * finding a call type, naming the first tenants (in `value`: the reason stays the same while the
 * list moves, so the finding is logged once, store.ts). Active tenants only: a closed or suspended
 * one takes no call. Only when rates are in use at all: a deployment that bills elsewhere has
 * none, and four findings at every reload would say nothing to it.
 */
function* reportUnratedCalls(ledger: Ledger, rates: readonly Rate[], tenants: ReadonlyMap<number, Tenant>): Generator<void, void, undefined> {
  if (rates.length === 0) return;
  const SHOWN = 5;
  for (const callType of CALL_TYPES) {
    if (chooseRate(rates, null, callType) !== null) continue;
    const unrated: number[] = [];
    let checked = 0;
    for (const [id, tenant] of tenants) {
      if (++checked % ROWS_PER_STEP === 0) yield;
      if (tenant.status === 'active' && chooseRate(rates, id, callType) === null) unrated.push(id);
    }
    if (unrated.length === 0) continue;
    const named = unrated.slice(0, SHOWN).join(', ') + (unrated.length > SHOWN ? ` … (${unrated.length} in all)` : '');
    ledger.doubtful('rates', null, 'call_type', `${callType}: tenants ${named}`,
      `no ${callType} rate: no default one (tenant_id NULL), and active tenants without their own: their ${callType} calls cost nothing`);
  }
}

function* buildMenus(
  ledger: Ledger,
  tenantOwner: TenantOwner,
  ctx: {
    prompts: ReadonlyMap<number, Prompt>;
    groups: ReadonlyMap<number, DestinationGroup>;
    extensionsById: ReadonlyMap<number, Extension>;
  },
): Generator<void, Map<number, IvrMenu>, undefined> {
  const { prompts } = ctx;
  const menus = new Map<number, Omit<IvrMenu, 'options'>>();
  yield* ledger.table('ivr_menus', (r) => ({
    id: r.id,
    tenantId: r.int('tenant_id', { min: 1 }),
    name: r.text('name', { max: 255 }),
    promptId: r.intOrNull('prompt_id', { min: 1 }),
    digits: r.intOrNull('digits', { min: 1, max: 16 }) ?? 1,
    timeoutS: r.intOrNull('timeout_s', { min: 1, max: 60 }) ?? 5,
    maxRetries: r.intOrNull('max_retries', { min: 0, max: 10 }) ?? 3,
    invalidPromptId: r.intOrNull('invalid_prompt_id', { min: 1 }),
  }), (m) => {
    const promptRef = (column: string, id: number | null): Problem | null => {
      const p = id === null ? undefined : prompts.get(id);
      return ledger.ref(column, 'prompts', id, id === null || (p !== undefined && (p.tenantId === null || p.tenantId === m.tenantId)),
        `${column} ${id} is not a prompt of this tenant or a system prompt`);
    };
    return tenantOwner(m.tenantId) ?? promptRef('prompt_id', m.promptId) ?? promptRef('invalid_prompt_id', m.invalidPromptId);
  }, (m) => menus.set(m.id, m));
  const options = new Map<number, Map<string, IvrOption>>();
  // An option keyed so that no caller can choose it (keypad.ts: the same patterns the IVR step
  // collects with), or keyed like another option of its menu, is refused; the menu's other
  // options stay in force.
  yield* ledger.table('ivr_options', (r) => {
    const digits = keypadText(r.text('digits', { max: 64 }));
    const bad = menuKeyProblem(digits, MAX_KEYS);
    if (bad !== null) throw new RowError(`digits ${JSON.stringify(digits)} ${bad}`, 'digits', r.raw('digits'));
    return { id: r.id, menuId: r.int('menu_id', { min: 1 }), digits, action: r.oneOf('action', IVR_ACTIONS), targetId: r.intOrNull('target_id', { min: 1 }) };
  }, (o) => ledger.owner('menu_id', 'ivr_menus', o.menuId, menus.has(o.menuId)) ?? optionKeyProblem(o, menus.get(o.menuId)!, options.get(o.menuId))
    ?? targetProblem(ledger, o, menus.get(o.menuId)!.tenantId, { ...ctx, menus }, 'option'), (o) => {
    options.set(o.menuId, (options.get(o.menuId) ?? new Map<string, IvrOption>()).set(o.digits, o));
  }, { key: (o) => `${o.menuId}/${o.digits}`, columns: ['menu_id', 'digits'] });
  const out = new Map<number, IvrMenu>();
  for (const [id, m] of menus) out.set(id, { ...m, options: options.get(id) ?? new Map() });
  return out;
}

/** An option's key against its menu: reachable with the menu's `digits`, and not another option's. */
function optionKeyProblem(o: IvrOption & { id: number }, menu: Omit<IvrMenu, 'options'>, taken: ReadonlyMap<string, IvrOption> | undefined): Problem | null {
  const bad = menuKeyProblem(o.digits, menu.digits);
  if (bad !== null) return { kind: 'value', column: 'digits', value: o.digits, reason: `digits ${JSON.stringify(o.digits)} ${bad}` };
  const first = taken?.get(o.digits);
  if (first) return { kind: 'value', column: 'digits', value: o.digits, reason: `digits ${o.digits} already used in menu ${o.menuId} (option ${first.id} has it)` };
  return null;
}

/** What a rule's or an option's target_id is checked against. */
interface TargetContext {
  prompts: ReadonlyMap<number, Prompt>;
  groups: ReadonlyMap<number, DestinationGroup>;
  menus: ReadonlyMap<number, Omit<IvrMenu, 'options'>>;
  extensionsById: ReadonlyMap<number, Extension>;
}

/**
 * A routing rule's or an IVR option's target_id, as its action needs it (plan.ts toAction, the
 * same actions): a group or a menu of the tenant (required); an extension of it (NULL: the caller
 * dials one / the tenant's own box); a prompt of it or a system prompt (an option's NULL: the
 * system goodbye; a rule's announce must name one). Another tenant's row would put callers through
 * to another company; a missing one fails only when a caller reaches it. A voicemail's box is the
 * exception, an `ignore` problem: a row edited into a bad one keeps its last good version, any
 * other stays in force with target_id NULL (the tenant's own box), reported, since the caller can
 * still leave the message and the row must not go out of service, with an upgrade that brought
 * this check, for a box number nothing read.
 */
function targetProblem(
  ledger: Ledger,
  row: { action: RuleAction | IvrAction; targetId: number | null },
  t: number,
  ctx: TargetContext,
  from: 'rule' | 'option',
): Problem | null {
  const { action, targetId: id } = row;
  const target = (table: string, ok: boolean, what: string): Problem | null =>
    ledger.ref('target_id', table, id, ok, `target_id ${id} is not ${what}`);
  switch (action) {
    case 'group':
      return target('destination_groups', id !== null && ctx.groups.get(id)?.tenantId === t, `a destination group of tenant ${t}`);
    case 'ivr':
    case 'menu':
      return target('ivr_menus', id !== null && ctx.menus.get(id)?.tenantId === t, `an IVR menu of tenant ${t}`);
    case 'extension':
      return target('extensions', id === null || isExtensionOf(ctx, t, id), `an extension of tenant ${t}`);
    case 'voicemail':
      if (id === null || isExtensionOf(ctx, t, id)) return null;
      return {
        kind: 'ignore', column: 'target_id', value: id,
        reason: `target_id ${id} is not an extension of tenant ${t}; the tenant's own box is used`,
        drop: () => void ((row as { targetId: number | null }).targetId = null),
      };
    case 'announce': {
      const prompt = id === null ? undefined : ctx.prompts.get(id);
      return target('prompts', (id === null && from === 'option') || (prompt !== undefined && (prompt.tenantId === null || prompt.tenantId === t)), `a prompt of tenant ${t} or a system prompt`);
    }
    case 'switchboard':
    case 'operator':
    case 'repeat':
    case 'hangup':
    case 'reject':
      return null;
    default: {
      const never: never = action;
      throw new Error(`unhandled action ${String(never)}`);
    }
  }
}

function isExtensionOf(ctx: TargetContext, tenantId: number, extensionId: number): boolean {
  return tenantExtension(ctx.extensionsById, tenantId, extensionId) !== undefined;
}

/**
 * The extension with this id when it is the tenant's and in force: what a rule or IVR option
 * naming it rings (steps/switchboard.ts), explains (explain.ts) and is checked against here.
 */
export function tenantExtension(extensionsById: ReadonlyMap<number, Extension>, tenantId: number, extensionId: number): Extension | undefined {
  const extension = extensionsById.get(extensionId);
  return extension?.tenantId === tenantId ? extension : undefined;
}

/** An extension number as a switchboard caller keys it (keypad.ts), or a RowError. */
function readExt(r: RowReader): string {
  const ext = keypadText(r.text('ext', { max: 64 }));
  const bad = extensionProblem(ext);
  if (bad !== null) throw new RowError(`ext ${JSON.stringify(ext)} ${bad}`, 'ext', r.raw('ext'));
  return ext;
}

function* buildExtensions(ledger: Ledger, tenantOwner: TenantOwner): Generator<void, Map<number, Map<string, Extension>>, undefined> {
  const extensions = new Map<number, Omit<Extension, 'phones'>>();
  const byTenant = new Map<number, Map<string, number>>();
  yield* ledger.table('extensions', (r) => ({
    id: r.id,
    tenantId: r.int('tenant_id', { min: 1 }),
    ext: readExt(r),
    name: r.textOrNull('name', { max: 255 }),
    department: r.textOrNull('department', { max: 255 }),
    voicemailEnabled: r.flag('voicemail_enabled', true),
  }), (e) => {
    const first = byTenant.get(e.tenantId)?.get(e.ext);
    return tenantOwner(e.tenantId) ?? (first === undefined ? null
      : { kind: 'value', column: 'ext', value: e.ext, reason: `extension ${e.ext} already exists for tenant ${e.tenantId} (extension ${first} has it)` });
  }, (e) => {
    extensions.set(e.id, e);
    byTenant.set(e.tenantId, (byTenant.get(e.tenantId) ?? new Map<string, number>()).set(e.ext, e.id));
  }, { key: (e) => `${e.tenantId}/${e.ext}`, columns: ['tenant_id', 'ext'] });
  // Extension 0 stays in force (rules and options name it by id and ring it), but a switchboard
  // caller who dials 0 reaches the operator: said, so that a DBA does not expect otherwise.
  for (const e of extensions.values()) {
    if (e.ext === OPERATOR_KEY) {
      ledger.linkIgnored('extensions', e.id, 'ext', e.ext, `ext ${OPERATOR_KEY} is the switchboard's operator key: a caller who dials ${OPERATOR_KEY} reaches the operator, rules and IVR options naming this extension still ring it`);
    }
  }
  const phones = new Map<number, Array<{ position: number; id: number; number: string }>>();
  yield* ledger.table('extension_phones', (r) => ({
    id: r.id,
    extensionId: r.int('extension_id', { min: 1 }),
    number: r.text('number', { pattern: /^\+?[0-9*#]{1,32}$/, what: 'a dialable number' }),
    position: r.intOrNull('position') ?? 0,
  }), (p) => ledger.owner('extension_id', 'extensions', p.extensionId, extensions.has(p.extensionId)) ?? dialledNumberDoubt(p.number), (p) => {
    phones.set(p.extensionId, [...(phones.get(p.extensionId) ?? []), p]);
  });
  const out = new Map<number, Map<string, Extension>>();
  for (const e of [...extensions.values()].sort((a, b) => a.id - b.id)) {
    const list = (phones.get(e.id) ?? []).sort((a, b) => a.position - b.position || a.id - b.id).map((p) => p.number);
    const map = out.get(e.tenantId) ?? new Map<string, Extension>();
    out.set(e.tenantId, map.set(e.ext, { ...e, phones: list }));
  }
  return out;
}

function ruleProblem(
  ledger: Ledger,
  rule: RoutingRule,
  ctx: {
    tenantOwner: TenantOwner;
    groups: ReadonlyMap<number, DestinationGroup>;
    prompts: ReadonlyMap<number, Prompt>;
    accessNumberTenant: ReadonlyMap<number, number>;
    schedules: ReadonlyMap<number, TenantSchedule>;
    menus: ReadonlyMap<number, IvrMenu>;
    extensionsById: ReadonlyMap<number, Extension>;
  },
): Problem | null {
  const owner = ctx.tenantOwner(rule.tenantId);
  if (owner) return owner;
  const t = rule.tenantId;
  const numberRef = ledger.ref('access_number_id', 'access_numbers', rule.accessNumberId,
    rule.accessNumberId === null || ctx.accessNumberTenant.get(rule.accessNumberId) === t, `access_number_id ${rule.accessNumberId} is not a number of tenant ${t}`);
  if (numberRef) return numberRef;
  const scheduleRef = ledger.ref('schedule_id', 'schedules', rule.scheduleId,
    rule.scheduleId === null || ctx.schedules.get(rule.scheduleId)?.tenantId === t, `schedule_id ${rule.scheduleId} is not a schedule of tenant ${t}`);
  if (scheduleRef) return scheduleRef;
  if (rule.regions !== null) {
    const { invalid } = parseRegionTokens(rule.regions.join(','));
    const value = rule.regions.join(',');
    if (invalid.length > 0) return { kind: 'value', column: 'regions', value, reason: `regions: ${invalid.map((x) => JSON.stringify(x)).join(', ')} is not a province, city, area code or CN-xx token` };
    if (rule.regions.length === 0) return { kind: 'value', column: 'regions', value, reason: 'regions is set but lists no token (NULL means anywhere)' };
  }
  return targetProblem(ledger, rule, t, ctx, 'rule');
}
