/**
 * Step: PIN access (密码接入). The greeting and "enter your PIN" are one prompt, so a caller who
 * knows the PIN keys it over the greeting; a wrong PIN hears "wrong PIN" and "enter your PIN"
 * again as one prompt, typed over too (play_and_get_digits keeps keys typed during its prompt,
 * playback would drop them: M3, M4 in test/peer/channel-model.ts). One try per
 * play_and_get_digits: the PIN is compared here, never put in a regexp FreeSWITCH would log.
 * After pin_max_attempts the call ends with `pin_failed`; repeated failed calls from one caller
 * lock that caller out for a while, across every daemon (pin_lockouts table).
 */
import { timingSafeEqual } from 'node:crypto';
import type { Call } from '../call';
import { clearPinFailures, pinLockedUntil, recordPinFailure, withTimeout } from '../call-state';
import { systemPrompt, type PromptRef } from '../prompt-player';

const PIN_VARIABLE = 'hotline_pin';
/** Time to key the first digit after the prompt, and between digits. */
export const PIN_TIMEOUT_MS = 6000;
export const PIN_DIGIT_TIMEOUT_MS = 3000;
/**
 * Keys one try collects: one more than the longest PIN a tenant may have (16 digits,
 * snapshot/readers.ts). enter_pin.wav asks for the PIN "followed by the hash key", and
 * play_and_get_digits stops at <max> digits without reading further (switch_ivr_play_say.c
 * switch_ivr_read → switch_ivr.c switch_ivr_collect_digits_count): with max = the PIN's length
 * the # stayed queued and the next play_and_get_digits took it as a terminator with no digits
 * (M4) — the next PIN try lost at once, or the menu after the PIN answered "invalid entry". With
 * room for it the # ends the collection; a PIN keyed without # ends with the inter-digit timeout,
 * and the regexp still admits the PIN's length only.
 */
export const PIN_MAX_KEYS = 17;

/** True when the caller keyed the PIN (or the tenant has none). */
export async function checkPin(call: Call): Promise<boolean> {
  const tenant = call.tenant;
  const pin = tenant.pin;
  if (pin === null) return true;
  const { knex, clock, settings, metrics } = call.deps;
  const bound = settings.admission.queryTimeoutMs;
  const locked = await metrics
    .timeDb('pin_lockout', () => withTimeout('pin lockout', bound, pinLockedUntil(knex, tenant.id, call.id.caller, clock())))
    .catch((err: unknown) => {
      call.log.warn({ err: (err as Error).message }, 'PIN lockout check failed; not locking the caller out');
      return null;
    });
  if (locked) {
    call.log.info({ until: locked.toISOString() }, 'caller locked out of the PIN prompt');
    await call.announceAndHangup('pin_failed', 'CALL_REJECTED', 'pin_failed');
    return false;
  }
  // Answer and ask at once: one burst, no gap in which FreeSWITCH's park drops keys (M2).
  const answered = call.answer();
  let prompt: PromptRef[] = [...call.takeGreeting(), systemPrompt('enter_pin')];
  for (let attempt = 1; attempt <= tenant.pinMaxAttempts; attempt++) {
    const [digits] = await Promise.all([
      call.prompts.collect(prompt, {
        min: pin.length,
        max: Math.max(PIN_MAX_KEYS, pin.length + 1),
        tries: 1,
        timeoutMs: PIN_TIMEOUT_MS,
        terminators: '#',
        invalidFile: 'silence_stream://250',
        variable: PIN_VARIABLE,
        regexp: `^\\d{${pin.length}}$`,
        digitTimeoutMs: PIN_DIGIT_TIMEOUT_MS,
      }),
      answered,
    ]);
    if (sameDigits(digits, pin)) {
      void metrics.timeDb('pin_lockout', () => withTimeout('pin reset', bound, clearPinFailures(knex, tenant.id, call.id.caller))).catch(() => undefined);
      return true;
    }
    if (call.channel.hungUp) return false;
    prompt = [systemPrompt('wrong_pin'), systemPrompt('enter_pin')];
  }
  const lockedUntil = await metrics
    .timeDb('pin_lockout', () => withTimeout('pin failure', bound, recordPinFailure(knex, tenant, call.id.caller, clock())))
    .catch((err: unknown) => {
      call.log.warn({ err: (err as Error).message }, 'could not record the PIN failure');
      return null;
    });
  if (lockedUntil) call.log.warn({ until: lockedUntil.toISOString() }, 'caller locked out after repeated wrong PINs');
  await call.announceAndHangup('pin_failed', 'CALL_REJECTED', 'pin_failed');
  return false;
}

/** Constant-time comparison, so response timing says nothing about how much of a PIN was right. */
function sameDigits(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
