/**
 * The validated, in-memory tenant configuration every call routes from. Built from the
 * DBA-edited tables by load.ts; never mutated after it is built (a reload makes a new one).
 */
import type { Money } from '../domain/money';
import type { Schedule } from '../domain/schedule';
import type { ClickToCallWidget } from './widgets';

/** The configuration tables DBAs edit, parents before children. */
export const CONFIG_TABLES = [
  'tenants', 'access_numbers', 'destination_groups', 'destinations', 'routing_rules', 'prompts', 'schedules', 'schedule_slots',
  'holidays', 'call_filters', 'rates', 'ivr_menus', 'ivr_options', 'extensions', 'extension_phones',
  'click_to_call_widgets',
] as const;

export const TENANT_STATUSES = ['active', 'suspended', 'closed'] as const;
export const NUMBER_KINDS = ['hotline', 'switchboard'] as const;
export const STRATEGIES = ['sequential', 'random', 'round_robin', 'simultaneous', 'weighted'] as const;
export const RULE_ACTIONS = ['group', 'ivr', 'switchboard', 'voicemail', 'announce', 'reject'] as const;
export const FILTER_LISTS = ['block', 'allow'] as const;
export const FILTER_KINDS = ['number', 'prefix', 'region'] as const;
export const CALL_TYPES = ['local', 'long_distance', 'mobile', 'international'] as const;
export const IVR_ACTIONS = ['group', 'menu', 'extension', 'switchboard', 'voicemail', 'operator', 'announce', 'repeat', 'hangup'] as const;

export type TenantStatus = (typeof TENANT_STATUSES)[number];
export type NumberKind = (typeof NUMBER_KINDS)[number];
export type HuntStrategy = (typeof STRATEGIES)[number];
export type RuleAction = (typeof RULE_ACTIONS)[number];
export type CallTypeName = (typeof CALL_TYPES)[number];
export type IvrAction = (typeof IVR_ACTIONS)[number];

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
  /** Callers without a usable number: let them in, or treat them as blocked. */
  readonly anonymousCallers: 'allow' | 'block';
  /** What a blocked or capped caller gets: an announcement, or a silent CALL_REJECTED. */
  readonly blockedAction: 'announce' | 'silent';
  readonly blockedPromptId: number | null;
  /** Failed PIN calls from one caller before a lockout (0 = never), and its length. */
  readonly pinLockoutFailures: number;
  readonly pinLockoutMinutes: number;
}

