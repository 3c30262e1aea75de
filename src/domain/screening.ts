/**
 * Caller screening (call_filters) as a pure function of (tenant, filters, caller number, caller
 * geography). Order: withheld-caller policy, then block lists (a blocked caller stays blocked
 * whatever the allow lists say), then allow lists. SCHEMA.md: "When a tenant has any allow row of
 * a kind, callers must match one of them" — so each kind with allow rows must be satisfied.
 */
import { afterCountryCode, withoutCountryCode } from './access-number';
import type { CallerNumber } from './caller-number';
import { normalizeCaller, regionTokensMatch, type CallerGeo } from './geo';
import type { FilterList, Tenant, TenantFilters } from '../snapshot/types';

export type ScreeningResult =
  | { verdict: 'pass'; reason: string }
  | { verdict: 'blocked'; reason: string };

/**
 * The spellings a caller number can be listed under: as received (digits only), international
 * without '+' (8613912345678), a foreign caller's with it too (+85291234567: what a foreign prefix
 * matches), national (13912345678, 02088888888 with its trunk 0, and
 * 2088888888 without); a number that is not a plausible telephone number (10086 received as
 * +8610086) also without the country code, as access numbers read it. A filter value is read into
 * one of these (listedNumber, listedPrefix), whatever spelling the DBA typed.
 */
export function numberSpellings(raw: string): string[] {
  const out = new Set<string>();
  const digits = raw.replace(/[^0-9]/g, '');
  if (digits) out.add(digits);
  const e164 = normalizeCaller(raw);
  if (!e164 && digits) {
    out.add(withoutCountryCode(digits));
    // Presented as international (+…, 00…) but no number libphonenumber knows: the + spelling a
    // foreign prefix (listedPrefix: +44…) can match, as it matches an E.164 caller's.
    const international = /^\s*\+/.test(raw) ? digits : /^00[1-9]/.test(digits) ? digits.slice(2) : null;
    if (international !== null && !international.startsWith('86')) out.add(`+${international}`);
  }
  if (e164) {
    // The E.164 form: the one spelling a foreign prefix (+1, +852) is matched against.
    if (!e164.startsWith('+86')) out.add(e164);
    const international = e164.slice(1);
    out.add(international);
    if (international.startsWith('86')) {
      const national = international.slice(2);
      out.add(national);
      // With its trunk 0 unless a mobile: a Beijing line +861012345678 is 01012345678 too (it
      // starts with 1, and a prefix 010 missed it when it came with +86).
      if (!/^1[3-9]\d{9}$/.test(national)) out.add(`0${national}`);
    }
  }
  return [...out];
}

/**
 * A call_filters `number` value (digits, an optional leading +) as the lists hold it: read like a
 * caller number (normalizeCaller), so 008613912345678, 8613912345678, +86 013912345678 and
 * 013912345678 (a trunk 0 before a mobile) are all 13912345678, the national form every Chinese
 * caller's spellings include (another country's number: international, without +). A value that is
 * no plausible telephone number (10086, 95555, +8610086) loses a +86/0086/86 country code as an
 * access number does (10086), which numberSpellings adds for such a caller too.
 */
export function listedNumber(value: string): string {
  const e164 = normalizeCaller(value);
  if (e164 !== null) return e164.startsWith('+86') ? e164.slice(3) : e164.slice(1);
  return withoutCountryCode(value.replace(/^\+/, ''));
}

/**
 * A call_filters `prefix` value (digits, an optional leading +) as the lists hold it: China's
 * country code in any spelling (+86, 0086, 86, and a stray trunk 0 after it) as 86, the start of
 * every Chinese caller's international spelling (0086139 and +86 0139 are 86139; not 139, which
 * would also match a +1 caller's digits for prefix 1); a trunk 0 before a mobile prefix dropped
 * (0139 is 139: no area code starts 013-019, and a mobile's spellings have no trunk 0). Another
 * country's +44… or 0044… (as it is dialled from China) is +44…, which only a caller's
 * international spelling with + matches (numberSpellings): read as 44… or 1…, a prefix +1 (North
 * America) blocked every Chinese mobile, whose national spelling starts with 1, and 00852 matched
 * only a caller presented with 00, never one with +. `00` alone stays 00: no country, never every caller.
 */
export function listedPrefix(value: string): string {
  const digits = value.replace(/^\+/, '');
  // +00852, +0086139: a + typed before the 00 that already says "international".
  if (value.startsWith('+') && !digits.startsWith('0') && !digits.startsWith('86')) return `+${digits}`;
  if (/^00[1-9]/.test(digits) && !digits.startsWith('0086')) return `+${digits.slice(2)}`;
  const national = afterCountryCode(digits, 0);
  if (national !== null) return `86${national.replace(/^0(?=[1-9])/, '')}`;
  return digits.replace(/^0(?=1[3-9])/, '');
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
