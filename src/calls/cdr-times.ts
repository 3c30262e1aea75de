/**
 * FreeSWITCH's time stamps and billsec, checked before they go into a CDR. A stamp that is not a
 * plausible time for this call (not digits, beyond what a Date holds, later than a day from now,
 * earlier than the longest call allows) is ignored and the daemon's clock is used instead, so
 * building a CDR never throws on what the socket said (`Caller-Channel-Created-Time:
 * 99999999999999999999` made `new Date(…).toISOString()` throw RangeError: no CDR at all).
 */
export interface CallTimeInput {
  /** Raw FreeSWITCH stamps (µs since the epoch), as the events carried them. */
  createdUs: string | undefined;
  answeredUs: string | undefined;
  hangupUs: string | undefined;
  /** What the daemon saw itself: the answer stamp of CHANNEL_ANSWER / the channel data (µs). */
  answeredSeenUs: number | null;
  billsec: string | undefined;
  /** When the daemon accepted the socket, and now (the daemon's clock). */
  acceptedAt: Date;
  now: Date;
  /** calls.maxDurationS: no call is longer. */
  maxCallS: number;
}

export interface CallTimes {
  started: Date;
  answered: Date | null;
  ended: Date;
  billsec: number;
}

const DAY_MS = 86_400_000;

export function callTimes(input: CallTimeInput): CallTimes {
  const earliest = input.now.getTime() - input.maxCallS * 1000 - DAY_MS;
  const latest = input.now.getTime() + DAY_MS;
  const plausible = (us: string | number | null | undefined): Date | null => {
    if (us === null || us === undefined) return null;
    const text = String(us);
    if (!/^\d{1,17}$/.test(text) || /^0+$/.test(text)) return null;
    const ms = Number(text) / 1000;
    return ms >= earliest && ms <= latest ? new Date(ms) : null;
  };
  const started = plausible(input.createdUs) ?? input.acceptedAt;
  const ended = new Date(Math.max(started.getTime(), (plausible(input.hangupUs) ?? input.now).getTime()));
  const answeredAt = plausible(input.answeredUs) ?? plausible(input.answeredSeenUs);
  const answered = answeredAt ? new Date(Math.min(Math.max(answeredAt.getTime(), started.getTime()), ended.getTime())) : null;
  const talked = answered ? Math.max(0, Math.round((ended.getTime() - answered.getTime()) / 1000)) : 0;
  const reported = input.billsec !== undefined && /^\d{1,9}$/.test(input.billsec) ? Number(input.billsec) : null;
  const billsec = reported !== null && reported <= input.maxCallS ? reported : talked;
  return { started, answered, ended, billsec };
}