export interface AccessNumber {
  readonly id: number;
  readonly number: string;
  readonly tenantId: number;
  readonly kind: NumberKind;
  readonly enabled: boolean;
  /** Area code (without trunk 0) the number is local to; null = none (a 400 number). */
  readonly homeAreaCode: string | null;
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

export interface TenantSchedule extends Schedule {
  readonly tenantId: number;
}

/** One tenant's screening lists (call_filters): exact numbers, prefixes, region tokens. */
export interface FilterList {
  readonly numbers: ReadonlySet<string>;
  readonly prefixes: readonly string[];
  readonly regions: readonly string[];
}

export interface TenantFilters {
  readonly block: FilterList;
  readonly allow: FilterList;
}

export interface Rate {
  readonly id: number;
  /** null: the default rate for every tenant without its own. */
  readonly tenantId: number | null;
  readonly callType: CallTypeName;
  readonly perMinute: Money;
  readonly incrementS: number;
  readonly connectFee: Money;
}

export interface IvrOption {
  readonly id: number;
  readonly menuId: number;
  readonly digits: string;
  readonly action: IvrAction;
  readonly targetId: number | null;
}

export interface IvrMenu {
  readonly id: number;
  readonly tenantId: number;
  readonly name: string;
  readonly promptId: number | null;
  readonly digits: number;
  readonly timeoutS: number;
  readonly maxRetries: number;
  readonly invalidPromptId: number | null;
  /** Keyed by the digits a caller keys. */
  readonly options: ReadonlyMap<string, IvrOption>;
}

export interface Extension {
  readonly id: number;
  readonly tenantId: number;
  readonly ext: string;
  readonly name: string | null;
  readonly department: string | null;
  readonly voicemailEnabled: boolean;
  /** Phones in the order they are tried. */
  readonly phones: readonly string[];
}

/** A row the loader skipped, and why; reported in logs, a metric and `npm run config:lint`. */
export interface RejectedRow {
  readonly table: string;
  readonly id: number | string | null;
  readonly reason: string;
}

/**
 * What is in force instead of a rejected row:
 * - `last_good`: the row's last valid version (it was valid before and was edited into a bad state);
 * - `skipped`: nothing (a row that was never valid), and with it the rows in `dependents`;
 * - `link_ignored`: the row, without the link named in `column` (a failover group, a prompt …);
 * - `missing`: the row does not exist; the rows in `dependents` name it and are not in force;
 * - `doubtful`: the row as written, a value the runtime reads otherwise than a DBA likely meant
 *   (`Etc/GMT+8`), with no last good version to keep instead.
 */
export type FindingStatus = 'last_good' | 'skipped' | 'link_ignored' | 'missing' | 'doubtful';

/** One finding per bad row: what is wrong (table, id, column, value, reason) and what is in force. */
export interface ConfigFinding extends RejectedRow {
  readonly status: FindingStatus;
  /** The tenant the row belongs to, when it can be told (NULL for system rows and orphans). */
  readonly tenantId: number | null;
  /** The column at fault; null when the row as a whole is (a missing row). */
  readonly column: string | null;
  /** The value as shown: quoted, cut to 64 characters, "(hidden)" for PINs and passwords. */
  readonly value: string | null;
  /** Rows of other tables not in force because of this one (children of a skipped parent), by table. */
  readonly dependents: Readonly<Record<string, number>>;
  /** updated_at of the rejected version: a new edit is a new finding (logged again). */
  readonly editedAt: string | null;
}

/** Raw rows keyed by table and id. */
export type RowsByTable = ReadonlyMap<string, ReadonlyMap<number, Readonly<Record<string, unknown>>>>;

export interface ConfigSnapshot {
  readonly version: number;
  readonly loadedAt: Date;
  readonly tenants: ReadonlyMap<number, Tenant>;
  /** Keyed by national number (domain/access-number.ts nationalNumber): one key whatever the spelling. */
  readonly accessNumbers: ReadonlyMap<string, AccessNumber>;
  readonly groups: ReadonlyMap<number, DestinationGroup>;
  /** Enabled rules per tenant, sorted by priority then id. */
  readonly rulesByTenant: ReadonlyMap<number, readonly RoutingRule[]>;
  readonly prompts: ReadonlyMap<number, Prompt>;
  readonly schedules: ReadonlyMap<number, TenantSchedule>;
  /** Holidays per tenant ('YYYY-MM-DD'), the all-tenant ones (tenant_id NULL) included. */
  readonly holidaysByTenant: ReadonlyMap<number, ReadonlySet<string>>;
  /** Holidays for every tenant (tenant_id NULL): for tenants without their own. */
  readonly commonHolidays: ReadonlySet<string>;
  readonly filtersByTenant: ReadonlyMap<number, TenantFilters>;
  readonly rates: readonly Rate[];
  readonly menus: ReadonlyMap<number, IvrMenu>;
  /** Per tenant, keyed by the extension's short number. */
  readonly extensionsByTenant: ReadonlyMap<number, ReadonlyMap<string, Extension>>;
  /** The same extensions by id (rules and IVR options name them by id): snapshot/build.ts tenantExtension. */
  readonly extensionsById: ReadonlyMap<number, Extension>;
  /** Click-to-call widgets by public key (disabled ones included). */
  readonly widgets: ReadonlyMap<string, ClickToCallWidget>;
  /** The same widgets by id (a visitor leg names its widget's id). */
  readonly widgetsById: ReadonlyMap<number, ClickToCallWidget>;
  /** One finding per rejected row (see ConfigFinding), in table order then id. */
  readonly rejected: readonly ConfigFinding[];
  /**
   * The raw version of every row in force, by table and id: the last good rows. The next
   * buildSnapshot takes it to keep a row that is edited into a bad state on its last good version,
   * and the on-disk configuration cache stores it.
   */
  readonly lastGood: RowsByTable;
  /** Access numbers not in force (by national number, as accessNumbers), with the finding that says why. */
  readonly numbersNotInForce: ReadonlyMap<string, ConfigFinding>;
}
