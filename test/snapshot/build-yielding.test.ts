// A reload while calls are up builds the snapshot in steps (buildSnapshotYielding, ledger.ts
// ROWS_PER_STEP): the same snapshot as the build at once, findings and last good rows included,
// with the event loop run between the steps.
import t from 'tap';
import { buildSnapshot, buildSnapshotYielding } from '../../src/snapshot/build';
import { ROWS_PER_STEP } from '../../src/snapshot/ledger';
import { accessNumberRow, destinationRow, goodRaw, groupRow, ruleRow, tenantRow, type Row } from './fixtures';

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
  // Five tables of TENANTS + a few rows each, each compared with its last good rows and then
  // validated, three pauses each; the groups put together and the tenants' links checked, three
  // pauses each: at 10,000 tenants those were steps of 22-67 ms (bench/PROFILE.md, release 30).
  t.ok(turns >= 5 * 2 * 3, `${turns} turns of the event loop ran during the build`);

  // The build at once lets none run.
  turns = 0;
  building = true;
  setImmediate(turn);
  buildSnapshot(raw, 2, WHEN);
  building = false;
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(turns, 0, 'none during the build at once');
});

t.test('rows in any order build the snapshot rows in id order build, findings and last good rows included', async (t) => {
  // One row per id, as a table has (bigRaw's rules 1000 and 2000 are goodRaw's ids again).
  type Tables = ReturnType<typeof goodRaw>;
  const tables = (raw: Tables): Array<[string, Row[]]> => Object.entries(raw).map(([table, rows]) => [table, (rows ?? []) as Row[]]);
  const unique = (raw: Tables): Tables => Object.fromEntries(tables(raw).map(([table, rows]) => [table, rows.filter((r, i) => rows.findIndex((x) => x.id === r.id) === i)])) as unknown as Tables;
  const sorted = unique(bigRaw());
  // Two rows that claim one number: which keeps it depends on the order the ledger takes them in.
  sorted.access_numbers.push(accessNumberRow(5000, 1001, '4009000003'));
  const shuffled = (raw: Tables): Tables => Object.fromEntries(tables(raw).map(([table, rows]) => [table, [...rows].reverse()])) as unknown as Tables;
  const first = buildSnapshot(sorted, 1, WHEN);
  t.ok(first.rejected.some((f) => f.table === 'access_numbers' && f.id === 5000), 'the later row of the number is the one refused');
  t.same(buildSnapshot(shuffled(sorted), 1, WHEN), first, 'at once, from the first load');
  const edited = unique(bigRaw());
  edited.access_numbers.push(accessNumberRow(5000, 1001, '4009000003'));
  edited.tenants[7] = { ...edited.tenants[7], timezone: 'Mars/Olympus' };
  edited.destinations[9] = { ...edited.destinations[9], number: 'edited, not a number' };
  t.same(await buildSnapshotYielding(shuffled(edited), 2, WHEN, first.lastGood), buildSnapshot(edited, 2, WHEN, first.lastGood), 'in steps, from last good rows, edited rows among them');
});
