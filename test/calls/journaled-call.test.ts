// The CDR of a call whose daemon stopped (src/calls/journaled-call.ts): what a journaled record
// must hold to be believed, the CDR built from it (times, outcome, reason, no charge, the click-to-
// call leg revived), and recovery from journal files on a real folder: CDRs handed to the spool,
// files removed, damaged files kept, leftovers of a cut-short rewrite removed, a spool that refuses
// leaving the journal for the next start.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { CallJournal } from '../../src/cdr/journal';
import type { CdrRecord } from '../../src/cdr/record';
import { callerGeo } from '../../src/calls/plan';
import { journaledLeg, parseJournaledCall, recoverStoppedCalls, STOPPED_REASON, stoppedCallCdr, type JournaledCall } from '../../src/calls/journaled-call';
import { loadGeoData } from '../../src/domain/geo';
import { createLogger } from '../../src/log';
import { buildSnapshot } from '../../src/snapshot/build';
import { until } from '../helpers/wait';

const RATES = [{ id: 1, tenant_id: null, call_type: 'mobile', per_minute: '0.1500', increment_s: 6, connect_fee: '0.0500' }];
const ACCEPTED = Date.parse('2026-12-05T02:00:00.000Z');

t.before(async () => {
  await loadGeoData();
});

function snapshot(): ReturnType<typeof buildSnapshot> {
  return buildSnapshot({
    tenants: [{ id: 1, name: 'T', status: 'active', timezone: 'Asia/Shanghai' }],
    access_numbers: [], destination_groups: [], destinations: [], routing_rules: [], prompts: [], rates: RATES,
  }, 1, new Date(0));
}

function call(over: Partial<JournaledCall> = {}): JournaledCall {
  return {
    v: 1, uuid: '1b4a4c8e-0000-4000-8000-000000000001', dialed: '4001012345', caller: '13912345678', node: 'node-a',
    acceptedMs: ACCEPTED, answeredMs: ACCEPTED + 4_000, hungUpMs: null, tenantId: 1, groupId: 7,
    answeredBy: null, ivrPath: ['1', '3'], recordingPath: null, admitted: true, rating: { homeAreaCode: '10' }, leg: null,
    ...over,
  };
}

function folder(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-stopped-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function logged(): { log: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { log: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }), lines };
}

t.test('parseJournaledCall: what it writes reads back; anything else names the field', async (t) => {
  const good = call();
  t.same(parseJournaledCall(JSON.parse(JSON.stringify(good))), good);
  const leg = journaledLeg({ requestId: 'r1', widgetId: 3, accessNumber: '4001012345', visitor: '13912345678', clickedAt: new Date(ACCEPTED - 9_000), visitorAnsweredAt: null, visitorRingS: 5 });
  t.same(parseJournaledCall(JSON.parse(JSON.stringify(call({ leg, rating: null })))), call({ leg, rating: null }));
  const cases: Array<[unknown, string]> = [
    [null, 'not an object'],
    [[good], 'not an object'],
    [{ ...good, v: 2 }, 'v (unknown version)'],
    [{ ...good, uuid: 'a b' }, 'uuid'],
    [{ ...good, uuid: 'x'.repeat(65) }, 'uuid'],
    [{ ...good, acceptedMs: 'yesterday' }, 'acceptedMs'],
    [{ ...good, answeredMs: Infinity }, 'answeredMs'],
    [{ ...good, hungUpMs: '12:00' }, 'hungUpMs'],
    [{ ...good, hungUpMs: undefined }, 'hungUpMs'],
    [{ ...good, tenantId: 1.5 }, 'tenantId'],
    [{ ...good, ivrPath: ['1', 2] }, 'ivrPath'],
    [{ ...good, admitted: 'yes' }, 'admitted'],
    [{ ...good, rating: { homeAreaCode: 10 } }, 'rating'],
    [{ ...good, leg: { ...leg, widgetId: '3' } }, 'leg.widgetId'],
    [{ ...good, leg: 'r1' }, 'leg'],
  ];
  for (const [record, field] of cases) t.same(parseJournaledCall(record), { invalid: field }, field);
});

