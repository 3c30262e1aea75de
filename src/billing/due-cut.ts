/**
 * The last word before a call is cut because its tenant's money ran out: the money is read again
 * from the database, since a top-up (or a raised cap) may have come since the cut was planned
 * (the session's guard plans at the answer, the live-call job up to a minute before). One
 * function for both guards (src/calls/spend-guard.ts, live-guard.ts).
 *
 * The read is bounded by CALL_DB_TIMEOUT_MS. A read that fails or is late does not save the call:
 * the cut goes ahead as planned (the reason logged), since the plan was made from money read
 * before and a database away must not let calls talk past what the tenant can pay.
 */
import type { Logger } from 'pino';
import { withTimeout } from '../calls/call-state';

/** CALL_DB_TIMEOUT_MS's default (config/schema.ts): the bound when a guard is given none (tests). */
export const DEFAULT_CUT_CHECK_TIMEOUT_MS = 1000;

export type CutVerdict<T> =
  /** Cut now: the fresh money is still not enough, or it could not be read. */
  | { cut: true; reason: 'still_due' | 'reread_failed' }
  /** Money arrived: the call goes on; `fresh` is what was read, to plan again from. */
  | { cut: false; fresh: T };

export interface DueCutCheck<T> {
  /** Reads the tenant's money again (a database query). */
  reread: () => Promise<T>;
  /** Given the fresh money: is the cut still due now? (a pure decision) */
  stillDue: (fresh: T) => boolean;
  /** CALL_DB_TIMEOUT_MS. */
  timeoutMs: number;
  log: Logger;
}

export async function dueCut<T>(check: DueCutCheck<T>): Promise<CutVerdict<T>> {
  let fresh: T;
  try {
    fresh = await withTimeout('money re-read before a cut', check.timeoutMs, check.reread());
  } catch (err) {
    check.log.warn({ err: (err as Error).message }, 'tenant money could not be read again before the cut: cutting as planned');
    return { cut: true, reason: 'reread_failed' };
  }
  if (check.stillDue(fresh)) return { cut: true, reason: 'still_due' };
  check.log.info('tenant money arrived since the cut was planned: the call goes on');
  return { cut: false, fresh };
}
