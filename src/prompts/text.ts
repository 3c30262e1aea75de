/**
 * What a `prompts.tts_text` becomes on each path: a cache key for the pre-rendered WAV, or text
 * that is safe inside the argument of FreeSWITCH's `speak` application.
 */
import crypto from 'node:crypto';

/** The text as rendered and hashed: surrounding whitespace does not make a different prompt. */
export function normalizeTtsText(text: string): string {
  return text.trim();
}

/**
 * sha256 (hex) of voice and text: the cached file is `<cacheDir>/<key>.wav`. The NUL separator
 * keeps ("cm", "ntext") and ("cmn", "text") apart; a new voice renders every text again.
 */
export function ttsCacheKey(voice: string, text: string): string {
  return crypto.createHash('sha256').update(`${voice}\u0000${normalizeTtsText(text)}`, 'utf8').digest('hex');
}

/** Longest text handed to `speak`: an announcement, not a document (the table allows 2000). */
export const SPEAK_MAX_CHARS = 1000;

// eslint-disable-next-line no-control-regex -- control characters are what this removes
const CONTROL_OR_SEPARATOR = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
/**
 * Characters FreeSWITCH reads in a `speak` argument:
 * `$ { }` variable expansion of application data (`${system(…)}` would run a command);
 * `\` its escape character; `|` the engine|voice|text separator (older releases split the text
 * on it and take the rest as a timer name); `'` `"` quoting that switch_separate_string strips;
 * `< >` SSML for engines that parse it; `^` FreeSWITCH's `^^` delimiter syntax; `[ ]` and
 * backquote for good measure. None of them matters to how a sentence sounds.
 */
const FREESWITCH_SYNTAX = /[${}|\\'"<>^[\]`]/g;

/**
 * Text from a table made safe for `speak engine|voice|text`: control characters (CR/LF above all:
 * a new ESL header) and FreeSWITCH syntax become spaces, whitespace collapses, leading `/` go
 * (some engines read a file when the text starts with one), and it is cut to SPEAK_MAX_CHARS.
 * Null when nothing speakable is left: the caller falls back to a system prompt.
 */
export function sanitizeSpeakText(text: string): string | null {
  const clean = text
    .replace(CONTROL_OR_SEPARATOR, ' ')
    .replace(FREESWITCH_SYNTAX, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^[/\s]+/, '');
  const cut = Array.from(clean).slice(0, SPEAK_MAX_CHARS).join('').trim();
  return cut === '' ? null : cut;
}
