/**
 * cdr-times.ts and build-cdr.ts alone (pure): which FreeSWITCH stamps are taken, what stands in
 * for the others, and that a CDR comes out whatever fails while it is built.
 */
import t from 'tap';
import { callCdr, type CdrInput } from '../../src/calls/build-cdr';
import { CallFacts } from '../../src/calls/call';
import { cdrTimes, epochMs, START_LEAD_MS, type OwnReadings } from '../../src/calls/cdr-times';
import { toDbTimestamp } from '../../src/db/connect';
import type { ConfigSnapshot } from '../../src/snapshot/types';

const ACCEPTED = new Date('2026-12-02T10:00:00.000Z');
const at = (s: number): Date => new Date(ACCEPTED.getTime() + s * 1000);
const us = (d: Date): string => String(d.getTime() * 1000);
const OWN: OwnReadings = { accepted: ACCEPTED, answered: at(2), hungUp: at(10), now: at(10.2) };

/** A final event of a call created 0.5 s before the socket, answered at 2.1 s, ended at 9.9 s. */
function headers(over: Record<string, string | undefined> = {}): (name: string) => string | undefined {
  const h: Record<string, string | undefined> = {
    'Caller-Channel-Created-Time': us(at(-0.5)),
    'Caller-Channel-Answered-Time': us(at(2.1)),
    'Caller-Channel-Hangup-Time': us(at(9.9)),
    variable_billsec: '7',
    variable_duration: '10',
    ...over,
  };
  return (name) => h[name];
}

t.test('epochMs takes plain positive integers only', async (t) => {
  t.equal(epochMs('1795296920571527', 'us'), 1795296920571.527);
  t.equal(epochMs('1795296920', 's'), 1795296920000);
  for (const bad of [undefined, '', '0', '-1', '+1', '1e15', '1.5', ' 1', '99999999999999999999', '123456789012345678', 'abc', '0x10']) {
    t.equal(epochMs(bad, 'us'), null, JSON.stringify(bad));
  }
});

t.test("FreeSWITCH's own times when they make sense", async (t) => {
  const x = cdrTimes(headers(), OWN);
  t.same([x.started, x.answered, x.ended], [at(-0.5), at(2.1), at(9.9)]);
  t.equal(x.billsec, 7);
  t.equal(x.durationS, 10);
  t.same(x.rejected, []);
});

t.test('each damaged stamp falls back: the variable_* copies, then the daemon clock', async (t) => {
  for (const bad of ['99999999999999999999', '-1795296920571527', '', 'x']) {
    const x = cdrTimes(headers({ 'Caller-Channel-Created-Time': bad, 'Caller-Channel-Answered-Time': bad, 'Caller-Channel-Hangup-Time': bad, variable_billsec: bad, variable_duration: bad }), OWN);
    t.same([x.started, x.answered, x.ended], [ACCEPTED, at(2), at(10)], `${JSON.stringify(bad)}: the daemon's readings`);
    t.equal(x.billsec, 8, 'billsec from the times');
    t.equal(x.durationS, 10);
    t.ok(x.rejected.includes('variable_billsec'));
  }
  const copies = cdrTimes(headers({ 'Caller-Channel-Created-Time': 'x', variable_start_uepoch: us(at(-1)), 'Caller-Channel-Hangup-Time': '', variable_end_epoch: String(at(9).getTime() / 1000) }), OWN);
  t.same([copies.started, copies.ended], [at(-1), at(9)], 'variable_start_uepoch and variable_end_epoch stand in');
});

t.test('stamps outside the call as the daemon saw it are not taken', async (t) => {
  const early = cdrTimes(headers({ 'Caller-Channel-Created-Time': us(new Date(ACCEPTED.getTime() - START_LEAD_MS - 1000)) }), OWN);
  t.same(early.started, ACCEPTED, 'created more than an hour before the socket');
  const future = cdrTimes(headers({ 'Caller-Channel-Hangup-Time': us(at(86_400)) }), OWN);
  t.same(future.ended, at(10), 'ended a day from now');
  const epoch1970 = cdrTimes(headers({ 'Caller-Channel-Created-Time': '1000000' }), OWN);
  t.same(epoch1970.started, ACCEPTED, '1970');
});

