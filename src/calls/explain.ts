/**
 * `npm run route -- explain …`: what a call would do, and why, from the live configuration. It
 * prints the plan calls carry out (plan.ts planCall: identification, screening, greeting, PIN,
 * the rule and its action), so the explanation cannot drift from what calls do, then what the
 * action does (a hunt in order, a menu tree, the switchboard's extensions, a voicemail box).
 * Database state (usage against caps, PIN lockout, caller memory, round-robin position) is read,
 * never changed.
 */
import type { Knex } from 'knex';
import { chargedPeriodStarts } from '../billing/usage';
import { callerNumber } from '../domain/caller-number';
import { formatMoney } from '../domain/money';
import { tenantExtension } from '../snapshot/build';
import { explainFindings } from '../snapshot/findings';
import type { ConfigSnapshot, Tenant } from '../snapshot/types';
import type { IdentifiedCall } from './call';
import { hasLimits, lastAnsweredBy, pinLockedUntil } from './call-state';
import { planCall, toAction, type CallAction, type CallFactsIn } from './plan';
import type { PromptRef } from './prompt-player';
import { callerMemorySince, orderedHuntPlan } from './steps/hunt';

export type ExplainFacts = CallFactsIn;

export async function explainCall(
  snapshot: ConfigSnapshot,
  facts: ExplainFacts,
  knex: Knex | null,
  maxFailoverGroups = 10,
  random: () => number = Math.random,
): Promise<string[]> {
  const out: string[] = [];
  const say = (line: string): void => {
    out.push(line);
  };
  const caller = callerNumber(facts.caller);
  say(`call from ${caller.withheld ? 'a withheld number' : caller.number}${caller.form === 'reduced' ? ' (the caller ID reduced to its digits)' : ''} to ${facts.dialed} at ${facts.at.toISOString()} (configuration version ${snapshot.version})`);
  // Rejected rows of this call's tenant (or why its number is not in service): snapshot/findings.ts.
  for (const line of explainFindings(snapshot, facts.dialed)) say(line);
  const plan = planCall(snapshot, facts, random);
  if (plan.kind === 'not_in_service') {
    say(`1 identify: ${plan.reason.replace('_', ' ')} → not_in_service.wav, hang up UNALLOCATED_NUMBER (outcome announced)`);
    return out;
  }
  const { tenant, accessNumber } = plan.kind === 'suspended' ? plan : plan.call;
  say(`1 identify: access number ${accessNumber.number} (id ${accessNumber.id}, ${accessNumber.kind}) → tenant ${tenant.id} "${tenant.name}", ${tenant.status}, zone ${tenant.timezone}`);
  if (plan.kind === 'suspended') {
    say('  tenant suspended → suspended.wav, hang up CALL_REJECTED (outcome announced)');
    return out;
  }
  const { call, screening } = plan;
  const geo = call.geo;
  say(`2 caller: ${geo.e164 ?? 'withheld/unusable number'}${geo.description ? `, ${geo.description}` : geo.country ? `, ${geo.country}` : ''}${geo.areaCode ? `, area code 0${geo.areaCode}` : ''}${geo.isMobile ? ', mobile' : ''}; ${call.pricing.callType} call${call.pricing.rate ? ` at ${formatMoney(call.pricing.rate.perMinute)}/min in ${call.pricing.rate.incrementS} s steps` : ', no rate (free)'}`);
  say(`3 screening: ${screening.verdict} — ${screening.reason}`);
  if (plan.kind === 'blocked') {
    say(`  → ${tenant.blockedAction === 'silent' ? 'silent CALL_REJECTED' : 'blocked announcement, CALL_REJECTED'} (outcome blocked)`);
    return out;
  }
  await explainAdmission(say, tenant, facts, knex);
  if (plan.pin) {
    const locked = knex ? await pinLockedUntil(knex, tenant.id, call.caller, facts.at) : null;
    say(`5 PIN: ${tenant.pin?.length ?? 0} digits, ${tenant.pinMaxAttempts} attempts${locked ? `; this caller is LOCKED OUT until ${locked.toISOString()}` : ''}`);
  } else say(plan.clickToCall && tenant.pin !== null ? '5 PIN: none for a click-to-call (the tenant\'s own web page invited the visitor)' : '5 PIN: none');
  const c2c = plan.clickToCall;
  if (c2c) {
    const widget = c2c.widget ? `widget ${c2c.widgetId} (key ${c2c.widget.publicKey})` : `widget ${c2c.widgetId}, no longer in force (the visitor is served all the same)`;
    say(`  click-to-call from ${widget}: the visitor answered the platform's call and hears the answer prompt ${describePrompt(snapshot, c2c.answerPrompt)} first, then the greeting; ringback while phones ring is set as transfer_ringback; two legs are billed (the spend guard halves the headroom)`);
  }
  const greeting = plan.greeting;
  const typedOver = plan.pin ? 'the PIN prompt' : plan.route.action.kind === 'menu' ? 'the first menu prompt' : plan.route.action.kind === 'switchboard' ? 'the switchboard prompt' : null;
  say(`6 greeting: ${greeting.inHours ? 'welcome' : 'after-hours'} prompt ${describePrompt(snapshot, greeting.prompt)} — ${greeting.reason}${typedOver ? `; played as one prompt with ${typedOver}, keys typed over it count` : ''}`);
  const route = plan.route;
  say(`7 routing rules (${route.verdicts.length} enabled, lowest priority first):`);
  for (const v of route.verdicts) {
    const rule = v.rule;
    const status = v.status === 'matches' ? 'MATCHES' : v.status === 'other number' ? 'no' : v.status;
    say(`  rule ${rule.id} priority ${rule.priority} ${rule.action}${rule.targetId === null ? '' : ` ${rule.targetId}`} ${rule.percent}%: ${status} — ${v.reason}`);
  }
  if (route.rule) {
    const total = route.candidates.reduce((s, r) => s + r.percent, 0);
    say(`  chosen from priority ${route.rule.priority}: ${route.candidates.map((r) => `rule ${r.id} with ${Math.round((r.percent * 100) / total)}% of calls`).join(', ')}${route.candidates.length > 1 ? `; this explanation drew rule ${route.rule.id}` : ''}`);
    for (const other of route.candidates.filter((r) => r !== route.rule)) {
      say(`  (rule ${other.id} instead would be: ${describeAction(snapshot, toAction(other.action, other.targetId, { kind: 'rule' }))})`);
    }
  } else say(`  ${route.reason}`);
  say(`8 action: ${describeAction(snapshot, route.action)}`);
  await explainAction(say, snapshot, call, route.action, facts, knex, maxFailoverGroups, new Set());
  return out;
}

