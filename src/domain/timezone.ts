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
 * Ids ICU accepts that are not in the tz database: the old Java three-letter ids, each read as
 * one zone although the letters name several. CST is America/Chicago to ICU but China Standard
 * Time to a DBA who copies it from `date` or MySQL's system_time_zone on a server in China; IST
 * is India, not Ireland or Israel; BST is Dhaka, not British Summer Time.
 */
const ICU_LEGACY_IDS = new Set([
  'ACT', 'AET', 'AGT', 'ART', 'AST', 'BET', 'BST', 'CAT', 'CNT', 'CST', 'CTT', 'EAT', 'ECT',
  'IET', 'IST', 'JST', 'MIT', 'NET', 'NST', 'PLT', 'PNT', 'PRT', 'PST', 'SST', 'VST',
]);

/** The zone the runtime would read `zone` as when it is one of those legacy ids (any case); else null. */
export function legacyZoneAlias(zone: string): string | null {
  if (!ICU_LEGACY_IDS.has(zone.toUpperCase()) || !isValidTimeZone(zone)) return null;
  return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
}
