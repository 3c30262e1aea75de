/**
 * What a call will do, decided before it does any of it: a pure function of (configuration
 * snapshot, call facts, clock, random source). The session carries the plan out; `npm run route
 * -- explain` prints the very same plan — one decision path, not a copy that can drift.
 *
 * toAction is the one place a routing rule's action or an IVR option's action becomes what the
 * call does (CallAction); run-action.ts is the one place a CallAction is carried out. Both end in
 * an exhaustiveness check.
 */
import { callPricing } from '../billing/rate-cdr';
import { geocode, isGeoDataLoaded, normalizeCaller, type CallerGeo } from '../domain/geo';
import { callerNumber } from '../domain/caller-number';
import { checkRule, chooseRule, identify, inBusinessHours } from '../domain/routing';
import { screenCaller, type ScreeningResult } from '../domain/screening';
import type { NUMBER_KIND_LABELS } from '../metrics';
import { NO_FILTERS } from '../snapshot/build';
import type { AccessNumber, ConfigSnapshot, IvrAction, RoutingRule, RuleAction, Tenant } from '../snapshot/types';
import { widgetById, type ClickToCallWidget } from '../snapshot/widgets';
import type { ClickToCallMarker, IdentifiedCall } from './call';
import { tenantPrompt, type PromptRef } from './prompt-player';

/** What the call does next. Steps return the next one (or null: the call is over). */
export type CallAction =
  | { readonly kind: 'hunt'; readonly groupId: number }
  | { readonly kind: 'menu'; readonly menuId: number }
  | { readonly kind: 'switchboard' }
  | { readonly kind: 'extension'; readonly extensionId: number }
  /** extensionId null: the tenant's own box. */
  | { readonly kind: 'voicemail'; readonly extensionId: number | null }
  | { readonly kind: 'operator' }
  | { readonly kind: 'announce'; readonly prompt: PromptRef }
  | { readonly kind: 'reject' }
  | { readonly kind: 'goodbye' }
  | { readonly kind: 'unavailable'; readonly reason: string };

export type ActionKind = CallAction['kind'];

export type NumberKindLabel = (typeof NUMBER_KIND_LABELS)[number];

/**
 * The one dispatcher: a routing rule's action (`from` 'rule') or an IVR option's action
 * ('option') with its target_id, as what the call does. `menu` is the menu the option belongs
 * to (for `repeat`).
 */
export function toAction(action: RuleAction | IvrAction, targetId: number | null, from: { kind: 'rule' } | { kind: 'option'; menuId: number }): CallAction {
  const missing = (what: string): CallAction => ({ kind: 'unavailable', reason: `${action} without a ${what} (target_id NULL)` });
  switch (action) {
    case 'group':
      return targetId === null ? missing('group') : { kind: 'hunt', groupId: targetId };
    case 'ivr':
    case 'menu':
      return targetId === null ? missing('menu') : { kind: 'menu', menuId: targetId };
    case 'switchboard':
      return { kind: 'switchboard' };
    case 'extension':
      // No extension given: the caller dials one at the switchboard prompt.
      return targetId === null ? { kind: 'switchboard' } : { kind: 'extension', extensionId: targetId };
    case 'voicemail':
      return { kind: 'voicemail', extensionId: targetId };
    case 'operator':
      return { kind: 'operator' };
    case 'announce':
      return { kind: 'announce', prompt: tenantPrompt(targetId, from.kind === 'rule' ? 'service_unavailable' : 'goodbye') };
    case 'reject':
      return { kind: 'reject' };
    case 'repeat':
      return from.kind === 'option' ? { kind: 'menu', menuId: from.menuId } : missing('menu');
    case 'hangup':
      return { kind: 'goodbye' };
    default: {
      const _never: never = action;
      return _never;
    }
  }
}

