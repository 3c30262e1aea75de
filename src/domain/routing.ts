/**
 * Routing decisions as pure functions of (config snapshot, call facts, random source). No I/O,
 * no clock reads: the CallSession carries out what these return, tests run them without sockets.
 */
import type { AccessNumber, ConfigSnapshot, Destination, DestinationGroup, RoutingRule, Tenant } from '../snapshot/types';
import { dialledNationalNumber } from './access-number';
import { regionTokensMatch, type CallerGeo } from './geo';
import { describeSlot, isWithinSchedule } from './schedule';

export type Identification =
  | { kind: 'ok'; tenant: Tenant; accessNumber: AccessNumber }
  | { kind: 'unknown_number'; number: string }
  | { kind: 'number_disabled'; accessNumber: AccessNumber; tenant: Tenant }
  | { kind: 'tenant_suspended'; accessNumber: AccessNumber; tenant: Tenant }
  | { kind: 'tenant_closed'; accessNumber: AccessNumber; tenant: Tenant };

/**
 * Which tenant a dialled number reaches. The number is looked up by its national number
 * (access-number.ts): carriers deliver +864001012345, 864001012345 or 4001012345, a switchboard
 * number 02088886666 as 2088886666 too, and the table may spell it +86 400-101-2345; all are one.
 */
export function identify(snapshot: ConfigSnapshot, dialed: string): Identification {
  const key = dialledNationalNumber(dialed);
  const accessNumber = key === null ? undefined : snapshot.accessNumbers.get(key);
  if (accessNumber) {
    const tenant = snapshot.tenants.get(accessNumber.tenantId)!;
    if (!accessNumber.enabled) return { kind: 'number_disabled', accessNumber, tenant };
    if (tenant.status === 'closed') return { kind: 'tenant_closed', accessNumber, tenant };
    if (tenant.status === 'suspended') return { kind: 'tenant_suspended', accessNumber, tenant };
    return { kind: 'ok', tenant, accessNumber };
  }
  return { kind: 'unknown_number', number: dialed.replace(/[^0-9+]/g, '').slice(0, 32) };
}

export interface RuleChoice {
  rule: RoutingRule;
  /** The rules of the winning priority level that matched (the percentage draw was among them). */
  candidates: readonly RoutingRule[];
}

/**
 * SCHEMA.md: the first priority level with a matching enabled rule wins; when several rules of
 * that level match, one is drawn by `percent`. `matches` decides region and schedule conditions;
 * `random` returns [0, 1).
 */
export function chooseRule(
  rules: readonly RoutingRule[],
  accessNumberId: number,
  matches: (rule: RoutingRule) => boolean,
  random: () => number,
): RuleChoice | null {
  let level: RoutingRule[] = [];
  let levelPriority: number | null = null;
  for (const rule of rules) {
    if (levelPriority !== null && rule.priority !== levelPriority) break;
    if (rule.accessNumberId !== null && rule.accessNumberId !== accessNumberId) continue;
    if (!matches(rule)) continue;
    levelPriority = rule.priority;
    level.push(rule);
  }
  if (level.length === 0) return null;
  level = [...level];
  return { rule: drawByPercent(level, random), candidates: level };
}

/**
 * Draws one rule with probability proportional to its percent, in 1 % steps: two rules at 30
 * and 70 get 3 and 7 of every 10 calls. Weights that do not add up to 100 are used as relative
 * weights (config lint reports them).
 */
export function drawByPercent(rules: readonly RoutingRule[], random: () => number): RoutingRule {
  const total = rules.reduce((sum, r) => sum + r.percent, 0);
  let ticket = Math.floor(random() * total);
  for (const rule of rules) {
    if (ticket < rule.percent) return rule;
    ticket -= rule.percent;
  }
  return rules[rules.length - 1];
}

/** A rule condition checked for one call, with the reason an `explain` prints. */
export interface RuleCheck {
  matches: boolean;
  reason: string;
}

/** Region and schedule conditions of a rule, for a caller at an instant (tenant's time zone). */
export function checkRule(snapshot: ConfigSnapshot, tenant: Tenant, rule: RoutingRule, geo: CallerGeo, at: Date): RuleCheck {
  const reasons: string[] = [];
  if (rule.regions !== null) {
    if (!regionTokensMatch(geo, [...rule.regions])) {
      return { matches: false, reason: `caller region ${geo.description ?? geo.country ?? 'unknown'} is not in ${rule.regions.join(',')}` };
    }
    reasons.push(`caller region ${geo.description ?? geo.country} is in ${rule.regions.join(',')}`);
  }
  if (rule.scheduleId !== null) {
    const schedule = snapshot.schedules.get(rule.scheduleId);
    if (!schedule) return { matches: false, reason: `schedule ${rule.scheduleId} is missing` };
    const check = isWithinSchedule(schedule, holidaysOf(snapshot, tenant.id), at, tenant.timezone);
    if (!check.inside) return { matches: false, reason: `outside schedule "${schedule.name}": ${check.reason}` };
    reasons.push(`inside schedule "${schedule.name}": ${check.reason}`);
  }
  return { matches: true, reason: reasons.length > 0 ? reasons.join('; ') : 'no conditions' };
}

export function holidaysOf(snapshot: ConfigSnapshot, tenantId: number): ReadonlySet<string> {
  return snapshot.holidaysByTenant.get(tenantId) ?? snapshot.commonHolidays;
}

