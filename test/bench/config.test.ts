/**
 * bench:config (bench/config.ts) at a tiny size, on both databases: its tenants' rows are all in
 * force with no finding, a poll with nothing changed reloads nothing, and the poll after its edit
 * reloads and puts the edit in force (measure() throws otherwise). What it times is a
 * measurement, not a test: here only that every figure is there.
 */
import t from 'tap';
import { measure } from '../../bench/config';
import { dbTargets } from '../helpers/db';

for (const target of dbTargets()) {
  t.test(target.name, async (t) => {
    const db = await target.create();
    t.teardown(() => db.destroy());
    const result = await measure(target.name, db.url, 40, 3);
    t.equal(result.db, target.name);
    t.equal(result.polls.length, 3, 'one figure a poll');
    for (const figure of [result.start, result.reload, ...result.polls]) {
      t.ok(Number.isFinite(figure.ms) && figure.ms >= 0, 'a duration');
      t.ok(Number.isFinite(figure.longestWaitMs) && figure.longestWaitMs >= 0, 'a longest wait of the loop');
    }
  });
}
