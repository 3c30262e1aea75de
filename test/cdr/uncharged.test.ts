/**
 * UnchargedBacklog (src/cdr/uncharged.ts): what a restarted daemon's spend groups count of the
 * CDRs found in its spool. Hand-edited or damaged lines charge nothing and never throw.
 */
import t from 'tap';
import { UnchargedBacklog } from '../../src/cdr/uncharged';
import { asciiJson } from '../../src/cdr/spool';
import { fromDbTimestamp } from '../../src/db/connect';
import { cdr } from './records';

const lines = (...rows: string[]): Buffer => Buffer.from(rows.map((r) => `${r}\n`).join(''));
const startOf = (i: number): number => fromDbTimestamp(cdr(i).started_at)?.getTime() ?? NaN;

t.test('costed CDRs by tenant, in the order of their segments; the rest charge nothing', async (t) => {
  const backlog = new UnchargedBacklog();
  const added = backlog.addSegment(
    lines(
      asciiJson(cdr(1, { cost: '0.1500' })), // its caller region escaped, as the spool writes it
      JSON.stringify(cdr(200, { tenant_id: 2, cost: '1.0000' })), // UTF-8, as an older spool wrote it
      '   ',
      JSON.stringify(cdr(3, { cost: null })),
      JSON.stringify(cdr(4, { cost: '0.0000' })),
      JSON.stringify(cdr(5, { cost: '-0.5000' })), // a refund, hand-made: never counted as money to spend
      JSON.stringify(cdr(6, { tenant_id: null, cost: '0.3000' })),
      JSON.stringify({ ...cdr(7), tenant_id: '1' }),
      JSON.stringify({ ...cdr(8), cost: 'junk' }),
      JSON.stringify({ ...cdr(9), started_at: null }),
      JSON.stringify({ ...cdr(10), started_at: 'yesterday' }), // the batch refuses it: never charged
      '{"cost":"0.1000", cut short',
      '"cost":"0.1000"',
      'null',
      JSON.stringify({ ...cdr(200), cost: 0.2 }), // as the replay would charge it: a number
      JSON.stringify(cdr(100, { cost: '0.0500' })).replace('"cost":', '"cost" : '), // hand-spaced
    ),
    100,
  );
  t.equal(added, 4, 'four CDRs with a tenant, a cost and a start');
  backlog.addSegment(lines(JSON.stringify(cdr(11, { cost: '0.0700' }))), 200);
  t.same(backlog.of(1, 100).map((c) => [c.cost, c.since, c.startedAtMs]), [[1500, 100, startOf(1)], [2000, 100, startOf(200)], [500, 100, startOf(100)], [700, 200, startOf(11)]]);
  t.same(backlog.of(2, 100).map((c) => c.cost), [10_000]);
  t.same(backlog.of(3, 100), [], 'a tenant with none');
  t.equal(backlog.size, 5);
});

t.test('CDRs of one tenant, segment and minute are one entry, their costs added', async (t) => {
  const backlog = new UnchargedBacklog();
  // cdr(i) starts i seconds after a whole minute: 0-59 share one, 60 the next.
  const rows = Array.from({ length: 61 }, (_, i) => JSON.stringify(cdr(i, { cost: '0.0100' })));
  t.equal(backlog.addSegment(lines(...rows), 100), 61);
  backlog.addSegment(lines(JSON.stringify(cdr(1, { cost: '0.0100' }))), 200);
  t.same(backlog.of(1, 100).map((c) => [c.cost, c.since]), [[6000, 100], [100, 100], [100, 200]], 'a minute, the next, another segment');
});

t.test('forgotten once the writer has charged every CDR handed in by their instant', async (t) => {
  const backlog = new UnchargedBacklog();
  backlog.addSegment(lines(JSON.stringify(cdr(1))), 100);
  backlog.addSegment(lines(JSON.stringify(cdr(2)), JSON.stringify(cdr(3, { tenant_id: 2 }))), 200);
  t.equal(backlog.of(1, 100).length, 2, 'the oldest not charged is the first segment\'s: both still count');
  t.equal(backlog.of(1, 150).length, 1, 'the first segment written: its CDR is forgotten');
  t.equal(backlog.of(1, 200).length, 1, 'pending since that very instant: still counted');
  t.same(backlog.of(1, 201), [], 'the second written');
  t.same(backlog.of(3, 201), [], 'another tenant asked for');
  t.equal(backlog.size, 0, 'past the latest instant: every tenant\'s forgotten, tenant 2\'s too');
  backlog.addSegment(lines(JSON.stringify(cdr(4))), 300);
  t.same(backlog.of(1, null), [], 'nothing left uncharged: none');
  t.equal(backlog.size, 0, 'and none kept');
});
