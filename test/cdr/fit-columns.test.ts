// fitColumns (src/cdr/record.ts) and asciiJson (src/cdr/spool.ts): what a CDR becomes on its way
// into the spool line, without a database. The writer's tests check the same rows in SQLite and
// MariaDB; these pin each rule on its own, with the line a replay reads back.
import t from 'tap';
import { fitColumns, type CdrRecord } from '../../src/cdr/record';
import { asciiJson } from '../../src/cdr/spool';
import { cdr } from './records';

t.test('the columns a record does not set are left out, in the record\'s order otherwise', async (t) => {
  const record: CdrRecord = {
    ...cdr(1),
    cost: null,
    failure_reason: null,
    call_type: undefined,
    admitted: undefined,
    origin: undefined,
    widget_id: undefined,
    visitor_ring_s: undefined,
    visitor_cost: undefined,
    ivr_path: null,
  };
  const row = fitColumns(record) as unknown as Record<string, unknown>;
  t.same(Object.keys(row), Object.keys(cdr(1)).filter((k) => k !== 'cost'), 'cost (null), failure_reason (null) and the unset columns are absent');
  t.equal(row.ivr_path, null, 'any other null stays null');
  t.equal(row.recording_path, null);
  t.not(row, record, 'a copy');
  t.equal(record.cost, null, 'the record itself is not changed');
});

t.test('null call_type and admitted are written as null; set values are kept', async (t) => {
  const row = fitColumns(cdr(2, { call_type: null, admitted: null, origin: 'click_to_call', widget_id: 7, visitor_ring_s: 3, visitor_cost: '0.0200', failure_reason: 'broke' })) as unknown as Record<string, unknown>;
  t.equal(row.call_type, null);
  t.equal(row.admitted, null);
  t.same([row.origin, row.widget_id, row.visitor_ring_s, row.visitor_cost, row.failure_reason], ['click_to_call', 7, 3, '0.0200', 'broke']);
});

t.test('admitted becomes 0/1', async (t) => {
  t.equal((fitColumns(cdr(3, { admitted: true })) as unknown as Record<string, unknown>).admitted, 1);
  t.equal((fitColumns(cdr(3, { admitted: false })) as unknown as Record<string, unknown>).admitted, 0);
});

t.test('text longer than its column is cut to the width the migration declares, shorter text is kept', async (t) => {
  const row = fitColumns(cdr(4, { ivr_path: '1'.repeat(300), caller_region: '省'.repeat(64), recording_path: `/r/${'x'.repeat(2000)}`, failure_reason: 'e'.repeat(256) }));
  t.equal(row.ivr_path?.length, 255);
  t.equal(row.caller_region, '省'.repeat(64), 'exactly the width: kept');
  t.equal(row.recording_path?.length, 1024);
  t.equal(row.failure_reason?.length, 255);
  t.equal(row.access_number, '4001000001');
});

t.test('the spool line: pure ASCII, and JSON.parse gives the row back', async (t) => {
  const row = fitColumns(cdr(5, { caller_region: '广东省广州市 😀', answered_by: 'ext "9"\\' }));
  const line = asciiJson(row);
  t.match(line, /^[\x20-\x7e]*$/, 'nothing beyond ASCII, no control characters');
  t.same(JSON.parse(line), row);
  const plain = fitColumns(cdr(6, { caller_region: null }));
  t.equal(asciiJson(plain), JSON.stringify(plain), 'an ASCII row is its JSON as it is');
  t.throws(() => asciiJson(undefined), TypeError, 'a value without JSON text is refused, not spooled as the line "undefined"');
});
