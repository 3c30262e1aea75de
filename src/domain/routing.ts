/**
 * Routing decisions as pure functions of (config snapshot, call facts, random source). No I/O,
 * no clock reads: the CallSession carries out what these return, tests run them without sockets.
 */
import type { AccessNumber, ConfigSnapshot, Destination, DestinationGroup, RoutingRule, Tenant } from '../snapshot/types';

export type Identification =
  | { kind: 'ok'; tenant: Tenant; accessNumber: AccessNumber }
  | { kind: 'unknown_number'; number: string }
  | { kind: 'number_disabled'; accessNumber: AccessNumber; tenant: Tenant }
  | { kind: 'tenant_suspended'; accessNumber: AccessNumber; tenant: Tenant }
  | { kind: 'tenant_closed'; accessNumber: AccessNumber; tenant: Tenant };

/**
 * The access number as the daemon keys it: digits only, with a +86/0086/86 country prefix
 * removed when that is what makes it a known number (carriers deliver 400 numbers either way).
 */
export function accessNumberCandidates(dialed: string): string[] {
  const digits = dialed.replace(/[^0-9]/g, '');
  const out = [digits];
  for (const prefix of ['0086', '86']) {
    if (digits.startsWith(prefix) && digits.length > prefix.length + 3) out.push(digits.slice(prefix.length));
  }
  return out;
}

export function identify(snapshot: ConfigSnapshot, dialed: string): Identification {
  for (const candidate of accessNumberCandidates(dialed)) {
    const accessNumber = snapshot.accessNumbers.get(candidate);
    if (!accessNumber) continue;
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

export interface HuntStep {
  group: DestinationGroup;
  destinations: readonly Destination[];
  ringTimeoutS: number;
}

/**
 * The groups a call hunts through: the chosen group, then its failover_group_id chain. A chain
 * that loops back, or runs longer than maxGroups, stops there (loop protection).
 */
export function huntPlan(snapshot: ConfigSnapshot, tenant: Tenant, firstGroupId: number, maxGroups: number): HuntStep[] {
  const steps: HuntStep[] = [];
  const seen = new Set<number>();
  let groupId: number | null = firstGroupId;
  while (groupId !== null && !seen.has(groupId) && steps.length < maxGroups) {
    seen.add(groupId);
    const group = snapshot.groups.get(groupId);
    if (!group || group.tenantId !== tenant.id) break;
    steps.push({ group, destinations: orderDestinations(group), ringTimeoutS: Math.min(60, group.ringTimeoutS ?? tenant.ringTimeoutS) });
    groupId = group.failoverGroupId;
  }
  return steps;
}

/** Hunting order for a group; `sequential` is position order (other strategies: the call-flow issue). */
export function orderDestinations(group: DestinationGroup): readonly Destination[] {
  return group.destinations;
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
