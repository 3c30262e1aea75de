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

/**
 * The offset a DBA reads into an `Etc/GMT+N` zone that the runtime does not: POSIX gives those
 * zones the inverted sign, so `Etc/GMT+8` is UTC-08:00, not the UTC+08:00 of China a DBA here
 * writes it for (business hours would open 16 hours late). Returns the offset the runtime reads,
 * as `UTC-08:00`, for `Etc/GMT+1` … `Etc/GMT+12` (any case, spaces around); else null. Not
 * `Etc/GMT-N`: that is the usual, correct spelling of the eastern offsets (`Etc/GMT-8` is China's).
 */
export function westernEtcZoneOffset(zone: string): string | null {
  const m = /^etc\/gmt\+(\d{1,2})$/i.exec(zone.trim());
  if (!m || Number(m[1]) === 0) return null;
  return `UTC-${m[1].padStart(2, '0')}:00`;
}