export interface CallFactsIn {
  dialed: string;
  /** The caller ID as received; planCall reads it with callerNumber(). */
  caller: string;
  at: Date;
  /**
   * A click-to-call visitor leg (recognised by its channel variable, src/clicktocall/leg.ts): the
   * visitor is `caller` and the widget's access number `dialed`. Absent: a call someone dialled.
   */
  clickToCall?: ClickToCallMarker | null;
}

/**
 * What a click-to-call adds to the plan: the widget (null when it is no longer in force: the
 * visitor, already on the line, is served all the same) and what the visitor hears first, its
 * answer_prompt_id (NULL: the system ringback.wav, "正在为您接通").
 */
export interface ClickToCallPlan {
  readonly widgetId: number;
  readonly widget: ClickToCallWidget | null;
  readonly answerPrompt: PromptRef;
}

export interface RuleVerdict {
  readonly rule: RoutingRule;
  readonly status: 'matches' | 'no' | 'not reached' | 'other number';
  readonly reason: string;
}

export interface RoutePlan {
  readonly action: CallAction;
  /** The rule drawn, null when none matched. */
  readonly rule: RoutingRule | null;
  /** The matching rules of the winning priority level (the percentage draw was among them). */
  readonly candidates: readonly RoutingRule[];
  /** Every enabled rule of the tenant as the decision saw it. */
  readonly verdicts: readonly RuleVerdict[];
  readonly reason: string;
}

export interface GreetingPlan {
  readonly prompt: PromptRef;
  readonly inHours: boolean;
  readonly reason: string;
}

export type CallPlan =
  | { readonly kind: 'not_in_service'; readonly reason: 'unknown_number' | 'number_disabled' | 'tenant_closed'; readonly tenant: Tenant | null; readonly accessNumber: AccessNumber | null }
  | { readonly kind: 'suspended'; readonly tenant: Tenant; readonly accessNumber: AccessNumber }
  | { readonly kind: 'blocked'; readonly call: IdentifiedCall; readonly screening: ScreeningResult }
  | {
      readonly kind: 'serve';
      readonly call: IdentifiedCall;
      readonly screening: ScreeningResult;
      /** PIN access: the tenant's PIN must be keyed first (never for a click-to-call: the tenant's own page invited the visitor). */
      readonly pin: boolean;
      readonly greeting: GreetingPlan;
      readonly route: RoutePlan;
      readonly clickToCall: ClickToCallPlan | null;
    };

/** What the caller hears first, in order (the call plays them as one, see Call.takeGreeting): a click-to-call's answer prompt, then the greeting. */
export function openingPrompts(plan: { readonly greeting: GreetingPlan; readonly clickToCall: ClickToCallPlan | null }): PromptRef[] {
  return plan.clickToCall ? [plan.clickToCall.answerPrompt, plan.greeting.prompt] : [plan.greeting.prompt];
}

/** Geography of a caller number (callerNumber().number); an unusable number (or data not loaded) is simply unknown. */
export function callerGeo(caller: string): CallerGeo {
  if (isGeoDataLoaded()) return geocode(caller);
  // Without the geocoding data the number itself still tells whether the caller is anonymous.
  return { e164: normalizeCaller(caller), country: null, province: null, city: null, areaCode: null, isMobile: false, description: null };
}

/**
 * The `number_kind` label of a call (hotline_calls_started_total, _ended_total, talk seconds): the
 * kind of the access number the dialled number names, in any spelling (+86…, 0086…, 86…), as
 * identification finds it — whether or not the number or its tenant is in service — else unknown.
 * One function for every counter, so a call is labelled the same at its start and its end.
 */
export function numberKindLabel(snapshot: ConfigSnapshot, dialed: string): NumberKindLabel {
  const id = identify(snapshot, dialed);
  return id.kind === 'unknown_number' ? 'unknown' : id.accessNumber.kind;
}

