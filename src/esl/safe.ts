/**
 * Guards for every value that goes from a caller or a table into an ESL message, an application
 * argument or a dial string. Two ways such text becomes a command (FREESWITCH.md "Injection"):
 *  1. CR/LF ends an ESL header, a blank line ends the message: extra headers or whole `api`
 *     commands could follow on a `full` socket.
 *  2. Application arguments are variable-expanded: `${system(...)}` / `${api(...)}` would run, and
 *     dial-string separators (`, | :_: [ ] { } ^^`) change what is dialled.
 * We validate rather than escape: FreeSWITCH has no escape for `${` in an application argument,
 * and a phone number or file name that needs escaping is a bad row, not something to dial.
 */
import { UnsafeValueError } from './errors';

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A header line value: no control characters at all (CR/LF would start a new header). */
export function assertHeaderValue(what: string, value: string): string {
  if (CONTROL.test(value)) throw new UnsafeValueError(what, 'contains a control character (CR/LF/NUL)');
  return value;
}

/** A number we dial: digits, optionally a leading +, and * or # for carrier feature codes. */
export function dialableNumber(what: string, value: string): string {
  if (!/^\+?[0-9*#]{1,32}$/.test(value)) {
    throw new UnsafeValueError(what, `not a dialable number: ${JSON.stringify(value.slice(0, 40))}`);
  }
  return value;
}

/**
 * The caller number to present to the callee, or null when it is not a plain number (then the
 * gateway's own caller ID is used rather than passing anything the caller typed into a dial string).
 */
export function presentableCallerId(value: string): string | null {
  return /^\+?[0-9]{1,32}$/.test(value) ? value : null;
}

/** A file or URL FreeSWITCH plays or records to: no expansion, separators or whitespace. */
export function mediaPath(what: string, value: string): string {
  if (value.length === 0 || value.length > 1024) throw new UnsafeValueError(what, 'empty or longer than 1024 characters');
  if (CONTROL.test(value) || /\s/.test(value)) throw new UnsafeValueError(what, 'contains whitespace or a control character');
  if (/[${}|!^,[\]]/.test(value)) throw new UnsafeValueError(what, 'contains one of $ { } | ! ^ , [ ] (FreeSWITCH would expand or split it)');
  return value;
}

/** Teletone markup for a ringback variable: %(on ms,off ms,freq[,freq]) segments only, nothing FreeSWITCH expands. */
export function isTeletone(value: string): boolean {
  return /^(?:%\(\d{1,5},\d{1,5},\d{1,5}(?:,\d{1,5})?\);?){1,8}$/.test(value);
}

/** A generated tone: tone_stream:// with %(on ms,off ms,freq[,freq]) segments only (mod_tone_stream). */
const TONE = /^tone_stream:\/\/(?:%\(\d{1,5},\d{1,5},\d{1,5}(?:,\d{1,5})?\);?){1,8}$/;

/**
 * What a prompt application plays: a media path, a generated tone, or several media paths joined
 * as `file_string://a.wav!b.wav` (mod_dptools: played as one file, a key during any part stops
 * it; a missing part is skipped). Each part passes mediaPath, which refuses `!` in a part.
 */
export function promptPath(what: string, value: string): string {
  if (TONE.test(value)) return value;
  if (value.startsWith('file_string://')) {
    const parts = value.slice('file_string://'.length).split('!');
    if (parts.length < 1 || parts.length > 16) throw new UnsafeValueError(what, 'file_string:// needs 1 to 16 parts');
    parts.forEach((part) => {
      if (part.startsWith('file_string://')) throw new UnsafeValueError(what, 'nested file_string://');
      promptPath(what, part);
    });
    return value;
  }
  return mediaPath(what, value);
}

/** Characters a plain variable value may not carry (FreeSWITCH expands, splits or quotes on them). */
const NOT_PLAIN = /[${}|,^'[\]]/;

/** A value for the `set` application or a dial-string variable: plain text, nothing FreeSWITCH reads. */
export function plainVariableValue(what: string, value: string): string {
  if (CONTROL.test(value)) throw new UnsafeValueError(what, 'contains a control character');
  if (NOT_PLAIN.test(value)) throw new UnsafeValueError(what, 'contains one of $ { } | , ^ \' [ ]');
  return value;
}

/** Whether plainVariableValue takes `value` (a file FreeSWITCH can play may still not be settable: an apostrophe). */
export function isPlainVariableValue(value: string): boolean {
  return !CONTROL.test(value) && !NOT_PLAIN.test(value);
}

/** Channel variable and application names are ours, never input; still, keep them to identifiers. */
export function identifier(what: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) throw new UnsafeValueError(what, `not an identifier: ${JSON.stringify(value)}`);
  return value;
}

/** DTMF digits as returned by FreeSWITCH: only keypad symbols survive. */
export function dtmfDigits(value: string | undefined): string {
  return value !== undefined && /^[0-9*#A-Da-d]*$/.test(value) ? value : '';
}

/**
 * Builds a dial string for one leg: `{var=value,…}` + the template with `${number}` replaced.
 * Every piece is validated here, at the one place dial strings are made.
 */
export function buildDialString(template: string, number: string, vars: Record<string, string | number>): string {
  return buildBridgeString(template, [number], vars);
}

/**
 * Several legs rung at once: `{vars}leg1,leg2,…` (FreeSWITCH's `,` separator). The caller keeps
 * the list within MAX_BRIDGE_LEGS.
 */
export function buildBridgeString(template: string, numbers: readonly string[], vars: Record<string, string | number>): string {
  if (numbers.length === 0) throw new UnsafeValueError('bridge', 'no destination');
  const targets = numbers.map((n) => template.replaceAll('${number}', dialableNumber('destination number', n))).join(',');
  const pairs = Object.entries(vars).map(
    ([name, value]) => `${identifier('dial variable', name)}=${plainVariableValue(name, String(value))}`,
  );
  return pairs.length > 0 ? `{${pairs.join(',')}}${targets}` : targets;
}
