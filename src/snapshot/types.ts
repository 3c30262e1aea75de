/**
 * The validated, in-memory tenant configuration every call routes from. Built from the
 * DBA-edited tables by load.ts; never mutated after it is built (a reload makes a new one).
 */
import type { Money } from '../domain/money';

export const TENANT_STATUSES = ['active', 'suspended', 'closed'] as const;
export const NUMBER_KINDS = ['hotline', 'switchboard'] as const;
export const STRATEGIES = ['sequential', 'random', 'round_robin', 'simultaneous', 'weighted'] as const;
export const RULE_ACTIONS = ['group', 'ivr', 'switchboard', 'voicemail', 'announce', 'reject'] as const;

export type TenantStatus = (typeof TENANT_STATUSES)[number];
export type NumberKind = (typeof NUMBER_KINDS)[number];
export type HuntStrategy = (typeof STRATEGIES)[number];
export type RuleAction = (typeof RULE_ACTIONS)[number];

export interface Tenant {
  readonly id: number;
  readonly name: string;
  readonly status: TenantStatus;
  readonly timezone: string;
  readonly balance: Money | null;
  readonly pin: string | null;
  readonly pinMaxAttempts: number;
  readonly ringTimeoutS: number;
  readonly recordCalls: boolean;
  readonly voicemailEnabled: boolean;
  readonly callerMemoryHours: number;
  readonly missedCallNotify: string | null;
  readonly maxCallsDay: number | null;
  readonly maxCallsMonth: number | null;
  readonly maxSpendDay: Money | null;
  readonly maxSpendMonth: Money | null;
  readonly welcomePromptId: number | null;
  readonly afterHoursPromptId: number | null;
  readonly ringbackPromptId: number | null;
  readonly businessHoursScheduleId: number | null;
  readonly operatorGroupId: number | null;
}

export interface AccessNumber {
  readonly id: number;
  readonly number: string;
  readonly tenantId: number;
  readonly kind: NumberKind;
  readonly enabled: boolean;
}

export interface Destination {
  readonly id: number;
  readonly groupId: number;
  readonly number: string;
  readonly position: number;
  readonly weight: number;
  readonly label: string | null;
}

export interface DestinationGroup {
  readonly id: number;
  readonly tenantId: number;
  readonly name: string;
  readonly strategy: HuntStrategy;
  /** NULL in the table: the tenant's ring timeout applies. */
  readonly ringTimeoutS: number | null;
  readonly maxQueue: number;
  readonly queueTimeoutS: number;
  readonly failoverGroupId: number | null;
  /** Enabled destinations in hunting order (position, then id). */
  readonly destinations: readonly Destination[];
}

export interface RoutingRule {
  readonly id: number;
  readonly tenantId: number;
  readonly accessNumberId: number | null;
  readonly priority: number;
  /** NULL: anywhere; otherwise region tokens (province, city, area code, CN-xx). */
  readonly regions: readonly string[] | null;
  readonly scheduleId: number | null;
  readonly percent: number;
  readonly action: RuleAction;
  readonly targetId: number | null;
}

export interface Prompt {
  readonly id: number;
  readonly tenantId: number | null;
  readonly name: string;
  readonly file: string | null;
  readonly ttsText: string | null;
  readonly language: string | null;
}

/** A row the loader skipped, and why; reported in logs, a metric and `npm run config:lint`. */
export interface RejectedRow {
  readonly table: string;
  readonly id: number | string | null;
  readonly reason: string;
}

export interface ConfigSnapshot {
  readonly version: number;
  readonly loadedAt: Date;
  readonly tenants: ReadonlyMap<number, Tenant>;
  /** Keyed by the number as dialled (digits). */
  readonly accessNumbers: ReadonlyMap<string, AccessNumber>;
  readonly groups: ReadonlyMap<number, DestinationGroup>;
  /** Enabled rules per tenant, sorted by priority then id. */
  readonly rulesByTenant: ReadonlyMap<number, readonly RoutingRule[]>;
  readonly prompts: ReadonlyMap<number, Prompt>;
  readonly rejected: readonly RejectedRow[];
}
