/**
 * Request limits that hold across every daemon sharing the database: per visitor number, per
 * client address and per widget, per minute and per day. Counted like the call caps
 * (src/calls/call-state.ts admitCall): the counter rows are created first, outside the
 * transaction, then one transaction takes every window with a conditional
 * `UPDATE … SET count = count + 1 WHERE count < limit`, in a fixed order (so concurrent
 * transactions lock rows in the same order). One window full rolls the others back: a refused
 * request counts nowhere. 50 simultaneous requests for one visitor with a limit of 1 give exactly
 * one admitted request, on MariaDB and SQLite (test/clicktocall/limits.test.ts).
 *
 * A visitor number is counted across all widgets (subject = the number): whoever holds widget
 * keys cannot ring one person more often by spreading the requests over several widgets.
 */
import net from 'node:net';
import type { Knex } from 'knex';
import { withLockRetry } from '../db/lock-retry';
import { toDbTimestamp } from '../db/connect';
import { DEFAULT_TIMEZONE, periodOf } from '../domain/periods';

/**
 * What one client address is counted as: an IPv4 address as itself (an IPv4-mapped IPv6 address
 * too), an IPv6 address by its /64 — one visitor is routinely given a whole /64 and can pick any
 * address in it, so counting single IPv6 addresses would limit nothing. `2001:db8:1:2::/64`.
 * Anything that is not an IP address is counted as given (at most 64 characters).
 */
export function clientSubject(address: string): string {
  const plain = address.trim().replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = net.isIP(plain);
  if (family === 4) return plain;
  if (family !== 6) return address.slice(0, 64);
  const groups = expandIpv6(plain);
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) return `${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${groups[7] & 255}`;
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (with ::, and a dotted IPv4 tail). */
function expandIpv6(address: string): number[] {
  let text = address.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => parseInt(g, 16));
}

export const LIMIT_SCOPES = ['visitor_minute', 'visitor_day', 'client_minute', 'client_day', 'widget_minute', 'widget_day'] as const;
export type LimitScope = (typeof LIMIT_SCOPES)[number];

export interface LimitCheck {
  scope: LimitScope;
  subject: string;
  /** null: no limit for this scope. */
  limit: number | null;
  /** The tenant's zone, for a widget's day windows (a client's days are UTC, a visitor number's the platform's: dayZone). */
  zone: string;
}

/** retryAfterS null: a limit of 0 refuses every request, so there is no time to come back. */
export type LimitVerdict = { ok: true } | { ok: false; scope: LimitScope; retryAfterS: number | null };

interface Window {
  start: string;
  /** When the window ends (Retry-After). */
  end: Date;
}

/**
 * The zone of a scope's day: the tenant's for its widget; one for every tenant where the subject
 * spans them, since the counter row is keyed by the day's date: a client's day in UTC, a visitor
 * number's in the platform's zone (DEFAULT_TIMEZONE), else one number could be rung under two
 * tenants' different "days" at once, twice the limit, and refused under the other's next day.
 */
function dayZone(scope: LimitScope, zone: string): string {
  if (scope === 'client_day') return 'UTC';
  if (scope === 'visitor_day') return DEFAULT_TIMEZONE;
  return zone;
}

/** The window a moment falls in: a UTC minute, or a day (dayZone). */
export function windowOf(scope: LimitScope, at: Date, zone: string): Window {
  if (scope.endsWith('_minute')) {
    const start = new Date(Math.floor(at.getTime() / 60_000) * 60_000);
    return { start: start.toISOString().slice(0, 16), end: new Date(start.getTime() + 60_000) };
  }
  const day = periodOf('day', at, dayZone(scope, zone));
  return { start: day.start, end: day.to };
}

/**
 * Takes one slot of every limited window, or none. A refusal says when to try again: when the
 * last of the full windows frees a slot (a visitor whose minute and day are both full waits for
 * the day, not the minute). A limit of 0 never frees a slot, so such a refusal has no retry time.
 */
