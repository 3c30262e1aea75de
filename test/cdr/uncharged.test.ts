/**
 * UnchargedBacklog (src/cdr/uncharged.ts): what a restarted daemon's spend groups count of the
 * CDRs found in its spool. Hand-edited or damaged lines charge nothing and never throw.
 */
import t from 'tap';
import { UnchargedBacklog } from '../../src/cdr/uncharged';
import { asciiJson } from '../../src/cdr/spool';
import { cdr } from './records';

const lines = (...rows: string[]): Buffer => Buffer.from(rows.map((r) => `${r}\n`).join(''));

t.test('costed CDRs by tenant, in the order of their segments; the rest charge nothing', async (t) => {
  const backlog = new UnchargedBacklog();
  const added = backlog.addSegment(
    lines(
      asciiJson(cdr(1, { cost: '0.1500' })), // its caller region escaped, as the spool writes it
      JSON.stringify(cdr(2, { tenant_id: 2, cost: '1.0000' })), // UTF-8, as an older spool wrote it
      '   ',
      JSON.stringify(cdr(3, { cost: null })),
      JSON.stringify(cdr(4, { cost: '0.0000' })),
      JSON.stringify(cdr(5, { cost: '-0.5000' })), // a refund, hand-made: never counted as money to spend
      JSON.stringify(cdr(6, { tenant_id: null, cost: '0.3000' })),
      JSON.stringify({ ...cdr(7), tenant_id: '1' }),
      JSON.stringify({ ...cdr(8), cost: 'junk' }),
      JSON.stringify({ ...cdr(9), cost: 0.2 }),
      JSON.stringify({ ...cdr(10), started_at: null }),
      '{"cost":"0.1000", cut short',
      '"cost":"0.1000"',
      'null',
    ),
    100,
  );
  t.equal(added, 2, 'two CDRs with a tenant and a cost');
  backlog.addSegment(lines(JSON.stringify(cdr(11, { cost: '0.0700' }))), 200);
  t.same(backlog.of(1, 100).map((c) => [c.cost, c.since]), [[1500, 100], [700, 200]]);
  t.equal(backlog.of(1, 100)[0].startedAt, cdr(1).started_at, 'with the start it is charged by');
  t.same(backlog.of(2, 100).map((c) => c.cost), [10_000]);
  t.same(backlog.of(3, 100), [], 'a tenant with none');
  t.equal(backlog.size, 3);
});

t.test('forgotten once the writer has charged every CDR handed in by their instant', async (t) => {
  const backlog = new UnchargedBacklog();
  backlog.addSegment(lines(JSON.stringify(cdr(1))), 100);
  backlog.addSegment(lines(JSON.stringify(cdr(2)), JSON.stringify(cdr(3, { tenant_id: 2 }))), 200);
  t.equal(backlog.of(1, 100).length, 2, 'the oldest not charged is the first segment\'s: both still count');
  t.equal(backlog.of(1, 150).length, 1, 'the first segment written: its CDR is forgotten');
  t.equal(backlog.of(1, 200).length, 1, 'pending since that very instant: still counted');
  t.same(backlog.of(1, 201), [], 'the second written');
  t.equal(backlog.size, 1, 'tenant 2\'s kept until asked for or all is written');
  t.same(backlog.of(2, null), [], 'nothing left uncharged: none');
  t.equal(backlog.size, 0, 'and none kept');
});