async function explainAdmission(say: (l: string) => void, tenant: Tenant, facts: ExplainFacts, knex: Knex | null): Promise<void> {
  if (!hasLimits(tenant)) {
    say('4 admission: no caps and postpaid → admitted without a database check');
    return;
  }
  const { day, month } = chargedPeriodStarts(facts.at, tenant.timezone);
  say(`4 admission: periods day ${day}, month ${month} (${tenant.timezone})`);
  if (!knex) return;
  const rows: Array<{ period_kind: string; period_start: string; calls: number; spend: string | number }> = await knex('tenant_usage')
    .where({ tenant_id: tenant.id })
    .whereIn('period_start', [day, month])
    .select('period_kind', 'period_start', 'calls', 'spend');
  const usage = (kind: string, start: string) => rows.find((r) => r.period_kind === kind && r.period_start === start);
  const d = usage('day', day);
  const m = usage('month', month);
  say(`  calls today ${d?.calls ?? 0}/${tenant.maxCallsDay ?? '∞'}, this month ${m?.calls ?? 0}/${tenant.maxCallsMonth ?? '∞'}; spend today ${String(d?.spend ?? 0)}/${tenant.maxSpendDay === null ? '∞' : formatMoney(tenant.maxSpendDay)}, this month ${String(m?.spend ?? 0)}/${tenant.maxSpendMonth === null ? '∞' : formatMoney(tenant.maxSpendMonth)}`);
  if (tenant.balance !== null) {
    const row: { balance: string | number | null } | undefined = await knex('tenants').where({ id: tenant.id }).first('balance');
    say(`  prepaid balance ${String(row?.balance)}`);
  }
}

/** One line: what an action does. */
export function describeAction(snapshot: ConfigSnapshot, action: CallAction): string {
  switch (action.kind) {
    case 'hunt': {
      const g = snapshot.groups.get(action.groupId);
      return g ? `hunt group ${g.id} "${g.name}"` : `hunt group ${action.groupId}, which is missing (nobody_answered.wav)`;
    }
    case 'menu': {
      const m = snapshot.menus.get(action.menuId);
      return m ? `IVR menu ${m.id} "${m.name}"` : `IVR menu ${action.menuId}, which is missing → service_unavailable.wav`;
    }
    case 'switchboard':
      return 'the switchboard: the caller dials an extension (0 for the operator)';
    case 'extension':
      return `ring extension id ${action.extensionId}`;
    case 'voicemail':
      return action.extensionId === null ? "voicemail: the tenant's box" : `voicemail: the box of extension id ${action.extensionId}`;
    case 'operator':
      return 'the operator group';
    case 'announce':
      return `announcement ${describePrompt(snapshot, action.prompt)}, hang up NORMAL_CLEARING (outcome announced)`;
    case 'reject':
      return 'hang up CALL_REJECTED (outcome blocked)';
    case 'goodbye':
      return 'goodbye.wav, hang up NORMAL_CLEARING (outcome announced)';
    case 'unavailable':
      return `${action.reason} → service_unavailable.wav, NORMAL_TEMPORARY_FAILURE (outcome failed)`;
    default: {
      const _never: never = action;
      return _never;
    }
  }
}