export async function admitRequest(knex: Knex, checks: readonly LimitCheck[], at: Date): Promise<LimitVerdict> {
  const keyed = keyedChecks(checks, at);
  const zero = keyed.filter((c) => c.limit === 0);
  if (zero.length > 0) return refusal(zero, at);
  for (const c of keyed) {
    // Kept a day past its window, then swept (deleteExpiredLimits).
    const expires = toDbTimestamp(new Date(c.window.end.getTime() + 86_400_000));
    await knex('click_to_call_limits').insert({ scope: c.scope, subject: c.subject, window_start: c.window.start, count: 0, expires_at: expires }).onConflict(['scope', 'subject', 'window_start']).ignore();
  }
  class Full extends Error {
    constructor(readonly index: number) {
      super(keyed[index].scope);
    }
  }
  try {
    // InnoDB may pick one of two concurrent transactions as a deadlock victim: run it again.
    const count = (): Promise<void> =>
      knex.transaction(async (trx) => {
        for (const [i, c] of keyed.entries()) {
          const changed = await trx('click_to_call_limits')
            .where({ scope: c.scope, subject: c.subject, window_start: c.window.start })
            .andWhere('count', '<', c.limit)
            .increment('count', 1);
          if (changed === 0) throw new Full(i);
        }
      });
    await withLockRetry(count, { sqliteBusy: true });
    return { ok: true };
  } catch (err) {
    if (!(err instanceof Full)) throw err;
    // The windows before the full one had room; of those after it, the full ones count too.
    const later = keyed.slice(err.index + 1);
    const counts = later.length === 0 ? [] : await readCounts(knex, later);
    return refusal([keyed[err.index], ...later.filter((c, i) => counts[i] >= c.limit)], at);
  }
}

type Keyed = LimitCheck & { limit: number; window: Window };

/** The limited checks in lock order, each with its window. */
function keyedChecks(checks: readonly LimitCheck[], at: Date): Keyed[] {
  return checks
    .filter((c): c is LimitCheck & { limit: number } => c.limit !== null)
    .sort((a, b) => LIMIT_SCOPES.indexOf(a.scope) - LIMIT_SCOPES.indexOf(b.scope))
    .map((c) => ({ ...c, window: windowOf(c.scope, at, c.zone) }));
}

async function readCounts(knex: Knex, checks: readonly Keyed[]): Promise<number[]> {
  const rows: Array<{ scope: string; subject: string; window_start: string; count: unknown }> = await knex('click_to_call_limits')
    .where((q) => {
      for (const c of checks) void q.orWhere({ scope: c.scope, subject: c.subject, window_start: c.window.start });
    })
    .select('scope', 'subject', 'window_start', 'count');
  return checks.map((c) => Number(rows.find((r) => r.scope === c.scope && r.subject === c.subject && r.window_start === c.window.start)?.count ?? 0));
}

/**
 * The verdict for a request some windows refuse (`full`: at least one): the reason is the window
 * that frees a slot last, and Retry-After runs to then; none when a window has a limit of 0
 * (waiting would not help).
 */
export function refusal(full: ReadonlyArray<Pick<Keyed, 'scope' | 'limit' | 'window'>>, at: Date): Extract<LimitVerdict, { ok: false }> {
  const never = full.find((c) => c.limit === 0);
  if (never) return { ok: false, scope: never.scope, retryAfterS: null };
  const last = full.reduce((a, b) => (b.window.end.getTime() > a.window.end.getTime() ? b : a));
  return { ok: false, scope: last.scope, retryAfterS: Math.max(1, Math.ceil((last.window.end.getTime() - at.getTime()) / 1000)) };
}

/** Drops counter rows whose window ended more than a day ago. */
export async function deleteExpiredLimits(knex: Knex, at: Date): Promise<number> {
  return knex('click_to_call_limits').where('expires_at', '<', toDbTimestamp(at)).delete();
}
