// Last good row (issue 10): a row edited into a bad state keeps its last valid version in force,
// per table and id, until it is fixed; a row that was never valid is skipped; a deleted row is
// deleted; a bad child never removes its tenant. Pure: buildSnapshot(raw, version, at, lastGood).
import t from 'tap';
import { identify } from '../../src/domain/routing';
import { buildSnapshot, type RawTables } from '../../src/snapshot/build';
import { findingsForTenant, formatFinding } from '../../src/snapshot/findings';
import type { ConfigSnapshot } from '../../src/snapshot/types';
import { accessNumberRow, goodRaw, groupRow, ruleRow, tenantRow, type Row } from './fixtures';

const WHEN = new Date('2026-11-21T08:00:00.000Z');

/** The snapshot of the good fixture, as the previous build. */
function good(): ConfigSnapshot {
  const s = buildSnapshot(goodRaw(), 1, WHEN);
  if (s.rejected.length > 0) throw new Error('the fixture is not clean');
  return s;
}

/** goodRaw() with one row of `table` replaced by `edit(row)` (or removed when edit returns null). */
function edited(table: keyof RawTables, id: number, edit: (row: Row) => Row | null, base: RawTables = goodRaw()): RawTables {
  const raw = structuredClone(base);
  const rows = raw[table] ?? [];
  const i = rows.findIndex((r) => r.id === id);
  if (i < 0) throw new Error(`no ${table} ${id} in the fixture`);
  const next = edit({ ...rows[i] });
  if (next === null) rows.splice(i, 1);
  else rows[i] = { ...next, updated_at: '2026-11-21 08:05:00.000' };
  raw[table] = rows;
  return raw;
}

/** What a call routes by: the parts of the snapshot calls read, without the bookkeeping. */
function routing(s: ConfigSnapshot) {
  return { tenants: s.tenants, accessNumbers: s.accessNumbers, groups: s.groups, rulesByTenant: s.rulesByTenant, prompts: s.prompts };
}

const CASES: Array<{ name: string; table: keyof RawTables; id: number; set: Row; column: string; value: string; reason: RegExp; tenantId: number }> = [
  { name: "tenants.timezone='Asia/Beijing'", table: 'tenants', id: 1, set: { timezone: 'Asia/Beijing' }, column: 'timezone', value: '"Asia/Beijing"', reason: /not an IANA time zone/, tenantId: 1 },
  { name: 'tenants.ring_timeout_s=0', table: 'tenants', id: 1, set: { ring_timeout_s: 0 }, column: 'ring_timeout_s', value: '0', reason: /must be at least 1/, tenantId: 1 },
  { name: "tenants.name=''", table: 'tenants', id: 1, set: { name: '' }, column: 'name', value: '""', reason: /name must be non-empty text/, tenantId: 1 },
  { name: 'destination_groups.ring_timeout_s=-5', table: 'destination_groups', id: 10, set: { ring_timeout_s: -5 }, column: 'ring_timeout_s', value: '-5', reason: /at least 1/, tenantId: 1 },
  { name: 'routing_rules.percent=150', table: 'routing_rules', id: 1000, set: { percent: 150 }, column: 'percent', value: '150', reason: /at most 100/, tenantId: 1 },
  { name: 'routing_rules.target_id=9999', table: 'routing_rules', id: 1000, set: { target_id: 9999 }, column: 'target_id', value: '9999', reason: /target_id 9999 is not a destination group of tenant 1/, tenantId: 1 },
  { name: "destination_groups.strategy='roundrobin'", table: 'destination_groups', id: 10, set: { strategy: 'roundrobin' }, column: 'strategy', value: '"roundrobin"', reason: /must be one of sequential, random, round_robin/, tenantId: 1 },
  { name: "destinations.number='138 0000'", table: 'destinations', id: 100, set: { number: '138 0000' }, column: 'number', value: '"138 0000"', reason: /not a dialable number/, tenantId: 1 },
  { name: 'destinations.group_id=999 (no such group)', table: 'destinations', id: 100, set: { group_id: 999 }, column: 'group_id', value: '999', reason: /^group_id 999: destination group 999 does not exist$/, tenantId: 1 },
  { name: 'routing_rules.tenant_id=2 (another tenant)', table: 'routing_rules', id: 1000, set: { tenant_id: 2 }, column: 'access_number_id', value: '1', reason: /access_number_id 1 is not a number of tenant 2/, tenantId: 2 },
  { name: "access_numbers.kind='fax'", table: 'access_numbers', id: 1, set: { kind: 'fax' }, column: 'kind', value: '"fax"', reason: /hotline, switchboard/, tenantId: 1 },
  { name: "tenants.operator_group_id = another tenant's group", table: 'tenants', id: 1, set: { operator_group_id: 20 }, column: 'operator_group_id', value: '20', reason: /not a destination group of this tenant/, tenantId: 1 },
  { name: "destination_groups.failover_group_id = another tenant's group", table: 'destination_groups', id: 10, set: { failover_group_id: 20 }, column: 'failover_group_id', value: '20', reason: /not a group of the same tenant/, tenantId: 1 },
];

