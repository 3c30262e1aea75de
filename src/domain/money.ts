/**
 * Money as an integer count of 1/10000 currency units (DECIMAL(14,4) in the schema), so that
 * sums and rounding are exact. 10^14 units fit well inside Number.MAX_SAFE_INTEGER.
 */
export type Money = number & { readonly __money: unique symbol };

const SCALE = 10_000;

/**
 * The largest amount a DECIMAL(14,4) column holds (cdrs.cost, tenant_usage.spend, tenants.balance,
 * rates): 9999999999.9999. Charges are capped to it rather than refused by the database.
 */
export const MAX_MONEY = 99_999_999_999_999 as Money;
export const MIN_MONEY = -99_999_999_999_999 as Money;

/** `m` limited to what a DECIMAL(14,4) column holds; `capped` says whether anything was cut. */
export function clampMoney(m: number): { value: Money; capped: boolean } {
  if (m > MAX_MONEY) return { value: MAX_MONEY, capped: true };
  if (m < MIN_MONEY) return { value: MIN_MONEY, capped: true };
  return { value: money(m), capped: false };
}

/**
 * Like parseMoney, for sums and values that may exceed DECIMAL(14,4) (a SUM over many CDRs, an old
 * spool line): any count of integer digits, capped to MIN_MONEY..MAX_MONEY.
 */
export function parseMoneyCapped(value: unknown): { value: Money; capped: boolean } {
  if (typeof value === 'number' && Number.isFinite(value) && Math.abs(value) >= 1e10) {
    return value > 0 ? { value: MAX_MONEY, capped: true } : { value: MIN_MONEY, capped: true };
  }
  const text = typeof value === 'number' ? value.toFixed(4) : String(value).trim();
  const m = /^(-)?0*(\d+)(?:\.(\d{1,4})\d*)?$/.exec(text);
  if (!m) throw new Error(`not an amount of money: ${JSON.stringify(value)}`);
  if (m[2].length > 10) return m[1] ? { value: MIN_MONEY, capped: true } : { value: MAX_MONEY, capped: true };
  const units = Number(m[2]) * SCALE + Number((m[3] ?? '').padEnd(4, '0'));
  return { value: (m[1] ? -units : units) as Money, capped: false };
}

/** Parses a DECIMAL as the drivers return it (MySQL: string, SQLite: number). Throws on junk. */
export function parseMoney(value: unknown): Money {
  const text = typeof value === 'number' ? value.toFixed(4) : String(value).trim();
  const m = /^(-)?(\d{1,10})(?:\.(\d{1,4})\d*)?$/.exec(text);
  if (!m) throw new Error(`not an amount of money: ${JSON.stringify(value)}`);
  const units = Number(m[2]) * SCALE + Number((m[3] ?? '').padEnd(4, '0'));
  return (m[1] ? -units : units) as Money;
}

/**
 * A value of a DECIMAL(14,4) column a DBA may have typed (tenants.balance, caps, rates), read
 * strictly: text of at most 10 digits before the point and 4 after, nothing else ('1,000.00',
 * 'abc', '', '1.23456' are refused, not truncated). A number (SQLite keeps DECIMAL as a float) is
 * rounded to 4 places, as MySQL's DECIMAL(14,4) rounds what is written to it: earlier releases
 * read it so, and a row must not go out of service with an upgrade for it. Throws on anything else.
 */
export function parseColumnMoney(value: unknown): Money {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || Math.abs(value) >= 1e10) throw new Error(`not an amount of DECIMAL(14,4): ${value}`);
    return parseMoney(value);
  }
  if (typeof value !== 'string' || !/^\s*-?\d{1,10}(\.\d{1,4})?\s*$/.test(value)) throw new Error(`not an amount of DECIMAL(14,4): ${JSON.stringify(value)}`);
  return parseMoney(value);
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
