/**
 * A CDR for every call, whatever FreeSWITCH's final event says. The captured
 * CHANNEL_HANGUP_COMPLETE (outbound-plain-hunt-busy-noanswer-answer.log), moved to the call's
 * UUID and to now, is sent by the stand-in with one header damaged at a time — every header, four
 * ways: huge, negative, empty, not a number. Each call must give exactly one CDR, built in full
 * (never the failed fallback), with times that make sense: start ≤ answer ≤ end, all within the
 * test's own run, duration and billsec matching them. SQLite for every header, MariaDB for the
 * time headers and billsec.
 */
import t from 'tap';
import type { Test } from 'tap';
import { fromDbTimestamp } from '../../src/db/connect';
import { placeCall, type CallScript } from '../peer/fake-freeswitch';
import { readCapture, streamOf } from '../peer/fixtures';
import { dbTargets } from '../helpers/db';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon';

const CAPTURE = 'outbound-plain-hunt-busy-noanswer-answer.log';

/** The captured event's headers, decoded, in order. */
function capturedHangupComplete(): Array<[string, string]> {
  const text = streamOf(readCapture(CAPTURE).connections[0], 'FS->CTL').toString('utf8');
  const at = text.indexOf('Event-Name: CHANNEL_HANGUP_COMPLETE');
  const block = text.slice(text.lastIndexOf('\n\n', at) + 2, text.indexOf('\n\n', at));
  return block.split('\n').map((line): [string, string] => {
    const sep = line.indexOf(': ');
    return [line.slice(0, sep), decodeURIComponent(line.slice(sep + 2))];
  });
}

const CAPTURED = capturedHangupComplete();
const CAPTURED_UUID = CAPTURED.find(([n]) => n === 'Unique-ID')?.[1] ?? '';
const CAPTURED_END_US = Number(CAPTURED.find(([n]) => n === 'Caller-Channel-Hangup-Time')?.[1]);

export const MUTATIONS: Record<string, string> = {
  huge: '99999999999999999999',
  negative: '-1795296920571527',
  empty: '',
  non_numeric: '17952969x0571527',
};

/**
 * The captured event as if it ended now on this call: its UUID replaced by the call's, its
 * microsecond and second stamps moved by (now − captured hang-up), then `name` set to `value`.
 */
function hangupEvent(uuid: string, name: string, value: string): Array<[string, string]> {
  const shiftUs = Date.now() * 1000 - CAPTURED_END_US;
  const shiftS = Math.round(shiftUs / 1e6);
  return CAPTURED.map(([n, v]): [string, string] => {
    if (n === name) return [n, value];
    if (/^1[0-9]{15}$/.test(v)) return [n, String(Number(v) + shiftUs)];
    if (/^1[0-9]{9}$/.test(v) && /epoch/.test(n)) return [n, String(Number(v) + shiftS)];
    return [n, v.split(CAPTURED_UUID).join(uuid)];
  });
}

interface Case {
  header: string;
  mutation: string;
}

function script(c: Case): CallScript {
  return {
    caller: '13912345678',
    destination: '4001012345',
    legs: { '13800000001': { result: 'answer', talkMs: 30 } },
    hangupCompleteHeaders: (_own, uuid) => hangupEvent(uuid, c.header, MUTATIONS[c.mutation] ?? ''),
  };
}

