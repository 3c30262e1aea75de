/**
 * Caller screening (call_filters) as a pure function of (tenant, filters, caller number, caller
 * geography). Order: withheld-caller policy, then block lists (a blocked caller stays blocked
 * whatever the allow lists say), then allow lists. SCHEMA.md: "When a tenant has any allow row of
 * a kind, callers must match one of them" — so each kind with allow rows must be satisfied.
 */
import type { CallerNumber } from './caller-number';
import { normalizeCaller, regionTokensMatch, type CallerGeo } from './geo';
import type { FilterList, Tenant, TenantFilters } from '../snapshot/types';

export type ScreeningResult =
  | { verdict: 'pass'; reason: string }
  | { verdict: 'blocked'; reason: string };

/**
 * The spellings a caller number can be listed under: as received (digits only), international
 * without '+' (8613912345678), national (13912345678, 02088888888 with its trunk 0, and
 * 2088888888 without). A DBA may have typed any of them.
 */
export function numberSpellings(raw: string): string[] {
  const out = new Set<string>();
  const digits = raw.replace(/[^0-9]/g, '');
  if (digits) out.add(digits);
  const e164 = normalizeCaller(raw);
  if (e164) {
    const international = e164.slice(1);
    out.add(international);
    if (international.startsWith('86')) {
      const national = international.slice(2);
      out.add(national);
      if (!national.startsWith('1')) out.add(`0${national}`);
    }
  }
  return [...out];
}

function listMatch(list: FilterList, kind: 'number' | 'prefix' | 'region', spellings: string[], geo: CallerGeo): string | null {
  if (kind === 'number') {
    const hit = spellings.find((s) => list.numbers.has(s));
    return hit ? `number ${hit}` : null;
  }
  if (kind === 'prefix') {
    for (const prefix of list.prefixes) if (spellings.some((s) => s.startsWith(prefix))) return `prefix ${prefix}`;
    return null;
  }
  for (const token of list.regions) if (regionTokensMatch(geo, [token])) return `region ${token}`;
  return null;
}

function sizeOf(list: FilterList, kind: 'number' | 'prefix' | 'region'): number {
  return kind === 'number' ? list.numbers.size : kind === 'prefix' ? list.prefixes.length : list.regions.length;
}

const KINDS = ['number', 'prefix', 'region'] as const;

/**
 * `caller` is callerNumber()'s reading of the caller ID: only a withheld caller (no number at all)
 * meets the withheld-caller policy; any other caller's digits are matched against the lists, also
 * when the number is not a plausible telephone number (it then has no region).
 */
export function screenCaller(tenant: Tenant, filters: TenantFilters, caller: CallerNumber, geo: CallerGeo): ScreeningResult {
  const anonymous = caller.withheld;
  if (anonymous && tenant.anonymousCallers === 'block') {
    return { verdict: 'blocked', reason: 'withheld caller number, and the tenant blocks anonymous callers' };
  }
  const spellings = anonymous ? [] : numberSpellings(caller.number);
  for (const kind of KINDS) {
    const hit = anonymous ? null : listMatch(filters.block, kind, spellings, geo);
    if (hit) return { verdict: 'blocked', reason: `block list: ${hit}` };
  }
  for (const kind of KINDS) {
    if (sizeOf(filters.allow, kind) === 0) continue;
    const hit = anonymous ? null : listMatch(filters.allow, kind, spellings, geo);
    if (!hit) return { verdict: 'blocked', reason: `allow list of ${kind}s has no entry for this caller${anonymous ? ' (withheld number)' : ''}` };
  }
  return { verdict: 'pass', reason: 'no block-list entry matches; allow lists (if any) satisfied' };
}
