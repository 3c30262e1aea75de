/**
 * A CDR's times from FreeSWITCH's own stamps, checked against the daemon's clock (pure; never
 * throws). FreeSWITCH gives the channel's times as microseconds since the epoch
 * (`Caller-Channel-Created-Time`, `-Answered-Time`, `-Hangup-Time`; 0 = never) and again as
 * `variable_{start,answer,end}_uepoch` (µs) and `_epoch` (s), plus `variable_billsec` and
 * `variable_duration` (whole seconds). Whatever crosses the socket may be damaged: a value that is
 * empty, negative, not a number, too long to be a time, or outside the call as the daemon saw it
 * is not taken. The daemon's own readings stand in for it: when it accepted the socket, when it
 * saw the answer, when it saw the hang-up (or now). If what is left is out of order (answered
 * before the start, ended before the answer), the daemon's readings are used for all three.
 *
 * Windows, against the daemon's clock: the channel may have existed before the socket was opened
 * (dialplan, an originated leg ringing) by up to START_LEAD_MS; FreeSWITCH's clock may differ
 * from ours by up to CLOCK_SKEW_MS.
 */

/** How long before the daemon accepted the socket a channel may have been created. */
export const START_LEAD_MS = 60 * 60_000;
/** How far FreeSWITCH's clock may be from the daemon's. */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** billsec / duration may differ from the times by this many seconds (FreeSWITCH rounds down). */
const SECONDS_TOLERANCE = 2;

/** The daemon's own clock readings of one call. */
export interface OwnReadings {
  /** When the daemon accepted the socket. */
  readonly accepted: Date;
  /** When the daemon saw the answer (CHANNEL_ANSWER, or the socket was handed over answered); null: never. */
  readonly answered: Date | null;
  /** When the daemon saw the hang-up; null: not seen. */
  readonly hungUp: Date | null;
  /** When the CDR is built. */
  readonly now: Date;
}

export interface CdrTimes {
  readonly started: Date;
  readonly answered: Date | null;
  readonly ended: Date;
  readonly durationS: number;
  readonly billsec: number;
  /** Which FreeSWITCH values were not taken (for a debug log): header names. */
  readonly rejected: readonly string[];
}

/** Looks a header up in the final event, then in the channel data. */
export type HeaderLookup = (name: string) => string | undefined;

type Unit = 'us' | 's';

/** One point in time, each source in order of preference. */
const SOURCES: Record<'start' | 'answer' | 'end', ReadonlyArray<readonly [string, Unit]>> = {
  start: [['Caller-Channel-Created-Time', 'us'], ['variable_start_uepoch', 'us'], ['variable_start_epoch', 's']],
  answer: [['Caller-Channel-Answered-Time', 'us'], ['variable_answer_uepoch', 'us'], ['variable_answer_epoch', 's']],
  end: [['Caller-Channel-Hangup-Time', 'us'], ['variable_end_uepoch', 'us'], ['variable_end_epoch', 's']],
};

/**
 * A FreeSWITCH epoch stamp as milliseconds, or null for "never" (0) and for anything that is not
 * a plain, safely representable positive integer (at most 17 digits: microseconds until 5138 AD).
 */
export function epochMs(value: string | undefined, unit: Unit): number | null {
  if (value === undefined || !/^[0-9]{1,17}$/.test(value)) return null;
  const n = Number(value);
  if (n === 0 || !Number.isSafeInteger(n)) return null;
  return unit === 'us' ? n / 1000 : n * 1000;
}

/** Whole seconds as FreeSWITCH writes them, or null. */
function wholeSeconds(value: string | undefined): number | null {
  return value !== undefined && /^[0-9]{1,9}$/.test(value) ? Number(value) : null;
}

function validMs(d: Date | null): number | null {
  if (d === null) return null;
  const ms = d.getTime();
  return Number.isFinite(ms) ? ms : null;
}

/**
 * When the CDR will say the call started, as known while it runs (the channel data's times, the
 * daemon's accept): the instant whose day and month the call is charged to (billing/usage.ts).
 * The same pick as the CDR's own (cdrTimes), never another reading of the same headers. The call
 * is taken as ending no earlier than the latest start the CDR accepts: asked early, a FreeSWITCH
 * clock ahead of ours put its start after "now", and the pick fell back to the accept, where the
 * CDR, ending later, keeps FreeSWITCH's start (a day apart across midnight).
 */
export function chargedStart(header: HeaderLookup, accepted: Date, now: Date): Date {
  const end = new Date(Math.max(now.getTime(), accepted.getTime() + CLOCK_SKEW_MS));
  return cdrTimes(header, { accepted, answered: null, hungUp: null, now: end }).started;
}

export function cdrTimes(header: HeaderLookup, own: OwnReadings): CdrTimes {
  const rejected: string[] = [];
  const accepted = validMs(own.accepted) ?? 0;
  const now = Math.max(accepted, validMs(own.now) ?? accepted);
  const ownAnswered = validMs(own.answered);
  const ownEnd = Math.max(accepted, Math.min(validMs(own.hungUp) ?? now, now));

  /** The first source of `which` that is a time inside [lo, hi]; null (answer: also "never"). */
  const pick = (which: keyof typeof SOURCES, lo: number, hi: number): { ms: number | null; sawValue: boolean } => {
    let sawValue = false;
    for (const [name, unit] of SOURCES[which]) {
      const raw = header(name);
      if (raw === undefined || raw === '0') continue;
      sawValue = true;
      const ms = epochMs(raw, unit);
      if (ms !== null && ms >= lo && ms <= hi) return { ms, sawValue };
      rejected.push(name);
    }
    return { ms: null, sawValue };
  };

  let started = pick('start', accepted - START_LEAD_MS, accepted + CLOCK_SKEW_MS).ms ?? accepted;
  let ended = pick('end', Math.max(started, accepted - CLOCK_SKEW_MS), now + CLOCK_SKEW_MS).ms ?? ownEnd;
  let answered: number | null = pick('answer', started, ended).ms ?? ownAnswered;
  if (ended < started || (answered !== null && (answered < started || answered > ended))) {
    // Out of order: the daemon's own readings, which are in order by construction.
    rejected.push('order');
    started = accepted;
    ended = ownEnd;
    answered = ownAnswered === null ? null : Math.min(Math.max(ownAnswered, started), ended);
  }

  const spanS = (ended - started) / 1000;
  const durationRaw = header('variable_duration');
  const duration = wholeSeconds(durationRaw);
  const durationFits = duration !== null && Math.abs(duration - spanS) <= SECONDS_TOLERANCE;
  if (!durationFits && durationRaw !== undefined) rejected.push('variable_duration');
  const durationS = durationFits ? duration : Math.round(spanS);

  let billsec = 0;
  const billsecRaw = header('variable_billsec');
  if (answered !== null) {
    const talkS = (ended - answered) / 1000;
    const fsBillsec = wholeSeconds(billsecRaw);
    if (fsBillsec !== null && Math.abs(fsBillsec - talkS) <= SECONDS_TOLERANCE) billsec = fsBillsec;
    else {
      if (billsecRaw !== undefined) rejected.push('variable_billsec');
      billsec = Math.max(0, Math.round(talkS));
    }
  }
  return { started: new Date(started), answered: answered === null ? null : new Date(answered), ended: new Date(ended), durationS: Math.max(0, durationS), billsec, rejected };
}
