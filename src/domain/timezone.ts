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

/**
 * The old Java id ICU reads as another zone than the one a DBA of this product means: CST is
 * America/Chicago to ICU but China Standard Time to a DBA who copies it from `date` or MySQL's
 * system_time_zone on a server in China. The other old three-letter ids (JST Tokyo, PST Los
 * Angeles, IST India …) are read as the zone most people mean, and earlier releases took them as
 * such: they stay accepted, so that no tenant's hours move with an upgrade.
 */
const CHINA_MISREAD = new Map([['CST', 'America/Chicago']]);

/** The zone the runtime reads `zone` as (any case, spaces around), when it is CST; else null. No Intl call: this is on the charging path. */
export function legacyZoneAlias(zone: string): string | null {
  return CHINA_MISREAD.get(zone.trim().toUpperCase()) ?? null;
}
