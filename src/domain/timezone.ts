import { IANAZone } from 'luxon';

/** Zone names already checked; bounded (a junk tenants.timezone per row cannot grow it for ever). */
const known = new Map<string, boolean>();
const KNOWN_MAX = 1024;

/**
 * True for zones the runtime's ICU knows (Asia/Shanghai, America/New_York …). Memoised: luxon
 * builds an Intl.DateTimeFormat on every check, which was most of the CDR writer's CPU when it
 * ran twice per CDR (bench/PROFILE.md). The ICU data cannot change while the process runs.
 */
export function isValidTimeZone(zone: string): boolean {
  const cached = known.get(zone);
  if (cached !== undefined) return cached;
  const valid = IANAZone.isValidZone(zone);
  if (known.size >= KNOWN_MAX) known.clear();
  known.set(zone, valid);
  return valid;
}