/** Whether the tenant is in business hours (no schedule: always). */
export function inBusinessHours(snapshot: ConfigSnapshot, tenant: Tenant, at: Date): RuleCheck {
  if (tenant.businessHoursScheduleId === null) return { matches: true, reason: 'no business-hours schedule: always in hours' };
  const schedule = snapshot.schedules.get(tenant.businessHoursScheduleId);
  if (!schedule) return { matches: true, reason: `business-hours schedule ${tenant.businessHoursScheduleId} is missing: treated as in hours` };
  const check = isWithinSchedule(schedule, holidaysOf(snapshot, tenant.id), at, tenant.timezone);
  const slot = check.slotIndex === null ? '' : ` (${describeSlot(schedule.slots[check.slotIndex])})`;
  return { matches: check.inside, reason: `${check.inside ? 'inside' : 'outside'} "${schedule.name}"${slot}: ${check.reason}` };
}

export interface HuntStep {
  group: DestinationGroup;
  destinations: readonly Destination[];
  ringTimeoutS: number;
}

/** How the call session orders one group's destinations (strategy, rotation, caller memory). */
export type DestinationOrder = (group: DestinationGroup) => readonly Destination[];

/**
 * The groups a call hunts through: the chosen group, then its failover_group_id chain. A chain
 * that loops back, or runs longer than maxGroups, stops there (loop protection).
 */
export function huntPlan(
  snapshot: ConfigSnapshot,
  tenant: Tenant,
  firstGroupId: number,
  maxGroups: number,
  order: DestinationOrder = (g) => g.destinations,
): HuntStep[] {
  const steps: HuntStep[] = [];
  const seen = new Set<number>();
  let groupId: number | null = firstGroupId;
  while (groupId !== null && !seen.has(groupId) && steps.length < maxGroups) {
    seen.add(groupId);
    const group = snapshot.groups.get(groupId);
    if (!group || group.tenantId !== tenant.id) break;
    steps.push({ group, destinations: order(group), ringTimeoutS: Math.min(60, group.ringTimeoutS ?? tenant.ringTimeoutS) });
    groupId = group.failoverGroupId;
  }
  return steps;
}

export interface OrderOptions {
  random: () => number;
  /** round_robin: how many calls the group has handed out before this one (shared by daemons). */
  rotation?: number;
  /** Caller memory: the number that answered this caller last time, tried first if in the group. */
  preferred?: string | null;
}

/**
 * Hunting order for a group by its strategy. `simultaneous` keeps position order (all ring at
 * once). `weighted` draws without replacement in proportion to weight (weight 0 comes last).
 * Caller memory then moves the remembered phone to the front.
 */
export function orderDestinations(group: DestinationGroup, options: OrderOptions): Destination[] {
  const list = [...group.destinations];
  let ordered: Destination[];
  switch (group.strategy) {
    case 'random':
      ordered = shuffle(list, options.random);
      break;
    case 'round_robin': {
      const start = list.length === 0 ? 0 : ((options.rotation ?? 0) % list.length + list.length) % list.length;
      ordered = [...list.slice(start), ...list.slice(0, start)];
      break;
    }
    case 'weighted':
      ordered = weightedOrder(list, options.random);
      break;
    default:
      ordered = list;
  }
  if (options.preferred) {
    const index = ordered.findIndex((d) => d.number === options.preferred);
    if (index > 0) ordered = [ordered[index], ...ordered.slice(0, index), ...ordered.slice(index + 1)];
  }
  return ordered;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

function weightedOrder(items: Destination[], random: () => number): Destination[] {
  const pool = items.filter((d) => d.weight > 0);
  const out: Destination[] = [];
  while (pool.length > 0) {
    const total = pool.reduce((sum, d) => sum + d.weight, 0);
    let ticket = random() * total;
    let index = pool.findIndex((d) => (ticket -= d.weight) < 0);
    if (index < 0) index = pool.length - 1;
    out.push(...pool.splice(index, 1));
  }
  return [...out, ...items.filter((d) => d.weight <= 0)];
}

/** FreeSWITCH's bridge takes at most 128 legs per dial string (MAX_PEERS, switch_ivr_originate.c). */
export const MAX_BRIDGE_LEGS = 128;

/**
 * How a step's destinations are dialled: one bridge per phone, or — simultaneous ring — all
 * phones in one bridge, in chunks of at most MAX_BRIDGE_LEGS.
 */
export function dialBatches(step: HuntStep): Destination[][] {
  if (step.group.strategy !== 'simultaneous') return step.destinations.map((d) => [d]);
  const out: Destination[][] = [];
  for (let i = 0; i < step.destinations.length; i += MAX_BRIDGE_LEGS) out.push(step.destinations.slice(i, i + MAX_BRIDGE_LEGS));
  return out;
}

export type LegOutcome = 'answered' | 'busy' | 'no_answer' | 'failed' | 'cancelled';

/** Classifies a finished bridge from FreeSWITCH's DIALSTATUS / originate_disposition. */
export function classifyLeg(dialStatus: string, disposition: string): LegOutcome {
  if (dialStatus === 'SUCCESS' || disposition === 'SUCCESS') return 'answered';
  if (dialStatus === 'CANCEL' || disposition === 'ORIGINATOR_CANCEL') return 'cancelled';
  if (dialStatus === 'BUSY' || disposition === 'USER_BUSY') return 'busy';
  if (['NOANSWER', 'ALLOTTED_TIMEOUT'].includes(dialStatus) || ['NO_ANSWER', 'ALLOTTED_TIMEOUT', 'NO_USER_RESPONSE', 'RECOVERY_ON_TIMER_EXPIRE'].includes(disposition)) return 'no_answer';
  return 'failed';
}

/** What a finished hunt means for the CDR: answered beats everything; all-busy is busy. */
export function huntOutcome(legs: readonly LegOutcome[]): 'answered' | 'busy' | 'no_answer' {
  if (legs.includes('answered')) return 'answered';
  if (legs.length > 0 && legs.every((l) => l === 'busy')) return 'busy';
  return 'no_answer';
}