function describePrompt(snapshot: ConfigSnapshot, ref: PromptRef): string {
  if (ref.id === null) return `${ref.fallback}.wav (system)`;
  const p = snapshot.prompts.get(ref.id);
  if (!p) return `prompt ${ref.id} (missing: ${ref.fallback}.wav instead)`;
  return `prompt ${p.id} "${p.name}" (${p.file ?? 'TTS'})`;
}

/** What the action does in detail, menus and their options recursively (each menu once). */
async function explainAction(
  say: (l: string) => void,
  snapshot: ConfigSnapshot,
  call: IdentifiedCall,
  action: CallAction,
  facts: ExplainFacts,
  knex: Knex | null,
  maxFailoverGroups: number,
  seenMenus: Set<number>,
  indent = '  ',
): Promise<void> {
  const tenant = call.tenant;
  switch (action.kind) {
    case 'hunt': {
      const since = callerMemorySince(tenant, call.geo.e164, facts.at);
      const preferred = knex && since ? await lastAnsweredBy(knex, tenant.id, call.caller, since) : null;
      if (preferred) say(`${indent}caller memory: ${preferred} answered this caller within ${tenant.callerMemoryHours} h → rings first`);
      const rotations = new Map<number, number>();
      if (knex) {
        const rows: Array<{ group_id: number; next_index: number }> = await knex('group_rotation').select('group_id', 'next_index');
        for (const r of rows) rotations.set(Number(r.group_id), Number(r.next_index));
      }
      const plan = orderedHuntPlan(snapshot, tenant, action.groupId, maxFailoverGroups, { rotation: (id) => rotations.get(id) ?? 0, preferred, random: () => 0 });
      for (const step of plan) {
        const g = step.group;
        const order = g.strategy === 'random' || g.strategy === 'weighted' ? ' (drawn per call; one possible order)' : g.strategy === 'simultaneous' ? ' (all at once)' : '';
        say(`${indent}group ${g.id} "${g.name}" ${g.strategy}, ring ${step.ringTimeoutS} s${g.maxQueue > 0 ? `, queue ${g.maxQueue} for ${g.queueTimeoutS} s` : ''}: ${step.destinations.map((x) => x.number).join(' → ') || '(no enabled phones)'}${order}`);
      }
      say(`${indent}nobody answers → ${tenant.voicemailEnabled ? "the tenant's voicemail" : 'nobody_answered.wav (NO_ANSWER), all busy → all_busy.wav (USER_BUSY)'}`);
      return;
    }
    case 'menu': {
      const menu = snapshot.menus.get(action.menuId);
      if (!menu || menu.tenantId !== tenant.id || seenMenus.has(menu.id)) return;
      seenMenus.add(menu.id);
      say(`${indent}menu ${menu.id} "${menu.name}": prompt ${describePrompt(snapshot, { id: menu.promptId, fallback: 'choose_option' })}, ${menu.digits} digit(s), ${menu.timeoutS} s, ${menu.maxRetries} retries (invalid: ${describePrompt(snapshot, { id: menu.invalidPromptId, fallback: 'invalid_entry' })})`);
      for (const option of menu.options.values()) {
        const next = toAction(option.action, option.targetId, { kind: 'option', menuId: menu.id });
        say(`${indent}  ${option.digits} → ${option.action === 'repeat' ? 'this menu again' : describeAction(snapshot, next)}`);
        if (next.kind === 'menu' && option.action !== 'repeat') await explainAction(say, snapshot, call, next, facts, knex, maxFailoverGroups, seenMenus, `${indent}    `);
      }
      return;
    }
    case 'switchboard': {
      const extensions = [...(snapshot.extensionsByTenant.get(tenant.id)?.values() ?? [])];
      say(`${indent}extensions: ${extensions.map((e) => `${e.ext}${e.name ? ` ${e.name}` : ''} (${e.phones.join(' → ') || 'no phones'}${e.voicemailEnabled ? ', voicemail' : ''})`).join('; ') || '(none)'}`);
      say(`${indent}0 → ${tenant.operatorGroupId === null ? 'no operator: service_unavailable.wav' : `operator group ${tenant.operatorGroupId}`}`);
      return;
    }
    case 'extension': {
      const e = tenantExtension(snapshot.extensionsById, tenant.id, action.extensionId);
      say(`${indent}${e ? `extension ${e.ext}: ${e.phones.join(' → ') || 'no phones'}${e.voicemailEnabled ? ', then its voicemail' : ''}` : 'no such extension → service_unavailable.wav'}`);
      return;
    }
    case 'operator':
      if (tenant.operatorGroupId !== null) await explainAction(say, snapshot, call, { kind: 'hunt', groupId: tenant.operatorGroupId }, facts, knex, maxFailoverGroups, seenMenus, indent);
      return;
    case 'voicemail':
    case 'announce':
    case 'reject':
    case 'goodbye':
    case 'unavailable':
      return;
    default: {
      const _never: never = action;
      return _never;
    }
  }
}
