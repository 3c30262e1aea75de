/**
 * A call in progress as the call journal keeps it (src/cdr/journal.ts), and the CDR a later
 * daemon writes from it when the daemon that served the call stopped without writing one (a crash,
 * `kill -9`, the out-of-memory killer). FreeSWITCH ended such a call when the socket went
 * (hotline_after_socket.xml hangs up a call the daemon had claimed), so the CDR is the call as
 * the journal last saw it, ended when the stopped daemon was last known running:
 *
 * - outcome `failed`, `failure_reason` STOPPED_REASON, no hang-up cause (FreeSWITCH's was never
 *   seen);
 * - the daemon's own times (accepted, answered) and, as the end, the hang-up the daemon saw, else
 *   the journal's last alive line (written every second while calls are open), so duration and
 *   billsec are at most about a second short, never long;
 * - built as any CDR (build-cdr.ts callCdr, the one decision) with the rates in force when it is
 *   written: its call type is set, and like every failed call it costs the tenant nothing
 *   (rate-cdr.ts BILLABLE_OUTCOMES). The call was cut by the platform, and whether a phone had
 *   answered is not known (the daemon does not subscribe to bridge events); billsec says how long
 *   the caller's leg had been answered, for a carrier that wants to settle it by hand.
 *
 * A record that is not what this module writes (damage, a hand edit) is not guessed at: it is
 * reported with its reason and left in the journal file, which is kept for a person to look at.
 */
import fsp from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ClickToCallLeg } from '../clicktocall/leg';
import type { CdrRecord } from '../cdr/record';
import { journalFiles, readJournal } from '../cdr/journal';
import { spooledCallUuids } from '../cdr/spool';
import type { ConfigSnapshot } from '../snapshot/types';
import { callCdr, type BuiltCdr } from './build-cdr';
import { CallFacts } from './call';
import { callerGeo } from './plan';

/** The CDR's failure_reason of a call whose daemon stopped during it. */
export const STOPPED_REASON = 'the daemon stopped during the call (crash, kill -9, out of memory): CDR written at the next start from the call journal; ended_at is the hang-up it saw, else when it was last known running';

/** What a CDR needs of a call, as journaled. Times are wall-clock milliseconds. */
export interface JournaledCall {
  readonly v: 1;
  readonly uuid: string;
  readonly dialed: string;
  readonly caller: string;
  readonly node: string;
  readonly acceptedMs: number;
  readonly answeredMs: number | null;
  /** When the daemon saw the caller's hang-up, if it did before it stopped. */
  readonly hungUpMs: number | null;
  readonly tenantId: number | null;
  readonly groupId: number | null;
  readonly answeredBy: string | null;
  readonly ivrPath: readonly string[];
  readonly recordingPath: string | null;
  readonly admitted: boolean;
  /**
   * Set once the call was identified: how it is rated (the access number's home area code). The
   * caller's geography is not kept: identification derives it from the caller number alone
   * (plan.ts callerGeo), and so does recovery.
   */
  readonly rating: { readonly homeAreaCode: string | null } | null;
  /** A click-to-call visitor leg, its times as milliseconds. */
  readonly leg: {
    readonly requestId: string;
    readonly widgetId: number;
    readonly accessNumber: string;
    readonly visitor: string;
    readonly clickedMs: number;
    readonly visitorAnsweredMs: number | null;
    readonly visitorRingS: number | null;
  } | null;
}

export function journaledLeg(leg: ClickToCallLeg | null): JournaledCall['leg'] {
  if (!leg) return null;
  return {
    requestId: leg.requestId,
    widgetId: leg.widgetId,
    accessNumber: leg.accessNumber,
    visitor: leg.visitor,
    clickedMs: leg.clickedAt.getTime(),
    visitorAnsweredMs: leg.visitorAnsweredAt?.getTime() ?? null,
    visitorRingS: leg.visitorRingS,
  };
}

/** journaledLeg read back. */
function legFromJournal(l: JournaledCall['leg']): ClickToCallLeg | null {
  if (!l) return null;
  return {
    requestId: l.requestId,
    widgetId: l.widgetId,
    accessNumber: l.accessNumber,
    visitor: l.visitor,
    clickedAt: new Date(l.clickedMs),
    visitorAnsweredAt: l.visitorAnsweredMs === null ? null : new Date(l.visitorAnsweredMs),
    visitorRingS: l.visitorRingS,
  };
}

