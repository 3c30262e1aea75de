/**
 * callTimes (src/calls/cdr-times.ts): FreeSWITCH's stamps and billsec that cannot be this call's
 * fall back to the daemon's clock instead of throwing. Found by test/fuzz/esl-fuzz.test.ts
 * (FUZZ_SEED=3 FUZZ_CALL=96: `Caller-Channel-Created-Time: 99999999999999999999` in the connect
 * reply made building the CDR throw RangeError: no CDR and an unhandled rejection).
 */
import t from 'tap';
import { callTimes, type CallTimeInput } from '../../src/calls/cdr-times';

const now = new Date('2026-12-02T10:00:00.000Z');
const acceptedAt = new Date('2026-12-02T09:59:00.000Z');
const us = (iso: string): string => String(new Date(iso).getTime() * 1000);
const base: CallTimeInput = {
  createdUs: us('2026-12-02T09:58:59.500Z'),
  answeredUs: us('2026-12-02T09:59:10.000Z'),
  hangupUs: us('2026-12-02T09:59:40.000Z'),
  answeredSeenUs: null,
  billsec: '30',
  acceptedAt,
  now,
  maxCallS: 14_400,
};

t.test('plausible stamps are FreeSWITCH\'s own', async (t) => {
  const times = callTimes(base);
  t.equal(times.started.toISOString(), '2026-12-02T09:58:59.500Z');
  t.equal(times.answered?.toISOString(), '2026-12-02T09:59:10.000Z');
  t.equal(times.ended.toISOString(), '2026-12-02T09:59:40.000Z');
  t.equal(times.billsec, 30);
});

t.test('a stamp that cannot be this call\'s falls back to the daemon\'s clock', async (t) => {
  for (const junk of ['99999999999999999999', '-1', '', 'abc', '0', '1e400', '4.2', '1', us('2027-01-01T00:00:00.000Z'), us('2020-01-01T00:00:00.000Z')]) {
    const created = callTimes({ ...base, createdUs: junk });
    t.equal(created.started.getTime(), acceptedAt.getTime(), `created ${JSON.stringify(junk)}: the accept time`);
    const ended = callTimes({ ...base, hangupUs: junk });
    t.equal(ended.ended.getTime(), now.getTime(), `hangup ${JSON.stringify(junk)}: now`);
    const answered = callTimes({ ...base, answeredUs: junk });
    t.equal(answered.answered, null, `answered ${JSON.stringify(junk)}: not answered by that stamp`);
    t.doesNotThrow(() => callTimes({ ...base, createdUs: junk, answeredUs: junk, hangupUs: junk, billsec: junk }));
  }
});

t.test('the answer the daemon saw itself is used when the final event has none', async (t) => {
  const times = callTimes({ ...base, answeredUs: undefined, answeredSeenUs: Number(us('2026-12-02T09:59:20.000Z')) });
  t.equal(times.answered?.toISOString(), '2026-12-02T09:59:20.000Z');
});

t.test('billsec that no call can have is computed from the answer and the end', async (t) => {
  for (const junk of ['99999999999999999999', '-5', '', 'abc', '14401', '1e3']) {
    t.equal(callTimes({ ...base, billsec: junk }).billsec, 30, `billsec ${JSON.stringify(junk)}`);
  }
  t.equal(callTimes({ ...base, billsec: 'x', answeredUs: undefined }).billsec, 0, 'unanswered: 0');
});

t.test('an end before the start is the start; an answer outside the call is clamped into it', async (t) => {
  const times = callTimes({ ...base, hangupUs: us('2026-12-02T09:58:00.000Z'), answeredUs: us('2026-12-02T09:58:30.000Z') });
  t.equal(times.ended.getTime(), times.started.getTime());
  t.equal(times.answered?.getTime(), times.started.getTime());
  t.equal(times.billsec, 30, 'billsec FreeSWITCH reported is kept when it is plausible');
});