t.test('each edit of the issue keeps the last good version in force: the tenant routes exactly as before', async (t) => {
  const before = good();
  for (const c of CASES) {
    const raw = edited(c.table, c.id, (row) => ({ ...row, ...c.set }));
    const s = buildSnapshot(raw, 2, WHEN, before.lastGood);
    t.same(routing(s), routing(before), `${c.name}: the same configuration is in force`);
    t.equal(identify(s, '4001000001').kind, 'ok', `${c.name}: tenant 1's number is in service`);
    t.equal(s.rejected.length, 1, `${c.name}: one finding`);
    t.match(s.rejected[0], { table: c.table, id: c.id, status: 'last_good', column: c.column, value: c.value, reason: c.reason, tenantId: c.tenantId, editedAt: '2026-11-21 08:05:00.000' }, c.name);
    t.same(s.lastGood.get(c.table)?.get(c.id), before.lastGood.get(c.table)?.get(c.id), `${c.name}: the last good row is carried on`);

    // Without a last good version (the first load) the same row is skipped.
    // (A row naming a group that does not exist is counted in that group's "missing" finding.)
    const first = buildSnapshot(raw, 1, WHEN);
    const finding = first.rejected.find((f) => (f.table === c.table && f.id === c.id) || (f.status === 'missing' && f.dependents[c.table] === 1));
    t.ok(finding && ['skipped', 'link_ignored', 'missing'].includes(finding.status), `${c.name}: without a last good version: ${finding?.status}`);
  }
});

t.test('the last good version stays through further bad edits, each one a new finding, until the row is fixed', async (t) => {
  const v1 = good();
  const v2 = buildSnapshot(edited('tenants', 1, (r) => ({ ...r, timezone: 'Asia/Beijing' })), 2, WHEN, v1.lastGood);
  const v3 = buildSnapshot(edited('tenants', 1, (r) => ({ ...r, timezone: 'Beijing' })), 3, WHEN, v2.lastGood);
  t.match(v3.rejected, [{ status: 'last_good', value: '"Beijing"' }], 'a second typo: still the last good version');
  t.equal(v3.tenants.get(1)?.timezone, 'Asia/Shanghai');
  const fixed = buildSnapshot(edited('tenants', 1, (r) => ({ ...r, timezone: 'Asia/Chongqing' })), 4, WHEN, v3.lastGood);
  t.same(fixed.rejected, [], 'fixed: no finding');
  t.equal(fixed.tenants.get(1)?.timezone, 'Asia/Chongqing', 'the fixed version is in force');
  t.equal(fixed.lastGood.get('tenants')?.get(1)?.timezone, 'Asia/Chongqing', 'and is the new last good version');
  const again = buildSnapshot(edited('tenants', 1, (r) => ({ ...r, timezone: 'Mars/Olympus' })), 5, WHEN, fixed.lastGood);
  t.equal(again.tenants.get(1)?.timezone, 'Asia/Chongqing', 'the next typo falls back to the fixed version');
});

