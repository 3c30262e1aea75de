/**
 * `npm run route -- explain …`: every decision a call would go through, and why, from the live
 * configuration — with the same functions the call session uses, so the explanation cannot drift
 * from what calls do. Database state (usage against caps, PIN lockout, caller memory, round-robin
 * position) is read, never changed.
 */
import type { Knex } from 'knex';
import { geocode } from '../domain/geo';
import { formatMoney } from '../domain/money';
import { checkRule, huntPlan, identify, inBusinessHours, orderDestinations } from '../domain/routing';
import { screenCaller } from '../domain/screening';
import { NO_FILTERS } from '../snapshot/build';
import { explainFindings } from '../snapshot/findings';
import type { ConfigSnapshot } from '../snapshot/types';
import { hasLimits, lastAnsweredBy, pinLockedUntil, usagePeriods } from './call-state';

export interface ExplainFacts {
  dialed: string;
  caller: string;
  at: Date;
}

export async function explainCall(snapshot: ConfigSnapshot, facts: ExplainFacts, knex: Knex | null, maxFailoverGroups = 10): Promise<string[]> {
  const out: string[] = [];
  const say = (line: string): void => {
    out.push(line);
  };
  say(`call from ${facts.caller} to ${facts.dialed} at ${facts.at.toISOString()} (configuration version ${snapshot.version})`);
  // Rejected rows of this call's tenant (or why its number is not in service): snapshot/findings.ts.
  for (const line of explainFindings(snapshot, facts.dialed)) say(line);
  const id = identify(snapshot, facts.dialed);
  if (id.kind === 'unknown_number' || id.kind === 'number_disabled' || id.kind === 'tenant_closed') {
    say(`1 identify: ${id.kind.replace('_', ' ')} → not_in_service.wav, hang up UNALLOCATED_NUMBER (outcome announced)`);
    return out;
  }
  const { tenant, accessNumber } = id;
  say(`1 identify: access number ${accessNumber.number} (id ${accessNumber.id}, ${accessNumber.kind}) → tenant ${tenant.id} "${tenant.name}", ${tenant.status}, zone ${tenant.timezone}`);
  if (id.kind === 'tenant_suspended') {
    say('  tenant suspended → suspended.wav, hang up CALL_REJECTED (outcome announced)');
    return out;
  }
  const geo = geocode(facts.caller);
  say(`2 caller: ${geo.e164 ?? 'withheld/unusable number'}${geo.description ? `, ${geo.description}` : geo.country ? `, ${geo.country}` : ''}${geo.areaCode ? `, area code 0${geo.areaCode}` : ''}${geo.isMobile ? ', mobile' : ''}`);
  const screening = screenCaller(tenant, snapshot.filtersByTenant.get(tenant.id) ?? NO_FILTERS, facts.caller, geo);
  say(`3 screening: ${screening.verdict} — ${screening.reason}`);
  if (screening.verdict === 'blocked') {
    say(`  → ${tenant.blockedAction === 'silent' ? 'silent CALL_REJECTED' : 'blocked announcement, CALL_REJECTED'} (outcome blocked)`);
    return out;
  }
  if (!hasLimits(tenant)) say('4 admission: no caps and postpaid → admitted without a database check');
  else {
    const { day, month } = usagePeriods(facts.at, tenant.timezone);
    say(`4 admission: periods day ${day}, month ${month} (${tenant.timezone})`);
    if (knex) {
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
  }
  if (tenant.pin !== null) {
    const locked = knex ? await pinLockedUntil(knex, tenant.id, facts.caller, facts.at) : null;
    say(`5 PIN: ${tenant.pin.length} digits, ${tenant.pinMaxAttempts} attempts${locked ? `; this caller is LOCKED OUT until ${locked.toISOString()}` : ''}`);
  } else say('5 PIN: none');
  const hours = inBusinessHours(snapshot, tenant, facts.at);
  say(`6 greeting: ${hours.matches ? 'welcome' : 'after-hours'} prompt — ${hours.reason}`);
  const rules = snapshot.rulesByTenant.get(tenant.id) ?? [];
  say(`7 routing rules (${rules.length} enabled, lowest priority first):`);
  let level: number | null = null;
  const matching = [];
  for (const rule of rules) {
    const forNumber = rule.accessNumberId === null || rule.accessNumberId === accessNumber.id;
    const check = forNumber ? checkRule(snapshot, tenant, rule, geo, facts.at) : { matches: false, reason: `only for access number ${rule.accessNumberId}` };
    const decided = level !== null && rule.priority !== level;
    say(`  rule ${rule.id} priority ${rule.priority} ${rule.action}${rule.targetId === null ? '' : ` ${rule.targetId}`} ${rule.percent}%: ${decided ? 'not reached' : check.matches ? 'MATCHES' : 'no'} — ${check.reason}`);
    if (!decided && check.matches) {
      level = rule.priority;
      matching.push(rule);
    }
  }
  if (matching.length === 0) {
    say('  no rule matches → service_unavailable.wav (outcome failed)');
    return out;
  }
  const total = matching.reduce((s, r) => s + r.percent, 0);
  say(`  chosen from priority ${level}: ${matching.map((r) => `rule ${r.id} with ${Math.round((r.percent * 100) / total)}% of calls`).join(', ')}`);
  for (const rule of matching.filter((r) => r.action === 'group')) {
    const preferred = knex && tenant.callerMemoryHours > 0 && geo.e164
      ? await lastAnsweredBy(knex, tenant.id, facts.caller, new Date(facts.at.getTime() - tenant.callerMemoryHours * 3_600_000))
      : null;
    if (preferred) say(`8 caller memory: ${preferred} answered this caller within ${tenant.callerMemoryHours} h → rings first`);
    const rotations = new Map<number, number>();
    if (knex) {
      const rows: Array<{ group_id: number; next_index: number }> = await knex('group_rotation').select('group_id', 'next_index');
      for (const r of rows) rotations.set(Number(r.group_id), Number(r.next_index));
    }
    const plan = huntPlan(snapshot, tenant, rule.targetId!, maxFailoverGroups, (g) =>
      orderDestinations(g, { random: () => 0, rotation: rotations.get(g.id) ?? 0, preferred }));
    say(`9 hunt for rule ${rule.id}:`);
    for (const step of plan) {
      const g = step.group;
      const order = g.strategy === 'random' || g.strategy === 'weighted' ? ' (drawn per call; one possible order)' : g.strategy === 'simultaneous' ? ' (all at once)' : '';
      say(`  group ${g.id} "${g.name}" ${g.strategy}, ring ${step.ringTimeoutS} s${g.maxQueue > 0 ? `, queue ${g.maxQueue} for ${g.queueTimeoutS} s` : ''}: ${step.destinations.map((x) => x.number).join(' → ') || '(no enabled phones)'}${order}`);
    }
    say('  nobody answers → nobody_answered.wav (NO_ANSWER), all busy → all_busy.wav (USER_BUSY)');
  }
  return out;
}
