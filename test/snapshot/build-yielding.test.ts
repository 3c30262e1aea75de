// A reload while calls are up builds the snapshot in steps (buildSnapshotYielding, ledger.ts
// ROWS_PER_STEP): the same snapshot as the build at once, findings and last good rows included,
// with the event loop run between the steps.
import t from 'tap';
import { buildSnapshot, buildSnapshotYielding } from '../../src/snapshot/build';
import { ROWS_PER_STEP } from '../../src/snapshot/ledger';
import { accessNumberRow, destinationRow, goodRaw, groupRow, ruleRow, tenantRow } from './fixtures';

const WHEN = new Date('2026-11-21T08:00:00.000Z');
const TENANTS = 3 * ROWS_PER_STEP;

/** goodRaw() and TENANTS more tenants, each with a number, a group of one phone and a rule; some rows bad. */
function bigRaw(): ReturnType<typeof goodRaw> {
  const raw = goodRaw();
  for (let i = 0; i < TENANTS; i++) {
    const id = 1000 + i;
    raw.tenants.push(tenantRow(id, i % 97 === 0 ? { timezone: 'Asia/Beijing' } : {}));
    raw.access_numbers.push(accessNumberRow(id, id, `4009${String(i).padStart(6, '0')}`));
    raw.destination_groups.push(groupRow(id, id));
    raw.destinations.push(destinationRow(id, id, i % 89 === 0 ? 'not a number' : `1380${String(i).padStart(7, '0')}`));
    raw.routing_rules.push(ruleRow(id, id, { target_id: id }));
  }
  return raw;
}

t.test('the snapshot built in steps is the snapshot built at once', async (t) => {
  const raw = bigRaw();
  const atOnce = buildSnapshot(raw, 7, WHEN);
  t.ok(atOnce.rejected.length > 0, `some rows are refused (${atOnce.rejected.length} findings), so findings are compared too`);
  t.equal(atOnce.tenants.size, 2 + TENANTS - atOnce.rejected.filter((f) => f.table === 'tenants' && f.status === 'skipped').length);
  t.same(await buildSnapshotYielding(raw, 7, WHEN), atOnce);
  // And from last good rows, as every reload after the first builds.
  const edited = bigRaw();
  edited.tenants[5] = { ...edited.tenants[5], timezone: 'Mars/Olympus' };
  t.same(await buildSnapshotYielding(edited, 8, WHEN, atOnce.lastGood), buildSnapshot(edited, 8, WHEN, atOnce.lastGood));
});

t.test('the event loop runs between the steps, at least once every ROWS_PER_STEP rows of a table', async (t) => {
  const raw = bigRaw();
  let turns = 0;
  let building = true;
  const turn = (): void => {
    if (!building) return;
    turns++;
    setImmediate(turn);
  };
  setImmediate(turn);
  await buildSnapshotYielding(raw, 1, WHEN);
  building = false;
  // Five tables of TENANTS + a few rows each: at least three pauses in each.
  t.ok(turns >= 5 * 3, `${turns} turns of the event loop ran during the build`);

  // The build at once lets none run.
  turns = 0;
  building = true;
  setImmediate(turn);
  buildSnapshot(raw, 2, WHEN);
  building = false;
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(turns, 0, 'none during the build at once');
});
