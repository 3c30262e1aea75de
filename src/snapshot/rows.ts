/**
 * Typed reading of one hand-edited row. Each getter throws RowError naming the column and the
 * value, so a bad row is skipped with a reason a DBA can act on.
 */
import { parseMoney, type Money } from '../domain/money';

export type Row = Record<string, unknown>;

export class RowError extends Error {}

export class RowReader {
  constructor(private readonly row: Row) {}

  get id(): number {
    return this.int('id', { min: 1 });
  }

  private raw(column: string): unknown {
    return this.row[column];
  }

  isNullOrMissing(column: string): boolean {
    return this.isNull(column);
  }

  private isNull(column: string): boolean {
    const v = this.raw(column);
    return v === null || v === undefined;
  }

  int(column: string, opts: { min?: number; max?: number } = {}): number {
    const v = this.raw(column);
    const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) throw new RowError(`${column} must be a whole number, got ${JSON.stringify(v)}`);
    if (opts.min !== undefined && n < opts.min) throw new RowError(`${column} must be at least ${opts.min}, got ${n}`);
    if (opts.max !== undefined && n > opts.max) throw new RowError(`${column} must be at most ${opts.max}, got ${n}`);
    return n;
  }

  intOrNull(column: string, opts: { min?: number; max?: number } = {}): number | null {
    return this.isNull(column) ? null : this.int(column, opts);
  }

  /** 0/1 flags (also true/false from drivers that map TINYINT(1)). */
  flag(column: string, fallback?: boolean): boolean {
    const v = this.raw(column);
    if ((v === null || v === undefined) && fallback !== undefined) return fallback;
    if (v === 1 || v === true || v === '1') return true;
    if (v === 0 || v === false || v === '0') return false;
    throw new RowError(`${column} must be 0 or 1, got ${JSON.stringify(v)}`);
  }

  text(column: string, opts: { max?: number; pattern?: RegExp; what?: string } = {}): string {
    const v = this.raw(column);
    if (typeof v !== 'string' || v.trim() === '') throw new RowError(`${column} must be non-empty text, got ${JSON.stringify(v)}`);
    const s = v.trim();
    if (opts.max !== undefined && s.length > opts.max) throw new RowError(`${column} longer than ${opts.max} characters`);
    if (opts.pattern && !opts.pattern.test(s)) throw new RowError(`${column} ${JSON.stringify(s)} is not ${opts.what ?? `like ${opts.pattern}`}`);
    return s;
  }

  textOrNull(column: string, opts: { max?: number; pattern?: RegExp; what?: string } = {}): string | null {
    const v = this.raw(column);
    return v === null || v === undefined || (typeof v === 'string' && v.trim() === '') ? null : this.text(column, opts);
  }

  oneOf<T extends string>(column: string, allowed: readonly T[]): T {
    const v = this.raw(column);
    const s = typeof v === 'string' ? v.trim().toLowerCase() : v;
    if (typeof s !== 'string' || !(allowed as readonly string[]).includes(s)) {
      throw new RowError(`${column} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    }
    return s as T;
  }

  moneyOrNull(column: string): Money | null {
    if (this.isNull(column)) return null;
    try {
      return parseMoney(this.raw(column));
    } catch (err) {
      throw new RowError(`${column}: ${(err as Error).message}`);
    }
  }
}
