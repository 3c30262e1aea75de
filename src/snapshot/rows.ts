/**
 * Typed reading of one hand-edited row. Each getter throws RowError naming the column and the
 * value, so a bad row is reported with a reason a DBA can act on. Values shown in a reason go
 * through showValue(): cut to a readable length, and never a PIN or password in clear.
 */
import { parseColumnMoney, type Money } from '../domain/money';

export type Row = Record<string, unknown>;

/** Columns whose values are secrets: reported as "(hidden)", never in clear (logs, lint, explain). */
const SECRET_COLUMN = /(^|_)(pin|password|passwd|secret|token)$/i;

export function isSecretColumn(column: string): boolean {
  return SECRET_COLUMN.test(column);
}

/** Longest value text a finding or a reason carries; the rest is cut (a pasted 10 KB value is not logged). */
export const SHOWN_VALUE_MAX = 64;

/** A column's value as a finding shows it: JSON-quoted text cut to SHOWN_VALUE_MAX, NULL, or (hidden). */
export function showValue(column: string, value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (isSecretColumn(column)) return '(hidden)';
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (value instanceof Date) text = Number.isNaN(value.getTime()) ? 'an invalid date' : value.toISOString();
  else if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') text = String(value);
  else text = JSON.stringify(value) ?? typeof value;
  return text.length > SHOWN_VALUE_MAX ? `${text.slice(0, SHOWN_VALUE_MAX - 1)}…` : text;
}

/** A bad value: `column` names it, `value` is the raw value (shown through showValue only). */
export class RowError extends Error {
  constructor(
    message: string,
    readonly column: string | null = null,
    readonly value: unknown = undefined,
  ) {
    super(message);
  }
}

export class RowReader {
  constructor(private readonly row: Row) {}

  get id(): number {
    return this.int('id', { min: 1 });
  }

  raw(column: string): unknown {
    return this.row[column];
  }

  isNullOrMissing(column: string): boolean {
    const v = this.raw(column);
    return v === null || v === undefined;
  }

  /** A RowError about `column` with its value attached; the message gets the shown value appended. */
  fail(column: string, problem: string): RowError {
    const v = this.raw(column);
    return new RowError(`${column} ${problem}, got ${showValue(column, v)}`, column, v);
  }

  int(column: string, opts: { min?: number; max?: number } = {}): number {
    const v = this.raw(column);
    const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) throw this.fail(column, 'must be a whole number');
    if (opts.min !== undefined && n < opts.min) throw this.fail(column, `must be at least ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) throw this.fail(column, `must be at most ${opts.max}`);
    return n;
  }

  /**
   * NULL, or blank text (SQLite keeps '' in a numeric column: what an editor writes for a cleared
   * cell): the value is absent, as in textOrNull.
   */
  private isBlank(column: string): boolean {
    const v = this.raw(column);
    return this.isNullOrMissing(column) || (typeof v === 'string' && v.trim() === '');
  }

  /**
   * A whole number, or null when the cell is NULL or blank. `blank: 'error'` where NULL means
   * something for every tenant (a holiday's, a rate's or a prompt's tenant_id: NULL is a common
   * row), so that a cleared cell cannot make one tenant's row everyone's.
   */
  intOrNull(column: string, opts: { min?: number; max?: number; blank?: 'null' | 'error' } = {}): number | null {
    if (this.isNullOrMissing(column)) return null;
    return opts.blank !== 'error' && this.isBlank(column) ? null : this.int(column, opts);
  }

  /**
   * 0/1 flags (also true/false from drivers that map TINYINT(1)). NULL is `fallback` when there is
   * one; a blank cell only when that fallback is false: a cleared `enabled` (default on) must not
   * switch on a row a DBA had disabled, it is refused (the last good version stays).
   */
  flag(column: string, fallback?: boolean): boolean {
    const v = this.raw(column);
    if ((v === null || v === undefined) && fallback !== undefined) return fallback;
    if (this.isBlank(column) && fallback === false) return false;
    if (v === 1 || v === true || v === '1') return true;
    if (v === 0 || v === false || v === '0') return false;
    throw this.fail(column, 'must be 0 or 1');
  }

  text(column: string, opts: { max?: number; pattern?: RegExp; what?: string } = {}): string {
    const v = this.raw(column);
    if (typeof v !== 'string' || v.trim() === '') throw this.fail(column, 'must be non-empty text');
    const s = v.trim();
    if (opts.max !== undefined && s.length > opts.max) throw new RowError(`${column} longer than ${opts.max} characters`, column, v);
    if (opts.pattern && !opts.pattern.test(s)) throw new RowError(`${column} ${showValue(column, s)} is not ${opts.what ?? `like ${opts.pattern}`}`, column, v);
    return s;
  }

  textOrNull(column: string, opts: { max?: number; pattern?: RegExp; what?: string } = {}): string | null {
    const v = this.raw(column);
    return v === null || v === undefined || (typeof v === 'string' && v.trim() === '') ? null : this.text(column, opts);
  }

  oneOf<T extends string>(column: string, allowed: readonly T[]): T {
    const v = this.raw(column);
    const s = typeof v === 'string' ? v.trim().toLowerCase() : v;
    if (typeof s !== 'string' || !(allowed as readonly string[]).includes(s)) throw this.fail(column, `must be one of ${allowed.join(', ')}`);
    return s as T;
  }

  /** An amount of money (parseColumnMoney: nothing truncated), or null when the cell is NULL or blank. */
  moneyOrNull(column: string): Money | null {
    if (this.isBlank(column)) return null;
    try {
      return parseColumnMoney(this.raw(column));
    } catch {
      throw this.fail(column, 'must be an amount of money with at most 10 digits before the point and 4 after (DECIMAL(14,4))');
    }
  }
}