t.test('a deleted row is deleted, not kept as "last good"; fewer rows mean fewer rows', async (t) => {
  const before = good();
  const s = buildSnapshot(edited('destinations', 101, () => null), 2, WHEN, before.lastGood);
  t.same(s.groups.get(10)?.destinations.map((d) => d.id), [100]);
  t.notOk(s.lastGood.get('destinations')?.has(101), 'gone from the last good rows too');
  t.same(s.rejected, []);

  const emptied: RawTables = { ...goodRaw(), routing_rules: [], destinations: [] };
  const e = buildSnapshot(emptied, 3, WHEN, before.lastGood);
  t.equal(e.rulesByTenant.size, 0, 'a table returned empty: no rules in force');
  t.same([...e.groups.values()].map((g) => g.destinations.length), [0, 0, 0]);

  // A bad row deleted while its last good version was in force: gone as well.
  const bad = buildSnapshot(edited('routing_rules', 1000, (r) => ({ ...r, percent: 150 })), 4, WHEN, before.lastGood);
  const deleted = buildSnapshot(edited('routing_rules', 1000, () => null), 5, WHEN, bad.lastGood);
  t.notOk(deleted.rulesByTenant.get(1)?.some((r) => r.id === 1000), 'rule 1000 is gone');
  t.same(deleted.rejected, []);
});

t.test('a row deleted under a rule that names it: the finding says the row does not exist, not only that the rule names it', async (t) => {
  const before = good();
  const s = buildSnapshot(edited('destination_groups', 11, () => null), 2, WHEN, before.lastGood);
  t.match(s.rejected, [{ table: 'destination_groups', id: 10, status: 'link_ignored', column: 'failover_group_id', reason: /failover_group_id 11 is not a group/ }]);
  const ruleGone = buildSnapshot(edited('destination_groups', 10, () => null), 3, WHEN, before.lastGood);
  t.match(ruleGone.rejected.find((f) => f.table === 'routing_rules'), {
    id: 1000, status: 'skipped', column: 'target_id', value: '10',
    reason: /^target_id 10 is not a destination group of tenant 1: destination group 10 does not exist \(deleted, or never written\)$/,
  });
  // Another tenant's row is not "deleted": the reason stays as it was.
  const raw = goodRaw();
  raw.routing_rules[0] = { ...raw.routing_rules[0], target_id: 20 };
  t.match(buildSnapshot(raw, 1, WHEN).rejected, [{ table: 'routing_rules', id: 1000, reason: /^target_id 20 is not a destination group of tenant 1$/ }]);
});

t.test('a new row that was never valid is skipped; a bad child never removes its tenant', async (t) => {
  const before = good();
  const raw = goodRaw();
  raw.routing_rules.push(ruleRow(1001, 1, { priority: 1, target_id: 9999 }));
  raw.destination_groups.push(groupRow(12, 1, { strategy: 'roundrobin' }));
  raw.call_filters = [{ id: 1, tenant_id: 1, list: 'block', kind: 'number', value: '139-1234' }];
  raw.ivr_menus = [{ id: 1, tenant_id: 1, name: 'Main', digits: 0 }];
  raw.ivr_options = [{ id: 1, menu_id: 1, digits: '1', action: 'group', target_id: 10 }];
  const s = buildSnapshot(raw, 2, WHEN, before.lastGood);
  t.same(routing(s), routing(before), 'tenant 1 routes as before');
  t.same(s.rejected.map((f) => [f.table, f.id, f.status]), [
    ['destination_groups', 12, 'skipped'],
    ['routing_rules', 1001, 'skipped'],
    ['call_filters', 1, 'skipped'],
    ['ivr_menus', 1, 'skipped'],
  ]);
  t.match(s.rejected.find((f) => f.table === 'ivr_menus'), { dependents: { ivr_options: 1 } }, "the menu's option is counted in it");
});

t.test('a rule pointing at a group that is not in force is counted in the group\'s finding', async (t) => {
  const raw = goodRaw();
  raw.destination_groups.push(groupRow(12, 1, { strategy: 'roundrobin' }));
  raw.routing_rules.push(ruleRow(1001, 1, { priority: 1, target_id: 12 }));
  const s = buildSnapshot(raw, 1, WHEN);
  t.same(s.rejected.map((f) => [f.table, f.id, f.dependents]), [['destination_groups', 12, { routing_rules: 1 }]]);
  t.ok(s.tenants.has(1), 'the tenant stays');
});