t.test('stoppedCallCdr: ended when the daemon was last alive, failed with the reason, not charged', async (t) => {
  const built = stoppedCallCdr(call(), ACCEPTED + 64_400, snapshot());
  t.equal(built.failure, null);
  t.match(built.cdr, {
    call_uuid: call().uuid, tenant_id: 1, access_number: '4001012345', caller: '13912345678', node: 'node-a', caller_region: callerGeo('13912345678').description,
    started_at: '2026-12-05 02:00:00.000', answered_at: '2026-12-05 02:00:04.000', ended_at: '2026-12-05 02:01:04.400',
    duration_s: 64, billsec: 60, outcome: 'failed', failure_reason: STOPPED_REASON, hangup_cause: null,
    group_id: 7, ivr_path: '1>3', admitted: true, call_type: 'mobile', cost: '0.0000',
  });
  t.ok(STOPPED_REASON.length <= 255, 'fits failure_reason');
  // Never ringing: no answer, no billsec.
  t.match(stoppedCallCdr(call({ answeredMs: null }), ACCEPTED + 30_000, snapshot()).cdr, { answered_at: null, billsec: 0, duration_s: 30 });
  // No alive line after the answer (killed within the second): the call's own latest time, never before it.
  t.match(stoppedCallCdr(call(), null, snapshot()).cdr, { ended_at: '2026-12-05 02:00:04.000', billsec: 0, duration_s: 4 });
  t.match(stoppedCallCdr(call(), ACCEPTED - 1_000, snapshot()).cdr, { ended_at: '2026-12-05 02:00:04.000', billsec: 0 });
  // The caller hung up before the daemon stopped (its CDR not spooled yet): ended then, not at the later alive line.
  t.match(stoppedCallCdr(call({ hungUpMs: ACCEPTED + 9_000 }), ACCEPTED + 9_900, snapshot()).cdr, { ended_at: '2026-12-05 02:00:09.000', billsec: 5, duration_s: 9 });
  t.match(stoppedCallCdr(call({ hungUpMs: ACCEPTED + 9_000 }), null, snapshot()).cdr, { ended_at: '2026-12-05 02:00:09.000' });
  // Never identified (the daemon stopped before the plan): no tenant, no rating.
  t.match(stoppedCallCdr(call({ tenantId: null, rating: null, answeredMs: null, ivrPath: [] }), ACCEPTED + 1_000, snapshot()).cdr, { tenant_id: null, caller_region: null, call_type: undefined, cost: null, ivr_path: null });
});

t.test('stoppedCallCdr: a click-to-call leg is the same call with its visitor leg', async (t) => {
  const leg = journaledLeg({ requestId: 'r1', widgetId: 3, accessNumber: '4001012345', visitor: '13912345678', clickedAt: new Date(ACCEPTED - 9_000), visitorAnsweredAt: new Date(ACCEPTED - 1_000), visitorRingS: 5 });
  const built = stoppedCallCdr(call({ leg }), ACCEPTED + 20_000, snapshot());
  t.equal(built.failure, null);
  t.match(built.cdr, { origin: 'click_to_call', widget_id: 3, visitor_ring_s: 5, outcome: 'failed' });
});

