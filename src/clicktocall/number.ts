/**
 * Which visitor numbers the platform will call (pure). The public key is in a web page, so anyone
 * can ask the daemon to ring any number: only callable subscriber numbers pass. With
 * libphonenumber's full metadata: a valid number of type MOBILE, FIXED_LINE or
 * FIXED_LINE_OR_MOBILE. Refused: premium rate, shared cost (China's 400), toll free (800), UAN,
 * VoIP, personal, pager and voicemail numbers, short and service numbers (110, 10086, 95555: not
 * valid full numbers), anything outside +86 unless the widget allows international calls, and
 * satellite numbers whatever the widget allows: libphonenumber types them MOBILE, and they are
 * the classic target of revenue-share fraud (a call costs the carrier dollars a minute, billed
 * to the tenant at its mobile or international rate). Those are the non-geographic country codes
 * (+870 Inmarsat, +881 satellite networks, +882/+883 international networks, +888, +979
 * premium: no region) and China's satellite ranges 1349, 17400-17405 and 1749.
 */
import { parsePhoneNumberFromString, type NumberType } from 'libphonenumber-js/max';

const CALLABLE: ReadonlySet<NumberType> = new Set(['MOBILE', 'FIXED_LINE', 'FIXED_LINE_OR_MOBILE']);

/** China's satellite mobile ranges (national significant number): China Satcom's 1349, Tiantong's 17400-17405 and 1749. */
const CN_SATELLITE = /^(?:1349|1740[0-5]|1749)/;

export type VisitorNumber =
  | { ok: true; /** What is dialled: national digits in China (0 + area code for fixed lines), 00 + E.164 digits abroad. */ dial: string; e164: string; country: string }
  | { ok: false; code: 'CTC_ERR_INVALID_NUMBER' | 'CTC_ERR_NUMBER_NOT_CALLABLE'; reason: string };

export function checkVisitorNumber(raw: string, opts: { allowInternational: boolean }): VisitorNumber {
  // NFKC: full-width digits and ＋ from Chinese input methods; separators people type are dropped.
  const text = raw.normalize('NFKC').replace(/[\s\-‐‑–—().]/g, '');
  if (!/^(\+|00)?[0-9]{3,20}$/.test(text)) return { ok: false, code: 'CTC_ERR_INVALID_NUMBER', reason: 'not_digits' };
  const parsed = parsePhoneNumberFromString(text.replace(/^00/, '+'), 'CN');
  if (!parsed || !parsed.isValid()) return { ok: false, code: 'CTC_ERR_INVALID_NUMBER', reason: 'not_a_valid_number' };
  const type = parsed.getType();
  if (type === undefined || !CALLABLE.has(type)) {
    return { ok: false, code: 'CTC_ERR_NUMBER_NOT_CALLABLE', reason: (type ?? 'unknown_type').toLowerCase() };
  }
  // A country calling code of no region: satellite and international networks (+870, +881 …).
  if (parsed.country === undefined) return { ok: false, code: 'CTC_ERR_NUMBER_NOT_CALLABLE', reason: 'non_geographic' };
  const country = parsed.country;
  if (parsed.countryCallingCode !== '86') {
    if (!opts.allowInternational) return { ok: false, code: 'CTC_ERR_NUMBER_NOT_CALLABLE', reason: 'international' };
    return { ok: true, dial: `00${parsed.number.slice(1)}`, e164: parsed.number, country };
  }
  const nsn = parsed.nationalNumber;
  if (CN_SATELLITE.test(nsn)) return { ok: false, code: 'CTC_ERR_NUMBER_NOT_CALLABLE', reason: 'satellite' };
  return { ok: true, dial: type === 'MOBILE' ? nsn : `0${nsn}`, e164: parsed.number, country: 'CN' };
}