t.test('a unique value: the row that had it keeps it against a new edit, whichever id is lower', async (t) => {
  const base = goodRaw();
  base.access_numbers.push(accessNumberRow(3, 1, '4001000003'));
  const before = buildSnapshot(base, 1, WHEN);
  // Row 3 edited to row 1's number: row 3 falls back to its own last good number.
  const a = buildSnapshot(edited('access_numbers', 3, (r) => ({ ...r, number: '4001000001' }), base), 2, WHEN, before.lastGood);
  t.equal(a.accessNumbers.get('4001000001')?.id, 1);
  t.equal(a.accessNumbers.get('4001000003')?.id, 3);
  t.match(a.rejected, [{ table: 'access_numbers', id: 3, status: 'last_good', column: 'number', reason: /listed twice \(access number 1 has it\)/ }]);
  // Row 1 (the lower id) edited to row 3's number: row 3, unchanged, keeps it; row 1 falls back.
  const b = buildSnapshot(edited('access_numbers', 1, (r) => ({ ...r, number: '4001000003' }), base), 2, WHEN, before.lastGood);
  t.equal(b.accessNumbers.get('4001000003')?.id, 3, 'the unchanged row keeps its number');
  t.equal(b.accessNumbers.get('4001000001')?.id, 1, 'the edited row is on its last good version');
  t.match(b.rejected, [{ table: 'access_numbers', id: 1, status: 'last_good' }]);
});

/**
 * A unique key typed into another row, then a valid edit of the row that holds the key: the
 * holder is edited too now, so "unchanged rows first" no longer decides; it must still keep its
 * key whatever the ids (the DBA review's D1: the lower-id typo took the key and the holder was
 * skipped as "no last good version").
 */
const CONTESTS: Array<{ name: string; table: keyof RawTables; rows: Row[]; typo: [number, Row]; holderEdit: [number, Row]; kept: (s: ConfigSnapshot) => unknown; expected: unknown }> = [
  {
    name: "access numbers: tenant 1's number typed as tenant 2's switchboard number",
    table: 'access_numbers',
    rows: [accessNumberRow(1, 1, '4001000001'), accessNumberRow(3, 2, '02088880003', { kind: 'switchboard' })],
    typo: [1, { number: '020-8888-0003' }],
    holderEdit: [3, { home_area_code: '020' }],
    kept: (s) => [...s.accessNumbers.values()].map((a) => [a.id, a.tenantId, a.number]).sort(),
    expected: [[1, 1, '4001000001'], [3, 2, '02088880003']],
  },
  {
    name: 'rates: the mobile rate typed as local, then the local price changed',
    table: 'rates',
    rows: [
      { id: 1, tenant_id: null, call_type: 'mobile', per_minute: '0.2000', increment_s: 60, connect_fee: '0' },
      { id: 2, tenant_id: null, call_type: 'local', per_minute: '0.1000', increment_s: 60, connect_fee: '0' },
      { id: 3, tenant_id: null, call_type: 'long_distance', per_minute: '0.3000', increment_s: 60, connect_fee: '0' },
      { id: 4, tenant_id: null, call_type: 'international', per_minute: '1.0000', increment_s: 60, connect_fee: '0' },
    ],
    typo: [1, { call_type: 'local' }],
    holderEdit: [2, { per_minute: '0.1200' }],
    kept: (s) => s.rates.map((r) => [r.id, r.callType, r.perMinute]).sort(),
    expected: [[1, 'mobile', 2000], [2, 'local', 1200], [3, 'long_distance', 3000], [4, 'international', 10000]],
  },
  {
    name: "extensions: 801 typed as ' 802', then 802's department edited",
    table: 'extensions',
    rows: [{ id: 1, tenant_id: 1, ext: '801' }, { id: 2, tenant_id: 1, ext: '802' }],
    typo: [1, { ext: ' 802' }],
    holderEdit: [2, { department: 'Sales' }],
    kept: (s) => [...(s.extensionsByTenant.get(1)?.values() ?? [])].map((e) => [e.id, e.ext, e.department]).sort(),
    expected: [[1, '801', null], [2, '802', 'Sales']],
  },
  {
    name: "IVR options: key 1 typed as 3, then option 3's target changed",
    table: 'ivr_options',
    rows: [{ id: 1, menu_id: 1, digits: '1', action: 'group', target_id: 10 }, { id: 4, menu_id: 1, digits: '3', action: 'group', target_id: 10 }],
    typo: [1, { digits: '3' }],
    holderEdit: [4, { target_id: 11 }],
    kept: (s) => [...(s.menus.get(1)?.options.values() ?? [])].map((o) => [o.id, o.digits, o.targetId]).sort(),
    expected: [[1, '1', 10], [4, '3', 11]],
  },
];

