/**
 * One access number, whatever its spelling (pure). A DBA types `+86 400-101-2345`, `0086
 * 4001012345` or `400 101 2345`; a carrier delivers `864001012345` or `4001012345`; a switchboard
 * number 020 8888 6666 arrives as 02088886666, 2088886666 or +862088886666. They are all one
 * number: its national significant number (NSN), the digits after +86 — the key of
 * snapshot.accessNumbers, of the `listed twice` check and of call lookup (identify), so that
 * nothing else compares spellings.
 */

/** Separators people type inside a number (space, dashes, dots, brackets); NFKC first turns full-width ones ASCII. */
const SEPARATORS = /[\s\-‐‑–—().]/g;

/** Most digits an access number holds (access_numbers.number is VARCHAR(32)). */
export const ACCESS_NUMBER_MAX_DIGITS = 32;

/**
 * The number as the daemon dials and shows it: digits only, without a +86/0086/86 country code,
 * a trunk 0 kept as written (02088886666 stays so); another country's +CC… as 00CC…. Null when the text is not a number: anything
 * but digits, separators and one leading +, or fewer than 3 / more than 32 digits.
 */
export function accessNumberDigits(text: string): string | null {
  const compact = text.normalize('NFKC').replace(SEPARATORS, '');
  const m = /^(\+?)([0-9]+)$/.exec(compact);
  if (!m || m[2].length < 3 || m[2].length > ACCESS_NUMBER_MAX_DIGITS) return null;
  // +44…: a foreign number, dialled 0044… (never one of ours without its country code).
  if (m[1] === '+' && !m[2].startsWith('86')) return `00${m[2]}`;
  return withoutCountryCode(m[2]);
}

/**
 * Why digits accessNumberDigits() gave cannot be an access number, or null. China's 400 and 800
 * numbers have exactly 10 digits (400-xxx-xxxx): a national number starting 400 or 800 of
 * another length (`400100001`, `40010000011`: a digit dropped or doubled) is no number a carrier
 * delivers, so a row holding it would take the real number out of service without a word. Checked
 * on the national number, after the +86/0086/86 prefix and a trunk 0 are gone.
 */
export function accessNumberProblem(digits: string): string | null {
  const nsn = trunkless(digits);
  if (/^[48]00/.test(nsn) && nsn.length !== 10) return `starts with ${nsn.slice(0, 3)} but has ${nsn.length} digits: 400 and 800 numbers have 10 (400-xxx-xxxx)`;
  return null;
}

/**
 * The national significant number of an access number in any spelling: accessNumberDigits()
 * without the trunk 0 (02088886666 → 2088886666; an international 00… prefix is not a trunk 0).
 * Null when the text is not a number.
 */
export function nationalNumber(text: string): string | null {
  const digits = accessNumberDigits(text);
  return digits === null ? null : trunkless(digits);
}

/** Digits without a trunk 0 (02088886666 → 2088886666; an international 00… prefix is not one). */
export function trunkless(digits: string): string {
  return /^0[1-9]/.test(digits) ? digits.slice(1) : digits;
}

/**
 * The lookup key of a dialled number as FreeSWITCH passes it (destination_number may carry other
 * characters: only its digits, and a leading +, count). Null when it has fewer than 3 digits.
 */
export function dialledNationalNumber(dialled: string): string | null {
  const text = dialled.normalize('NFKC');
  const digits = text.replace(/[^0-9]/g, '').slice(0, 64);
  return nationalNumber(text.trimStart().startsWith('+') ? `+${digits}` : digits);
}

/** 0086… and 86… (what follows +) lose the country code when at least 4 digits remain (a bare 86 stays). */
export function withoutCountryCode(digits: string): string {
  return afterCountryCode(digits, 4) ?? digits;
}

/**
 * The digits after China's country code written 0086… or 86… (what follows + in +86…), when at
 * least `min` digits follow it; else null. The one reading of the country code: access numbers
 * (withoutCountryCode) and call_filters values (screening.ts) both go through it.
 */
export function afterCountryCode(digits: string, min: number): string | null {
  for (const prefix of ['0086', '86']) {
    if (digits.startsWith(prefix) && digits.length >= prefix.length + min) return digits.slice(prefix.length);
  }
  return null;
}
