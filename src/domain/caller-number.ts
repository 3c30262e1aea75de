/**
 * The caller number as every part of the daemon sees it (pure): screening, rating, the CDR,
 * `route explain`, the PIN lockout and caller-memory keys, the caller ID shown to the callee, and
 * the metrics. FreeSWITCH passes on whatever the caller's side put in the caller ID; the raw text
 * is used nowhere but here.
 *
 * The number is the text's ASCII digits (full-width digits count: NFKC), with a `+` kept when the
 * text starts with one: `13000000123#` is 13000000123, `+86 139-1234-5678` is +8613912345678,
 * `sip:1001@10.0.0.1` is 100110001. Only a caller with no number at all is withheld: no digit
 * (empty, `anonymous`, `unknown`, `Restricted`) or nothing but zeros (`0000000000`). A number that
 * is not a plausible telephone number (a short service number, junk digits) is not withheld: block
 * and allow lists by number and prefix still apply to it; it has no geography.
 */

/** Characters of raw text looked at: a caller ID longer than this is cut before it is read. */
export const MAX_RAW_CHARS = 256;
/** Digits kept (E.164 has at most 15; prefixes such as 0086 and some junk fit, cdrs.caller holds 64). */
export const MAX_DIGITS = 32;

export interface CallerNumber {
  /** `+`? and digits, or '' when withheld. */
  readonly number: string;
  readonly withheld: boolean;
  /**
   * plain: the text was the number already; reduced: other characters were dropped (or the digits
   * cut to MAX_DIGITS); withheld: no number. A metric label (hotline_caller_numbers_total{form}).
   */
  readonly form: 'plain' | 'reduced' | 'withheld';
}

export const CALLER_NUMBER_FORMS = ['plain', 'reduced', 'withheld'] as const;

const WITHHELD: CallerNumber = { number: '', withheld: true, form: 'withheld' };

export function callerNumber(raw: string | null | undefined): CallerNumber {
  if (typeof raw !== 'string' || raw.length === 0) return WITHHELD;
  const text = raw.slice(0, MAX_RAW_CHARS).normalize('NFKC');
  let digits = '';
  for (let i = 0; i < text.length && digits.length < MAX_DIGITS; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) digits += text[i];
  }
  if (digits === '' || /^0+$/.test(digits)) return WITHHELD;
  const number = text.trimStart().startsWith('+') ? `+${digits}` : digits;
  return { number, withheld: false, form: number === raw ? 'plain' : 'reduced' };
}