t.test('a unique key typed into another row stays with its holder when the holder is edited too, whichever id is lower', async (t) => {
  for (const c of CONTESTS) {
    const base = goodRaw();
    if (c.table === 'ivr_options') base.ivr_menus = [{ id: 1, tenant_id: 1, name: 'Main', digits: 1 }];
    base[c.table] = c.rows;
    const first = buildSnapshot(base, 1, WHEN);
    t.same(first.rejected, [], `${c.name}: the rows are clean`);
    const typo = edited(c.table, c.typo[0], (r) => ({ ...r, ...c.typo[1] }), base);
    const second = buildSnapshot(typo, 2, WHEN, first.lastGood);
    t.same(c.kept(second), c.kept(first), `${c.name}: the typo is refused, its row on its last good version`);
    t.match(second.rejected, [{ table: c.table, id: c.typo[0], status: 'last_good' }]);
    // Then a valid edit of the holder (later than the typo: the holder is the newer edit).
    const both = structuredClone(typo);
    const rows = both[c.table]!;
    const i = rows.findIndex((r) => r.id === c.holderEdit[0]);
    rows[i] = { ...rows[i], ...c.holderEdit[1], updated_at: '2026-11-21 08:10:00.000' };
    const third = buildSnapshot(both, 3, WHEN, second.lastGood);
    t.same(c.kept(third), c.expected, `${c.name}: the holder keeps its key with its edit; the typo's row stays on its last good version`);
    t.same(third.rejected.map((f) => [f.table, f.id, f.status]), [[c.table, c.typo[0], 'last_good']], `${c.name}: one finding, the typo's`);
  }
});

t.test('a chain of keys typed one into the next: each holder keeps its own, the typos stay on their last good versions', async (t) => {
  const base = goodRaw();
  base.extensions = [{ id: 1, tenant_id: 1, ext: '801' }, { id: 2, tenant_id: 1, ext: '802' }, { id: 3, tenant_id: 1, ext: '803' }];
  const first = buildSnapshot(base, 1, WHEN);
  t.same(first.rejected, []);
  const inForce = (s: ConfigSnapshot): unknown => [...(s.extensionsByTenant.get(1)?.values() ?? [])].map((e) => [e.id, e.ext]).sort();
  const at = (time: string): Row => ({ updated_at: `2026-11-21 ${time}.000` });
  // 1 typed into 2's key, 2 into 3's, and a valid edit of 3: 2 waits for 3, 1 for 2.
  const chain = structuredClone(base);
  chain.extensions = [{ id: 1, tenant_id: 1, ext: '802', ...at('08:05:00') }, { id: 2, tenant_id: 1, ext: '803', ...at('08:05:00') }, { id: 3, tenant_id: 1, ext: '803', department: 'Sales', ...at('08:06:00') }];
  const s = buildSnapshot(chain, 2, WHEN, first.lastGood);
  t.same(inForce(s), [[1, '801'], [2, '802'], [3, '803']]);
  t.same(s.rejected.map((f) => [f.id, f.status]), [[1, 'last_good'], [2, 'last_good']]);
  // Two rows typed into each other's keys (a swap done in one go): each waits for the other;
  // settled by id, each takes the key the other left.
  const swap = structuredClone(base);
  swap.extensions = [{ id: 1, tenant_id: 1, ext: '802', ...at('08:05:00') }, { id: 2, tenant_id: 1, ext: '801', ...at('08:05:00') }, { id: 3, tenant_id: 1, ext: '803' }];
  const swapped = buildSnapshot(swap, 2, WHEN, first.lastGood);
  t.same(inForce(swapped), [[1, '802'], [2, '801'], [3, '803']], 'a swap is taken whole');
  t.same(swapped.rejected, []);
  // A swap of 2 and 3, and row 1 typed into one of the swapped keys a minute later: the swap is
  // still taken whole, the typo stays on its last good version (a review found 3 skipped).
  const both = structuredClone(base);
  both.extensions = [{ id: 1, tenant_id: 1, ext: '802', ...at('08:06:00') }, { id: 2, tenant_id: 1, ext: '803', ...at('08:05:00') }, { id: 3, tenant_id: 1, ext: '802', ...at('08:05:00') }];
  const typoIntoSwap = buildSnapshot(both, 2, WHEN, first.lastGood);
  t.same(inForce(typoIntoSwap), [[1, '801'], [2, '803'], [3, '802']], 'the swap whole, the typo on its last good version');
  t.same(typoIntoSwap.rejected.map((f) => [f.id, f.status]), [[1, 'last_good']]);
});

