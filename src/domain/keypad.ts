/**
 * What a caller can key on a telephone keypad (DTMF), and so which IVR option keys and extension
 * numbers are reachable (pure). One module for the snapshot build, which refuses a key no caller
 * can type (a finding), and for the call steps, which collect keys with the same patterns: a key
 * the build accepts is a key the IVR can match.
 *
 * IVR: a menu collects 1 to `digits` keys of 0-9 and *; `#` ends the entry (the terminator of
 * play_and_get_digits: pressing it alone enters nothing), so an option keyed `#`, or one longer
 * than its menu collects, could never be chosen. Switchboard: an extension is 1 to 16 digits,
 * ended with #; `0` alone is the operator (the enter_extension prompt says so).
 */

/** The key that ends an entry (IVR and switchboard). */
export const TERMINATOR = '#';
/** "0 for the operator" at the switchboard. */
export const OPERATOR_KEY = '0';
/** Most keys an IVR menu collects (ivr_menus.digits) and an extension holds. */
export const MAX_KEYS = 16;

/** Full-width digits (Chinese input methods) and spaces around become what a keypad sends. */
export function keypadText(text: string): string {
  return text.normalize('NFKC').trim();
}

/** The play_and_get_digits regexp of a menu that collects up to `digits` keys. */
export function menuKeysPattern(digits: number): string {
  return `^[0-9*]{1,${digits}}$`;
}

/** The play_and_get_digits regexp of the switchboard. */
export const EXTENSION_PATTERN = `^[0-9]{1,${MAX_KEYS}}$`;

/**
 * Why a caller cannot choose an option keyed `key` in a menu collecting up to `digits` keys, or
 * null when they can. `key` is as keypadText() gives it.
 */
export function menuKeyProblem(key: string, digits: number): string | null {
  if (key === '') return 'is empty';
  if (key.includes(TERMINATOR)) return `holds ${TERMINATOR}, which ends the entry: a caller cannot choose it`;
  if (!/^[0-9*]+$/.test(key)) return 'is not keypad keys (0-9 and *)';
  if (key.length > digits) return `has ${key.length} keys but the menu collects at most ${digits} (ivr_menus.digits)`;
  return null;
}

/** Why `ext` (as keypadText() gives it) cannot be an extension number, or null. */
export function extensionProblem(ext: string): string | null {
  if (!new RegExp(EXTENSION_PATTERN).test(ext)) return `is not an extension of 1 to ${MAX_KEYS} digits`;
  return null;
}

/** What a switchboard caller's keys mean: the operator, or an extension to look up. */
export function switchboardChoice(keys: string): { kind: 'operator' } | { kind: 'extension'; ext: string } {
  return keys === OPERATOR_KEY ? { kind: 'operator' } : { kind: 'extension', ext: keys };
}