t.test('out of order: the daemon readings for all three', async (t) => {
  const x = cdrTimes(headers({ 'Caller-Channel-Answered-Time': us(at(-0.4)), 'Caller-Channel-Created-Time': us(at(1)) }), { ...OWN, answered: at(0.5) });
  t.ok(x.answered !== null && x.answered >= x.started && x.answered <= x.ended, 'start ≤ answer ≤ end');
  const own = cdrTimes(headers({ 'Caller-Channel-Answered-Time': '0' }), { ...OWN, answered: at(20), hungUp: at(10) });
  t.same([own.started, own.answered, own.ended], [ACCEPTED, at(10), at(10)], 'an answer the daemon saw after the end is cut to the end');
  t.ok(own.rejected.includes('order'));
});

t.test('not answered: no answer time and billsec 0 whatever billsec says', async (t) => {
  const x = cdrTimes(headers({ 'Caller-Channel-Answered-Time': '0', variable_billsec: '5' }), { ...OWN, answered: null });
  t.equal(x.answered, null);
  t.equal(x.billsec, 0);
});

t.test('billsec and duration that disagree with the times are recomputed', async (t) => {
  const x = cdrTimes(headers({ variable_billsec: '3600', variable_duration: '0' }), OWN);
  t.equal(x.billsec, 8);
  t.equal(x.durationS, 10);
});

t.test('a clock that gives nonsense still gives a CDR time', async (t) => {
  const x = cdrTimes(headers({ 'Caller-Channel-Created-Time': 'x' }), { accepted: ACCEPTED, answered: new Date(NaN), hungUp: new Date(NaN), now: new Date(NaN) });
  t.ok(Number.isFinite(x.started.getTime()) && Number.isFinite(x.ended.getTime()));
});

function input(over: Partial<CdrInput> = {}): CdrInput {
  const facts = new CallFacts();
  facts.tenantId = 1;
  facts.outcome = 'answered';
  return {
    uuid: 'c0ffee00-0000-4000-8000-000000000001', dialed: '4001012345', caller: '13912345678', facts,
    header: headers(), own: OWN, hangupCause: 'NORMAL_CLEARING', node: 'n1', snapshot: { rates: [] },
    rating: null, leg: null, ...over,
  };
}

t.test('callCdr: the full CDR', async (t) => {
  const built = callCdr(input());
  t.equal(built.failure, null);
  t.match(built.cdr, { outcome: 'answered', started_at: toDbTimestamp(at(-0.5)), billsec: 7, hangup_cause: 'NORMAL_CLEARING', failure_reason: null });
  t.equal(callCdr(input({ hangupCause: 'bad cause\r\n', header: headers({ 'Hangup-Cause': 'USER_BUSY' }) })).cdr.hangup_cause, 'USER_BUSY', 'a cause that is not a cause name is not kept');
});

t.test('callCdr: a failure while building still gives a CDR, failed, with the reason', async (t) => {
  const poisoned = new Proxy({} as Pick<ConfigSnapshot, 'rates'>, {
    get() {
      throw new TypeError('rates are unreadable');
    },
  });
  const built = callCdr(input({ snapshot: poisoned, rating: { geo: { e164: '+8613912345678', country: 'CN', province: null, city: null, areaCode: null, isMobile: true, description: null }, homeAreaCode: null } }));
  t.equal(built.failure, 'CDR could not be built: TypeError: rates are unreadable');
  t.match(built.cdr, {
    call_uuid: 'c0ffee00-0000-4000-8000-000000000001', tenant_id: 1, caller: '13912345678', access_number: '4001012345',
    outcome: 'failed', failure_reason: 'CDR could not be built: TypeError: rates are unreadable', billsec: 0, cost: null,
    started_at: toDbTimestamp(ACCEPTED), ended_at: toDbTimestamp(at(10.2)), duration_s: 10,
  });
});