type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === 'string';
const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const int: Check = (v) => Number.isSafeInteger(v);
const bool: Check = (v) => typeof v === 'boolean';
const orNull = (c: Check): Check => (v) => v === null || c(v);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

const CALL_FIELDS: Record<string, Check> = {
  uuid: (v) => typeof v === 'string' && /^[0-9A-Za-z-]{1,64}$/.test(v),
  dialed: str,
  caller: str,
  node: str,
  acceptedMs: num,
  answeredMs: orNull(num),
  hungUpMs: orNull(num),
  tenantId: orNull(int),
  groupId: orNull(int),
  answeredBy: orNull(str),
  ivrPath: (v) => Array.isArray(v) && v.every(str),
  recordingPath: orNull(str),
  admitted: bool,
};
const LEG_FIELDS: Record<string, Check> = {
  requestId: str, widgetId: int, accessNumber: str, visitor: str, clickedMs: num, visitorAnsweredMs: orNull(num), visitorRingS: orNull(num),
};

function badField(o: Record<string, unknown>, fields: Record<string, Check>, prefix: string): string | null {
  for (const [name, check] of Object.entries(fields)) if (!check(o[name])) return `${prefix}${name}`;
  return null;
}

/** A journaled record read back, or why it is not one (the field that is wrong). */
export function parseJournaledCall(record: unknown): JournaledCall | { invalid: string } {
  if (!isObject(record)) return { invalid: 'not an object' };
  if (record.v !== 1) return { invalid: 'v (unknown version)' };
  const bad = badField(record, CALL_FIELDS, '');
  if (bad) return { invalid: bad };
  if (record.rating !== null && !(isObject(record.rating) && orNull(str)(record.rating.homeAreaCode))) return { invalid: 'rating' };
  if (record.leg !== null) {
    if (!isObject(record.leg)) return { invalid: 'leg' };
    const l = badField(record.leg, LEG_FIELDS, 'leg.');
    if (l) return { invalid: l };
  }
  return record as unknown as JournaledCall;
}

/** The CDR of a journaled call whose daemon stopped, ended at the hang-up it saw, else at `aliveMs` (never before the call's own times). Never throws. */
export function stoppedCallCdr(call: JournaledCall, aliveMs: number | null, snapshot: Pick<ConfigSnapshot, 'rates'>): BuiltCdr {
  const facts = new CallFacts();
  facts.outcome = 'failed';
  facts.failureReason = STOPPED_REASON;
  // As identification derived it: from the caller number alone.
  const geo = call.rating ? callerGeo(call.caller) : null;
  facts.tenantId = call.tenantId;
  facts.geo = geo;
  facts.groupId = call.groupId;
  facts.answeredBy = call.answeredBy;
  facts.ivrPath.push(...call.ivrPath);
  facts.recordingPath = call.recordingPath;
  facts.admitted = call.admitted;
  // The hang-up the daemon saw, else the last moment it was known running (never before what the
  // call itself recorded).
  const latest = Math.max(call.acceptedMs, call.answeredMs ?? 0);
  const end = new Date(call.hungUpMs !== null ? Math.max(call.hungUpMs, latest) : Math.max(aliveMs ?? 0, latest));
  const leg = legFromJournal(call.leg);
  return callCdr({
    uuid: call.uuid,
    dialed: call.dialed,
    caller: call.caller,
    facts,
    // FreeSWITCH's own stamps were never seen: the daemon's readings stand.
    header: () => undefined,
    own: { accepted: new Date(call.acceptedMs), answered: call.answeredMs === null ? null : new Date(call.answeredMs), hungUp: end, now: end },
    hangupCause: null,
    node: call.node,
    snapshot,
    rating: call.rating && geo ? { geo, homeAreaCode: call.rating.homeAreaCode } : null,
    leg,
  });
}

export interface StoppedCallsRecovery {
  /** CDRs spooled for calls a stopped daemon left in progress. */
  readonly recovered: number;
  /** Journal records that could not be read (their files are kept, renamed *.unreadable). */
  readonly unreadable: number;
}