function writeJournal(dir: string, name: string, lines: readonly unknown[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return file;
}

t.test('recoverStoppedCalls: every open call of every journal spooled, the journals removed', async (t) => {
  const dir = folder(t);
  const a = call({ uuid: 'a' });
  const b = call({ uuid: 'b', answeredMs: null });
  const c = call({ uuid: 'c' });
  writeJournal(dir, 'calls-in-progress-100-000000001.jsonl', [{ call: 'a', record: a }, { call: 'b', record: b }, { alive: ACCEPTED + 10_000 }, { call: 'x', record: call({ uuid: 'x' }) }, { ended: 'x' }]);
  writeJournal(dir, 'calls-in-progress-200-000000001.jsonl', [{ call: 'c', record: c }, { alive: ACCEPTED + 7_000 }]);
  fs.writeFileSync(path.join(dir, 'calls-in-progress-200-000000001.jsonl.tmp'), '{"call":"half');
  fs.writeFileSync(path.join(dir, 'segment-1-000001.jsonl'), 'a spooled CDR\n');
  const spooled: CdrRecord[] = [];
  const { log, lines } = logged();
  const r = await recoverStoppedCalls({ dir, snapshot: snapshot(), record: async (cdr) => void spooled.push(cdr), log });
  t.same(r, { recovered: 3, unreadable: 0 });
  t.same(spooled.map((s) => [s.call_uuid, s.ended_at]), [['a', '2026-12-05 02:00:10.000'], ['b', '2026-12-05 02:00:10.000'], ['c', '2026-12-05 02:00:07.000']], 'each ended at its own journal\'s last alive line');
  t.same(fs.readdirSync(dir), ['segment-1-000001.jsonl'], 'journals and the leftover removed, the spool untouched');
  t.ok(lines.some((l) => l.msg === 'calls cut when the previous daemon stopped: their CDRs written from its call journal' && l.calls === 3 && l.level === 40));
  t.same(await recoverStoppedCalls({ dir, snapshot: snapshot(), record: async () => void t.fail('nothing left'), log }), { recovered: 0, unreadable: 0 });
});

t.test('recoverStoppedCalls: a call whose CDR is in the spool already gets no second one', async (t) => {
  const dir = folder(t);
  writeJournal(dir, 'calls-in-progress-100-000000001.jsonl', [{ call: 'a', record: call({ uuid: 'a' }) }, { call: 'b', record: call({ uuid: 'b' }) }, { alive: ACCEPTED + 10_000 }]);
  // What CdrSpool writes: one ASCII JSON record a line (a damaged line among them names no call).
  fs.writeFileSync(path.join(dir, 'segment-5-000001.jsonl'), `{"call_uuid":"x","outcome":"answered"}\n{"call_uuid":"b","tenant_id":1,"outcome":"answered"}\n{"call_uuid":"c\n`);
  const spooled: CdrRecord[] = [];
  const { log, lines } = logged();
  const r = await recoverStoppedCalls({ dir, snapshot: snapshot(), record: async (cdr) => void spooled.push(cdr), log });
  t.same(r, { recovered: 1, unreadable: 0 });
  t.same(spooled.map((s) => s.call_uuid), ['a'], 'b was spooled by the stopped daemon: its CDR stands');
  t.ok(lines.some((l) => l.calls === 1 && l.already_spooled === 1));
  t.same(fs.readdirSync(dir), ['segment-5-000001.jsonl']);
});

t.test('recoverStoppedCalls: damaged lines and records are reported; the good calls written; the file kept as .unreadable', async (t) => {
  const dir = folder(t);
  writeJournal(dir, 'calls-in-progress-100-000000001.jsonl', [{ call: 'a', record: call({ uuid: 'a' }) }, 'garbage', { call: 'b', record: { ...call({ uuid: 'b' }), acceptedMs: 'x' } }, { alive: ACCEPTED + 10_000 }]);
  const spooled: CdrRecord[] = [];
  const { log, lines } = logged();
  const r = await recoverStoppedCalls({ dir, snapshot: snapshot(), record: async (cdr) => void spooled.push(cdr), log });
  t.same(r, { recovered: 1, unreadable: 2 });
  t.same(spooled.map((s) => s.call_uuid), ['a']);
  t.same(fs.readdirSync(dir), ['calls-in-progress-100-000000001.jsonl.unreadable']);
  t.ok(lines.some((l) => l.level === 50 && Array.isArray(l.unreadable) && (l.unreadable as string[]).join('|') === 'line 2|call b: acceptedMs'));
});

t.test('recoverStoppedCalls: a spool that refuses leaves the journal for the next start, and never throws', async (t) => {
  const dir = folder(t);
  writeJournal(dir, 'calls-in-progress-100-000000001.jsonl', [{ call: 'a', record: call({ uuid: 'a' }) }]);
  fs.mkdirSync(path.join(dir, 'calls-in-progress-300-000000001.jsonl')); // unreadable as a file
  const { log, lines } = logged();
  const r = await recoverStoppedCalls({ dir, snapshot: snapshot(), record: () => Promise.reject(new Error('disk full')), log });
  t.same(r, { recovered: 0, unreadable: 0 });
  t.ok(fs.existsSync(path.join(dir, 'calls-in-progress-100-000000001.jsonl')), 'kept');
  t.equal(lines.filter((l) => l.msg === 'call journal could not be recovered: kept for the next start').length, 2);
  const spooled: CdrRecord[] = [];
  t.same(await recoverStoppedCalls({ dir, snapshot: snapshot(), record: async (cdr) => void spooled.push(cdr), log }), { recovered: 1, unreadable: 0 }, 'the next start writes it');
});

t.test('recoverStoppedCalls: the CDRs of a journal are handed to the spool together, not one after another', async (t) => {
  const dir = folder(t);
  const calls = Array.from({ length: 2_000 }, (_, i) => call({ uuid: `c${i}` }));
  writeJournal(dir, 'calls-in-progress-100-000000001.jsonl', [...calls.map((c) => ({ call: c.uuid, record: c })), { alive: ACCEPTED + 10_000 }]);
  // A spool that answers an append only once the next write is done, as CdrSpool's group commit does.
  let waiting: Array<() => void> = [];
  let mostAtOnce = 0;
  const timer = setInterval(() => {
    mostAtOnce = Math.max(mostAtOnce, waiting.length);
    for (const done of waiting.splice(0)) done();
  }, 5);
  t.teardown(() => clearInterval(timer));
  const { log } = logged();
  const r = await recoverStoppedCalls({ dir, snapshot: snapshot(), record: () => new Promise<void>((resolve) => waiting.push(resolve)), log });
  t.same(r, { recovered: 2_000, unreadable: 0 });
  t.equal(mostAtOnce, 2_000, 'every CDR waited for the same write');
  waiting = [];
});

t.test('a journal written by CallJournal is what recovery reads', async (t) => {
  const dir = folder(t);
  const { log } = logged();
  const journal = CallJournal.open(dir, { log, flushMs: 1, now: () => ACCEPTED + 5_000 });
  journal.note(journal.track('one', () => call({ uuid: 'one' })));
  const two = journal.track('two', () => call({ uuid: 'two' }));
  journal.note(two);
  await until('written', () => fs.existsSync(journal.file) && fs.readFileSync(journal.file, 'utf8').includes('"two"'));
  journal.end(two);
  await until('ended', () => fs.readFileSync(journal.file, 'utf8').includes('"ended"'));
  // The process stops here, its journal as it is.
  const spooled: CdrRecord[] = [];
  await recoverStoppedCalls({ dir, snapshot: snapshot(), record: async (cdr) => void spooled.push(cdr), log });
  t.same(spooled.map((s) => [s.call_uuid, s.ended_at]), [['one', '2026-12-05 02:00:05.000']]);
  await journal.close();
});
