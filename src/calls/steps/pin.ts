/**
 * Step: PIN access (密码接入). The caller keys the tenant's PIN; a wrong one is re-prompted up to
 * pin_max_attempts, then the call ends with `pin_failed`. Repeated failed calls from one caller
 * lock that caller out for a while, across every daemon (pin_lockouts table).
 */
import { timingSafeEqual } from 'node:crypto';
import { clearPinFailures, pinLockedUntil, recordPinFailure, withTimeout } from '../call-state';
import type { CallContext } from '../context';

const PIN_VARIABLE = 'hotline_pin';

export async function checkPin(ctx: CallContext): Promise<boolean> {
  const tenant = ctx.tenant!;
  const pin = tenant.pin;
  if (pin === null) return true;
  const { knex, clock, settings, metrics } = ctx.deps;
  const bound = settings.admission.queryTimeoutMs;
  const locked = await metrics
    .timeDb('pin_lockout', () => withTimeout('pin lockout', bound, pinLockedUntil(knex, tenant.id, ctx.caller, clock())))
    .catch((err: unknown) => {
      ctx.log.warn({ err: (err as Error).message }, 'PIN lockout check failed; not locking the caller out');
      return null;
    });
  if (locked) {
    ctx.log.info({ until: locked.toISOString() }, 'caller locked out of the PIN prompt');
    await ctx.announceAndHangup('pin_failed', 'CALL_REJECTED', 'pin_failed');
    return false;
  }
  await ctx.channel.answer();
  for (let attempt = 1; attempt <= tenant.pinMaxAttempts; attempt++) {
    const digits = await ctx.channel.playAndGetDigits({
      min: pin.length,
      max: pin.length,
      tries: 1,
      timeoutMs: 6000,
      terminators: '#',
      file: ctx.playable(null, 'enter_pin').arg,
      invalidFile: 'silence_stream://250',
      variable: PIN_VARIABLE,
      regexp: `^\\d{${pin.length}}$`,
      digitTimeoutMs: 3000,
      promptMs: 10_000,
    });
    if (sameDigits(digits, pin)) {
      void metrics.timeDb('pin_lockout', () => withTimeout('pin reset', bound, clearPinFailures(knex, tenant.id, ctx.caller))).catch(() => undefined);
      return true;
    }
    if (attempt < tenant.pinMaxAttempts) await ctx.play('wrong_pin');
  }
  const lockedUntil = await metrics
    .timeDb('pin_lockout', () => withTimeout('pin failure', bound, recordPinFailure(knex, tenant, ctx.caller, clock())))
    .catch((err: unknown) => {
      ctx.log.warn({ err: (err as Error).message }, 'could not record the PIN failure');
      return null;
    });
  if (lockedUntil) ctx.log.warn({ until: lockedUntil.toISOString() }, 'caller locked out after repeated wrong PINs');
  await ctx.announceAndHangup('pin_failed', 'CALL_REJECTED', 'pin_failed');
  return false;
}

/** Constant-time comparison, so response timing says nothing about how much of a PIN was right. */
function sameDigits(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