async function runCases(t: Test, d: TestDaemon, cases: Case[]): Promise<void> {
  const calls: Array<{ uuid: string; c: Case; placedAt: number; doneAt: number }> = [];
  for (let i = 0; i < cases.length; i += 40) {
    await Promise.all(cases.slice(i, i + 40).map(async (c) => {
      const placedAt = Date.now();
      const record = await placeCall(d.port, script(c));
      calls.push({ uuid: record.uuid, c, placedAt, doneAt: Date.now() });
    }));
  }
  await d.daemon.cdrs.flush();
  type Row = { call_uuid: string; started_at: unknown; answered_at: unknown; ended_at: unknown; duration_s: unknown; billsec: unknown; outcome: string; failure_reason: string | null };
  const uuids = calls.map((x) => x.uuid);
  let rows: Row[] = [];
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    rows = [];
    for (let i = 0; i < uuids.length; i += 500) rows.push(...((await d.knex('cdrs').whereIn('call_uuid', uuids.slice(i, i + 500))) as Row[]));
    if (rows.length >= uuids.length) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(rows.length, calls.length, `one CDR per call (${calls.length} calls)`);
  t.equal(new Set(rows.map((r) => r.call_uuid)).size, calls.length, 'no call recorded twice');
  const total = (await d.knex('cdrs').count({ n: '*' }).first()) as { n: number | string };
  t.equal(Number(total.n), calls.length, 'no other CDR appeared');

  const byUuid = new Map(rows.map((r) => [r.call_uuid, r]));
  const bad: string[] = [];
  for (const call of calls) {
    const row = byUuid.get(call.uuid);
    const what = `${call.c.header}=${call.c.mutation}`;
    if (!row) {
      bad.push(`${what}: no CDR`);
      continue;
    }
    const started = fromDbTimestamp(row.started_at as string)?.getTime() ?? NaN;
    const ended = fromDbTimestamp(row.ended_at as string)?.getTime() ?? NaN;
    const answered = row.answered_at === null ? null : (fromDbTimestamp(row.answered_at as string)?.getTime() ?? NaN);
    const duration = Number(row.duration_s);
    const billsec = Number(row.billsec);
    const problems: string[] = [];
    if (row.outcome !== 'answered') problems.push(`outcome ${row.outcome}`);
    if (row.failure_reason !== null) problems.push(`failure_reason ${row.failure_reason}`);
    // The captured call began 6.5 s before its hang-up; the moved event keeps that.
    if (!(started >= call.placedAt - 10_000 && started <= call.doneAt)) problems.push(`started_at ${String(row.started_at)}`);
    if (!(ended >= started && ended <= call.doneAt + 1000)) problems.push(`ended_at ${String(row.ended_at)}`);
    if (answered === null || !(answered >= started && answered <= ended)) problems.push(`answered_at ${String(row.answered_at)}`);
    if (!(duration >= 0 && Math.abs(duration - (ended - started) / 1000) <= 2)) problems.push(`duration_s ${duration}`);
    if (!(billsec >= 0 && billsec <= duration + 1 && (answered === null || Math.abs(billsec - (ended - answered) / 1000) <= 2))) problems.push(`billsec ${billsec}`);
    if (problems.length > 0) bad.push(`${what}: ${problems.join(', ')}`);
  }
  t.same(bad, [], 'every CDR is complete and its times are sane');
}

const TIME_HEADERS = [
  'Caller-Channel-Created-Time', 'Caller-Channel-Answered-Time', 'Caller-Channel-Hangup-Time',
  'variable_start_uepoch', 'variable_answer_uepoch', 'variable_end_uepoch', 'variable_start_epoch',
  'variable_answer_epoch', 'variable_end_epoch', 'variable_billsec', 'variable_duration',
];

/** A daemon on a fresh database of dbTargets()[index], without caller memory (every call hunts afresh). */
async function damagedEventDaemon(t: Test, index: number): Promise<TestDaemon> {
  const target = dbTargets()[index];
  if (!target) throw new Error(`no database target ${index}`);
  const db = await target.create({ migrate: false });
  const d = await startTestDaemon(db.url);
  t.teardown(async () => {
    await d.stop();
    await db.destroy();
  });
  await d.knex('tenants').update({ caller_memory_hours: 0 });
  await d.daemon.store.poll();
  return d;
}

t.test('the captured event has the headers this test is about', async (t) => {
  const names = new Set(CAPTURED.map(([n]) => n));
  for (const h of TIME_HEADERS) t.ok(names.has(h), h);
  t.ok(CAPTURED.length > 200, `${CAPTURED.length} headers`);
});

t.test('sqlite: every header of CHANNEL_HANGUP_COMPLETE, four ways', async (t) => {
  const d = await damagedEventDaemon(t, 0);
  const names = [...new Set(CAPTURED.map(([n]) => n))];
  const cases = names.flatMap((header) => Object.keys(MUTATIONS).map((mutation) => ({ header, mutation })));
  await runCases(t, d, cases);
});

t.test('mariadb: the time headers and billsec, four ways', async (t) => {
  const d = await damagedEventDaemon(t, 1);
  await runCases(t, d, TIME_HEADERS.flatMap((header) => Object.keys(MUTATIONS).map((mutation) => ({ header, mutation }))));
});