/** Everything the call will do, in order: identification, screening, greeting, PIN, route. */
export function planCall(snapshot: ConfigSnapshot, facts: CallFactsIn, random: () => number): CallPlan {
  const id = identify(snapshot, facts.dialed);
  if (id.kind === 'unknown_number') return { kind: 'not_in_service', reason: id.kind, tenant: null, accessNumber: null };
  if (id.kind === 'number_disabled' || id.kind === 'tenant_closed') return { kind: 'not_in_service', reason: id.kind, tenant: id.tenant, accessNumber: id.accessNumber };
  if (id.kind === 'tenant_suspended') return { kind: 'suspended', tenant: id.tenant, accessNumber: id.accessNumber };
  const { tenant, accessNumber } = id;
  // The one reading of the caller ID (raw text goes no further than this).
  const caller = callerNumber(facts.caller);
  const geo = callerGeo(caller.number);
  const call: IdentifiedCall = {
    tenant,
    accessNumber,
    geo,
    pricing: callPricing(snapshot, tenant.id, geo, accessNumber.homeAreaCode),
    caller: caller.number,
    dialed: facts.dialed,
    clickToCall: facts.clickToCall ?? null,
  };
  const screening = screenCaller(tenant, snapshot.filtersByTenant.get(tenant.id) ?? NO_FILTERS, caller, geo);
  if (screening.verdict === 'blocked') return { kind: 'blocked', call, screening };
  const hours = inBusinessHours(snapshot, tenant, facts.at);
  return {
    kind: 'serve',
    call,
    screening,
    pin: tenant.pin !== null && !call.clickToCall,
    clickToCall: call.clickToCall ? clickToCallPlan(snapshot, call.clickToCall) : null,
    greeting: {
      prompt: hours.matches ? tenantPrompt(tenant.welcomePromptId, 'welcome') : tenantPrompt(tenant.afterHoursPromptId, 'after_hours'),
      inHours: hours.matches,
      reason: hours.reason,
    },
    route: planRoute(snapshot, call, facts.at, random),
  };
}

function clickToCallPlan(snapshot: ConfigSnapshot, marker: ClickToCallMarker): ClickToCallPlan {
  const widget = widgetById(snapshot, marker.widgetId) ?? null;
  return { widgetId: marker.widgetId, widget, answerPrompt: tenantPrompt(widget?.answerPromptId ?? null, 'ringback') };
}

/**
 * SCHEMA.md: the first priority level with a matching enabled rule (for this access number or
 * all of them) wins; several matching rules of that level are drawn by percent. A switchboard
 * number without a matching rule is the switchboard.
 */
export function planRoute(snapshot: ConfigSnapshot, call: Pick<IdentifiedCall, 'tenant' | 'accessNumber' | 'geo'>, at: Date, random: () => number): RoutePlan {
  const { tenant, accessNumber, geo } = call;
  const rules = snapshot.rulesByTenant.get(tenant.id) ?? [];
  const seen = new Map<number, { matches: boolean; reason: string }>();
  const choice = chooseRule(rules, accessNumber.id, (rule) => {
    const check = checkRule(snapshot, tenant, rule, geo, at);
    seen.set(rule.id, check);
    return check.matches;
  }, random);
  const verdicts: RuleVerdict[] = rules.map((rule) => {
    const check = seen.get(rule.id);
    if (check) return { rule, status: check.matches ? 'matches' : 'no', reason: check.reason };
    if (rule.accessNumberId !== null && rule.accessNumberId !== accessNumber.id) return { rule, status: 'other number', reason: `only for access number ${rule.accessNumberId}` };
    return { rule, status: 'not reached', reason: 'a lower priority level already matched' };
  });
  if (!choice) {
    if (accessNumber.kind === 'switchboard') {
      return { action: { kind: 'switchboard' }, rule: null, candidates: [], verdicts, reason: 'no rule matches: a switchboard number goes to the switchboard' };
    }
    return { action: { kind: 'unavailable', reason: 'no routing rule matches' }, rule: null, candidates: [], verdicts, reason: 'no rule matches' };
  }
  return { action: toAction(choice.rule.action, choice.rule.targetId, { kind: 'rule' }), rule: choice.rule, candidates: choice.candidates, verdicts, reason: `rule ${choice.rule.id}` };
}
