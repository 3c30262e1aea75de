/**
 * The 34 provincial-level divisions of China, with their ISO 3166-2 codes in both spellings
 * (the numeric `CN-44` used until 2017 and in our SCHEMA.md, and the current alphabetic `CN-GD`).
 *
 * `name` is spelled exactly as libphonenumber's `zh` geocoding data starts its descriptions:
 * provinces end in 省, the four municipalities in 市, but the five autonomous regions carry
 * their short names only ('广西南宁市', not '广西壮族自治区南宁市'). `fullName` is the official
 * name, accepted in region tokens and mapped onto `name`.
 *
 * Hong Kong, Macao and Taiwan have their own country calling codes (+852, +853, +886), so a
 * caller from there has `country` HK / MO / TW and no province: their entries match by country.
 */
export interface CnProvince {
  /** Current ISO 3166-2 code, e.g. 'CN-GD'. */
  readonly iso: string;
  /** Former numeric ISO 3166-2 code (GB/T 2260 prefix; 91/92 for HK/MO), e.g. 'CN-44'. */
  readonly isoNumeric: string;
  /** As the geocoder spells it at the start of a description, e.g. '广东省', '广西', '北京市'. */
  readonly name: string;
  /** Official full name, e.g. '广西壮族自治区'. */
  readonly fullName: string;
  /** Short name without 省/市, e.g. '广东', '北京', '内蒙古'. */
  readonly shortName: string;
  /** ISO 3166-1 country a caller from there has: 'CN', or 'HK' / 'MO' / 'TW'. */
  readonly country: string;
}

function p(iso: string, num: string, name: string, fullName: string, shortName: string, country = 'CN'): CnProvince {
  return Object.freeze({ iso: `CN-${iso}`, isoNumeric: `CN-${num}`, name, fullName, shortName, country });
}

export const CN_PROVINCES: readonly CnProvince[] = Object.freeze([
  p('BJ', '11', '北京市', '北京市', '北京'),
  p('TJ', '12', '天津市', '天津市', '天津'),
  p('HE', '13', '河北省', '河北省', '河北'),
  p('SX', '14', '山西省', '山西省', '山西'),
  p('NM', '15', '内蒙古', '内蒙古自治区', '内蒙古'),
  p('LN', '21', '辽宁省', '辽宁省', '辽宁'),
  p('JL', '22', '吉林省', '吉林省', '吉林'),
  p('HL', '23', '黑龙江省', '黑龙江省', '黑龙江'),
  p('SH', '31', '上海市', '上海市', '上海'),
  p('JS', '32', '江苏省', '江苏省', '江苏'),
  p('ZJ', '33', '浙江省', '浙江省', '浙江'),
  p('AH', '34', '安徽省', '安徽省', '安徽'),
  p('FJ', '35', '福建省', '福建省', '福建'),
  p('JX', '36', '江西省', '江西省', '江西'),
  p('SD', '37', '山东省', '山东省', '山东'),
  p('HA', '41', '河南省', '河南省', '河南'),
  p('HB', '42', '湖北省', '湖北省', '湖北'),
  p('HN', '43', '湖南省', '湖南省', '湖南'),
  p('GD', '44', '广东省', '广东省', '广东'),
  p('GX', '45', '广西', '广西壮族自治区', '广西'),
  p('HI', '46', '海南省', '海南省', '海南'),
  p('CQ', '50', '重庆市', '重庆市', '重庆'),
  p('SC', '51', '四川省', '四川省', '四川'),
  p('GZ', '52', '贵州省', '贵州省', '贵州'),
  p('YN', '53', '云南省', '云南省', '云南'),
  p('XZ', '54', '西藏', '西藏自治区', '西藏'),
  p('SN', '61', '陕西省', '陕西省', '陕西'),
  p('GS', '62', '甘肃省', '甘肃省', '甘肃'),
  p('QH', '63', '青海省', '青海省', '青海'),
  p('NX', '64', '宁夏', '宁夏回族自治区', '宁夏'),
  p('XJ', '65', '新疆', '新疆维吾尔自治区', '新疆'),
  p('TW', '71', '台湾', '台湾省', '台湾', 'TW'),
  p('HK', '91', '香港', '香港特别行政区', '香港', 'HK'),
  p('MO', '92', '澳门', '澳门特别行政区', '澳门', 'MO'),
]);

const byIso = new Map<string, CnProvince>();
for (const prov of CN_PROVINCES) {
  byIso.set(prov.iso, prov);
  byIso.set(prov.isoNumeric, prov);
}

/** `CN-44` or `CN-GD` (any case, surrounding spaces ignored) → the division, else null. */
export function provinceByIsoCode(code: string): CnProvince | null {
  return byIso.get(code.trim().toUpperCase()) ?? null;
}

/** Spellings a text may start with, longest first so '黑龙江省' wins over '黑龙江'. */
const prefixes: ReadonlyArray<readonly [string, CnProvince]> = CN_PROVINCES.flatMap(
  (prov) => [...new Set([prov.fullName, prov.name, prov.shortName])].map((s) => [s, prov] as const),
).sort((a, b) => b[0].length - a[0].length);

/**
 * Splits a text that starts with a province in any spelling ('广东省广州市', '广西壮族自治区南宁市',
 * '天津', '广东广州') into the division and the rest. Null when it starts with none.
 */
export function splitProvince(text: string): { province: CnProvince; rest: string } | null {
  for (const [prefix, province] of prefixes) {
    if (text.startsWith(prefix)) return { province, rest: text.slice(prefix.length) };
  }
  return null;
}
