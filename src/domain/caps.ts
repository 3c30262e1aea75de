/**
 * The one reading of a tenant's cap (tenants.max_calls_day, max_calls_month, max_spend_day,
 * max_spend_month) once it is a number (NULL, or a cleared cell, is no cap): the snapshot
 * (snapshot/readers.ts, build.ts) and the live reads of admission's neighbours, the spend guards
 * and the caps job (billing/live-values.ts) decide alike, so that a call is never refused by one
 * of them for a cap the other does not have.
 * - below 0 is refused: `-1` written for "no cap" is no cap only as NULL. The row keeps its last
 *   good version (a finding); read live, the value the snapshot keeps, else the last one read.
 * - 0 is doubtful: it refuses every call, which is what status `suspended` is for, where the
 *   sibling columns (caller_memory_hours, max_queue, pin_lockout_failures) read 0 as "off". An
 *   edit into it keeps the last good cap (a finding); with none, it stands as written, reported.
 */
export type CapColumn = 'max_calls_day' | 'max_calls_month' | 'max_spend_day' | 'max_spend_month';

export const CAP_COLUMNS: readonly CapColumn[] = ['max_calls_day', 'max_calls_month', 'max_spend_day', 'max_spend_month'];

/** Why a negative cap is refused (the RowError's text after the column). */
export const NEGATIVE_CAP = 'must not be negative (NULL = no cap)';

/** A cap's value read: a cap, refused (negative), or doubtful (0: every call refused). */
export function capVerdict(value: number): 'cap' | 'negative' | 'zero' {
  return value < 0 ? 'negative' : value === 0 ? 'zero' : 'cap';
}

/** The finding's reason for a cap of 0. */
export function zeroCapReason(column: CapColumn): string {
  return `${column} 0 refuses every call: NULL means no cap, and status 'suspended' stops calls`;
}