t.test('an access number not in force is found by its number whatever the column type (route explain)', async (t) => {
  for (const number of ['4001000009', 4001000009]) {
    const raw = goodRaw();
    raw.access_numbers.push({ ...accessNumberRow(9, 999, '4001000009'), number });
    const s = buildSnapshot(raw, 1, WHEN);
    t.same([...s.numbersNotInForce.keys()], ['4001000009'], `${typeof number}: its finding is found by the number`);
  }
});

t.test('with no last good version at all (a first load without a cache), the row edited longest ago keeps a key listed twice', async (t) => {
  const raw = goodRaw();
  raw.access_numbers = [
    // Row 1 is the typo of this morning; row 3 has held the number since last year.
    accessNumberRow(1, 1, '02088880003', { updated_at: '2026-11-21 08:05:00.000' }),
    accessNumberRow(3, 2, '02088880003', { kind: 'switchboard', updated_at: '2025-06-01 10:00:00.000' }),
  ];
  const s = buildSnapshot(raw, 1, WHEN);
  t.equal(s.accessNumbers.get('2088880003')?.id, 3, 'the older row keeps it');
  t.match(s.rejected, [{ table: 'access_numbers', id: 1, status: 'skipped', reason: /listed twice \(access number 3 has it\)/ }]);
  // The same edit times: the lower id, as before.
  raw.access_numbers[1].updated_at = raw.access_numbers[0].updated_at;
  t.equal(buildSnapshot(raw, 1, WHEN).accessNumbers.get('2088880003')?.id, 1, 'same time: the lower id');
  // MySQL's Dates compare the same way.
  raw.access_numbers[0].updated_at = new Date('2026-11-21T08:05:00.000Z');
  raw.access_numbers[1].updated_at = new Date('2025-06-01T10:00:00.000Z');
  t.equal(buildSnapshot(raw, 1, WHEN).accessNumbers.get('2088880003')?.id, 3, 'Dates: the older row keeps it');
});

t.test('a PIN is never shown; long values are cut', async (t) => {
  const before = good();
  const s = buildSnapshot(edited('tenants', 2, (r) => ({ ...r, pin: '12ab' })), 2, WHEN, before.lastGood);
  t.match(s.rejected, [{ table: 'tenants', id: 2, column: 'pin', value: '(hidden)', status: 'last_good' }]);
  const text = JSON.stringify(s.rejected) + formatFinding(s.rejected[0]);
  t.notMatch(text, /12ab/, 'the bad PIN is not in the finding');
  t.notMatch(text, /1234/, 'nor the good one');
  t.equal(s.tenants.get(2)?.pin, '1234', 'the last good PIN is in force');

  const long = buildSnapshot(edited('destinations', 100, (r) => ({ ...r, number: `1${'x'.repeat(10_000)}` })), 2, WHEN, before.lastGood);
  t.ok((long.rejected[0]?.value ?? '').length <= 64, `value cut to ${long.rejected[0]?.value?.length} characters`);
  t.ok(long.rejected[0].reason.length < 200, 'and the reason too');
});

