/**
 * setTimeout's limit. Node.js takes a delay of at most 2^31 - 1 ms (24.8 days) and sets a longer
 * one to 1 ms, with only a warning: a bound meant to be generous would fire at once. Durations
 * from settings are at most 7 days each (src/config/formats.ts); a delay built from several, or
 * from money (the spend guard), goes through here.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** `ms` as setTimeout keeps it: beyond 24.8 days, 24.8 days (for a bound, as good as never). */
export function timerDelay(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}
