/**
 * Which callers some tenant's phone answered recently, kept in memory so that caller memory need
 * not ask the database for a caller nobody answered: on MariaDB that question is a round trip on
 * every call's setup path (bench/PROFILE.md, release 20), and for most calls to a hotline, first
 * callers, its answer is "nobody".
 *
 * A Bloom filter per hour of `answered_at`: it may say "perhaps" for a caller nobody answered (the
 * lookup then asks the database, as without it), never "nobody" for a caller answered within the
 * hours it covers. What it has seen is what AnsweredCallersFeed read from `cdrs`. Its memory is
 * fixed (`bitsPerHour` × the hours covered and one more: 26 hours of 2^21 bits, 6.8 MB); a
 * carrier whose answered callers of an hour outgrow it gets more "perhaps", so more database
 * lookups, never a wrong "nobody".
 *
 * Pure: no I/O, no clock (every time is passed in, as ms since the epoch).
 */

const HOUR_MS = 3_600_000;

export interface AnsweredCallersOptions {
  /** Hours of answers kept: a lookup whose window reaches further back is asked of the database. */
  readonly hours: number;
  /** Bits of one hour's filter (a power of two is not required). */
  readonly bitsPerHour: number;
}

/** Probes a key sets in a filter: 4 keeps false "perhaps" near 1 % at a tenth of the bits set. */
const PROBES = 4;

export class AnsweredCallers {
  /** One filter per hour of answered_at (its number since the epoch). */
  private readonly hours = new Map<number, Uint32Array>();
  /** answered_at from which every answer is in the filters; null until the first load is done. */
  private coveredFrom: number | null = null;

  constructor(private readonly options: AnsweredCallersOptions) {
    if (!(options.hours > 0) || !(options.bitsPerHour >= 1024)) throw new RangeError(`answered callers: hours ${options.hours}, bitsPerHour ${options.bitsPerHour}`);
  }

  /** Records that some phone of `tenantId` answered `caller` at `answeredAt`. */
  add(tenantId: number, caller: string, answeredAt: number): void {
    const hour = Math.floor(answeredAt / HOUR_MS);
    let bits = this.hours.get(hour);
    if (bits === undefined) {
      bits = new Uint32Array(Math.ceil(this.options.bitsPerHour / 32));
      this.hours.set(hour, bits);
    }
    for (const bit of probes(tenantId, caller, this.options.bitsPerHour)) bits[bit >>> 5] |= 1 << (bit & 31);
  }

  /**
   * Every answer from `from` on has been added (the feed's first load is done); the filters keep
   * them until they are older than `hours`.
   */
  coverFrom(from: number): void {
    this.coveredFrom = from;
  }

  /**
   * True only when no phone of `tenantId` answered `caller` at or after `since`, as far as the
   * filters know; false means "perhaps" or "cannot tell" (a window before what they cover).
   */
  answeredNone(tenantId: number, caller: string, since: number, now: number): boolean {
    if (this.coveredFrom === null || since < this.coveredFrom || since < now - this.options.hours * HOUR_MS) return false;
    const positions = probes(tenantId, caller, this.options.bitsPerHour);
    const first = Math.floor(since / HOUR_MS);
    for (const [hour, bits] of this.hours) if (hour >= first && allSet(bits, positions)) return false;
    return true;
  }

  /** Drops the hours older than the window (and moves the coverage up with it). */
  prune(now: number): void {
    const oldest = Math.floor((now - this.options.hours * HOUR_MS) / HOUR_MS);
    for (const hour of this.hours.keys()) if (hour < oldest) this.hours.delete(hour);
    if (this.coveredFrom !== null) this.coveredFrom = Math.max(this.coveredFrom, oldest * HOUR_MS);
  }

  /** Hours held, for tests. */
  get hoursHeld(): number {
    return this.hours.size;
  }
}

function allSet(bits: Uint32Array, positions: readonly number[]): boolean {
  for (const bit of positions) if ((bits[bit >>> 5] & (1 << (bit & 31))) === 0) return false;
  return true;
}

/**
 * The filter positions of a key: two 32-bit FNV-1a hashes of `tenant:caller` (different offset
 * bases) combined as h1 + i·h2 (Kirsch-Mitzenmacher), reduced to the filter's size.
 */
function probes(tenantId: number, caller: string, size: number): number[] {
  const key = `${tenantId}:${caller}`;
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x01000193);
  }
  h2 |= 1;
  const out: number[] = [];
  for (let i = 0; i < PROBES; i++) out.push(((h1 + Math.imul(i, h2)) >>> 0) % size);
  return out;
}