t.test('rates are checked against what DECIMAL(14,4) holds for the longest call', async (t) => {
  const raw = goodRaw();
  raw.rates = [
    { id: 1, tenant_id: null, call_type: 'local', per_minute: '0.1000', increment_s: 60, connect_fee: '9999999999.9999' },
    { id: 2, tenant_id: null, call_type: 'mobile', per_minute: '50000000.0000', increment_s: 60, connect_fee: '0' },
    { id: 3, tenant_id: 1, call_type: 'local', per_minute: '0.1500', increment_s: 6, connect_fee: '0.1000' },
    { id: 4, tenant_id: null, call_type: 'international', per_minute: '41666666.6666', increment_s: 60, connect_fee: '0' },
  ];
  const s = buildSnapshot(raw, 1, WHEN);
  // With rates 1 and 2 refused, the active tenant 1 has no mobile rate (tenant 2 is suspended:
  // it takes no call), nor a long_distance one; its local rate is its own.
  t.match(s.rejected.filter((f) => f.id === null), [
    { table: 'rates', status: 'doubtful', column: 'call_type', value: '"long_distance: tenants 1"', reason: /^no long_distance rate: no default one \(tenant_id NULL\), and active tenants without their own: their long_distance calls cost nothing$/ },
    { value: '"mobile: tenants 1"' },
  ]);
  t.equal(s.rejected.filter((f) => f.id === null).length, 2, 'international has its default');
  t.match(s.rejected, [
    { table: 'rates', id: 1, column: 'connect_fee', value: '"9999999999.9999"', reason: /a call of 14400 s \(CALL_MAX_DURATION_S\) would cost 10000000023\.9999, more than cdrs\.cost and tenant_usage\.spend hold \(9999999999\.9999\)/ },
    { table: 'rates', id: 2, column: 'per_minute', reason: /would cost 12000000000\.0000/ },
  ]);
  t.equal(s.rejected.length, 2 + 2, '41666666.6666/min for 240 min fits (9999999999.9840)');
  t.same(s.rates.map((r) => r.id), [3, 4]);
  t.ok(Object.isFrozen(s.rates), 'the list is frozen, so chooseRate keeps its index for the snapshot\'s life');
  const shorter = buildSnapshot(raw, 1, WHEN, undefined, { maxCallS: 3600 });
  t.same(shorter.rates.map((r) => r.id), [2, 3, 4], 'with calls of at most an hour, 50000000/min fits');

  const caps = buildSnapshot({ ...goodRaw(), tenants: [tenantRow(1, { max_spend_day: '-1.0000' }), ...goodRaw().tenants.slice(1)] }, 1, WHEN);
  t.match(caps.rejected, [{ table: 'tenants', id: 1, column: 'max_spend_day', reason: /must not be negative/ }]);
  const huge = buildSnapshot({ ...goodRaw(), tenants: [tenantRow(1, { balance: '99999999999.0000' }), ...goodRaw().tenants.slice(1)] }, 1, WHEN);
  t.match(huge.rejected, [{ table: 'tenants', id: 1, column: 'balance', reason: /DECIMAL\(14,4\)/ }], 'more than DECIMAL(14,4) holds (SQLite lets a DBA type it)');
});

t.test('findingsForTenant: the findings that concern one tenant', async (t) => {
  const before = good();
  const raw = edited('routing_rules', 1000, (r) => ({ ...r, percent: 150 }));
  raw.routing_rules.push(ruleRow(2001, 2, { target_id: 9999 }));
  const s = buildSnapshot(raw, 2, WHEN, before.lastGood);
  t.same(findingsForTenant(s, 1).map((f) => f.id), [1000]);
  t.same(findingsForTenant(s, 2).map((f) => f.id), [2001]);
  t.same(findingsForTenant(s, 3), []);
});

t.test('pure: the last good rows passed in are not changed', async (t) => {
  const before = good();
  const copy = new Map([...before.lastGood].map(([table, rows]) => [table, new Map(rows)]));
  buildSnapshot(edited('tenants', 1, (r) => ({ ...r, timezone: 'x' })), 2, WHEN, before.lastGood);
  buildSnapshot({ ...goodRaw(), tenants: [] }, 3, WHEN, before.lastGood);
  t.same(before.lastGood, copy);
});
