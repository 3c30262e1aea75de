/**
 * Money as an integer count of 1/10000 currency units (DECIMAL(14,4) in the schema), so that
 * sums and rounding are exact. 10^14 units fit well inside Number.MAX_SAFE_INTEGER.
 */
export type Money = number & { readonly __money: unique symbol };

const SCALE = 10_000;

/** Parses a DECIMAL as the drivers return it (MySQL: string, SQLite: number). Throws on junk. */
export function parseMoney(value: unknown): Money {
  const text = typeof value === 'number' ? value.toFixed(4) : String(value).trim();
  const m = /^(-)?(\d{1,10})(?:\.(\d{1,4})\d*)?$/.exec(text);
  if (!m) throw new Error(`not an amount of money: ${JSON.stringify(value)}`);
  const units = Number(m[2]) * SCALE + Number((m[3] ?? '').padEnd(4, '0'));
  return (m[1] ? -units : units) as Money;
}

export function money(units: number): Money {
  if (!Number.isSafeInteger(units)) throw new Error(`money must be whole 1/10000 units: ${units}`);
  return units as Money;
}

/** The DECIMAL(14,4) text for the database and reports. */
export function formatMoney(m: Money): string {
  const sign = m < 0 ? '-' : '';
  const abs = Math.abs(m);
  return `${sign}${Math.floor(abs / SCALE)}.${String(abs % SCALE).padStart(4, '0')}`;
}