/**
 * At start-up, with the spool folder's lock held and before calls are taken: the CDRs of the calls
 * every journal in `dir` left open, spooled; then the journals removed. A journal with records or
 * lines that cannot be read is kept as `<name>.unreadable` (its good calls are written), for a
 * person. A journal that cannot be read, or whose CDRs cannot be spooled, stays for the next start
 * (logged): it never keeps the daemon from taking calls. A call whose CDR is in the spool already
 * (the daemon stopped after spooling it but before journaling its end, or a recovery was cut
 * short) gets no second one; one already written and gone from the spool is inserted once by the
 * writer (by call_uuid).
 */
export async function recoverStoppedCalls(options: {
  dir: string;
  snapshot: Pick<ConfigSnapshot, 'rates'>;
  record: (cdr: CdrRecord) => Promise<void>;
  log: Logger;
}): Promise<StoppedCallsRecovery> {
  const { dir, snapshot, record, log } = options;
  const { journals, leftovers } = await journalFiles(dir);
  // A rewrite cut short: the journal it was to replace is still whole.
  for (const tmp of leftovers) await fsp.rm(tmp, { force: true }).catch(() => undefined);
  const counts = { recovered: 0, unreadable: 0, alreadySpooled: 0 };
  // Read once, and only when there is a journal: the calls whose CDRs are spooled already.
  let spooled: Promise<Set<string>> | null = null;
  const alreadySpooled = (): Promise<Set<string>> => (spooled ??= spooledCallUuids(dir));
  for (const file of journals) {
    try {
      await recoverFile(file, snapshot, record, log, counts, alreadySpooled);
    } catch (err) {
      // Never a reason not to take calls: the file stays, and the next start tries it again
      // (a CDR spooled twice is written once).
      log.error({ err, file }, 'call journal could not be recovered: kept for the next start');
    }
  }
  if (counts.recovered > 0) log.warn({ calls: counts.recovered, journals: journals.length, already_spooled: counts.alreadySpooled }, 'calls cut when the previous daemon stopped: their CDRs written from its call journal');
  return { recovered: counts.recovered, unreadable: counts.unreadable };
}

/** One journal: its open calls' CDRs spooled (counted in `counts` as they go), then the file removed or kept as .unreadable. */
async function recoverFile(
  file: string,
  snapshot: Pick<ConfigSnapshot, 'rates'>,
  record: (cdr: CdrRecord) => Promise<void>,
  log: Logger,
  counts: { recovered: number; unreadable: number; alreadySpooled: number },
  alreadySpooled: () => Promise<Set<string>>,
): Promise<void> {
  const contents = readJournal(await fsp.readFile(file, 'utf8'));
  const bad: string[] = contents.invalidLines.map((n) => `line ${n}`);
  const cdrs: CdrRecord[] = [];
  const inSpool = contents.open.length > 0 ? await alreadySpooled() : new Set<string>();
  for (const { call, record: raw } of contents.open) {
    const parsed = parseJournaledCall(raw);
    if ('invalid' in parsed) {
      bad.push(`call ${call.slice(0, 64)}: ${parsed.invalid}`);
      continue;
    }
    if (inSpool.has(parsed.uuid)) {
      // Its CDR was spooled and the daemon stopped before the journal said so: that CDR stands.
      // Spooling another would leave the database to keep whichever batch came first.
      counts.alreadySpooled++;
      continue;
    }
    const built = stoppedCallCdr(parsed, contents.aliveMs, snapshot);
    if (built.failure !== null) log.error({ call_uuid: parsed.uuid, reason: built.failure }, 'CDR of a call cut by a stopped daemon could not be built in full: recorded with what is certain');
    cdrs.push(built.cdr);
  }
  // All at once: the spool writes appends that arrive together in one synchronized write, where
  // one after another would each wait for the last (10,000 cut calls: 100 s at 10 ms a write).
  const spooled = await Promise.allSettled(cdrs.map((cdr) => record(cdr)));
  const refused = spooled.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  counts.recovered += spooled.length - refused.length;
  if (refused.length > 0) throw refused[0].reason;
  if (bad.length > 0) {
    counts.unreadable += bad.length;
    log.error({ file, unreadable: bad.slice(0, 20) }, 'call journal has records that cannot be read: their calls get no CDR from it; the file is kept as .unreadable');
    await fsp.rename(file, `${file}.unreadable`);
  } else {
    await fsp.rm(file, { force: true });
  }
}
