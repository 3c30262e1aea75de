/** Screening without sockets: withheld callers, block lists, per-kind allow lists, regions. */
import t from 'tap';
import { callerNumber } from '../../src/domain/caller-number';
import { geocode, loadGeoData } from '../../src/domain/geo';
import { numberSpellings, screenCaller } from '../../src/domain/screening';
import { buildSnapshot, NO_FILTERS } from '../../src/snapshot/build';
import type { Tenant, TenantFilters } from '../../src/snapshot/types';

function tenant(extra: Record<string, unknown> = {}): Tenant {
  return buildSnapshot({
    tenants: [{ id: 1, name: 'T', status: 'active', timezone: 'Asia/Shanghai', ...extra }],
    access_numbers: [], destination_groups: [], destinations: [], routing_rules: [], prompts: [],
  }, 1, new Date(0)).tenants.get(1)!;
}

function filters(rows: Array<[list: string, kind: string, value: string]>): TenantFilters {
  const snap = buildSnapshot({
    tenants: [{ id: 1, name: 'T', status: 'active', timezone: 'Asia/Shanghai' }],
    access_numbers: [], destination_groups: [], destinations: [], routing_rules: [], prompts: [],
    call_filters: rows.map(([list, kind, value], i) => ({ id: i + 1, tenant_id: 1, list, kind, value })),
  }, 1, new Date(0));
  t.same(snap.rejected, [], 'filter rows valid');
  return snap.filtersByTenant.get(1) ?? NO_FILTERS;
}

const screen = (ten: Tenant, f: TenantFilters, raw: string) => {
  const caller = callerNumber(raw);
  return screenCaller(ten, f, caller, geocode(caller.number)).verdict;
};

t.before(async () => {
  await loadGeoData();
});

t.test('number spellings a DBA may have used', async (t) => {
  t.same(numberSpellings('+8613912345678').sort(), ['13912345678', '8613912345678'].sort());
  t.ok(numberSpellings('02088888888').includes('2088888888'));
  t.ok(numberSpellings('+862088888888').includes('02088888888'));
  t.same(numberSpellings('anonymous'), []);
});

t.test('withheld callers', async (t) => {
  t.equal(screen(tenant(), NO_FILTERS, 'anonymous'), 'pass', 'allowed by default');
  t.equal(screen(tenant({ anonymous_callers: 'block' }), NO_FILTERS, 'anonymous'), 'blocked');
  t.equal(screen(tenant({ anonymous_callers: 'block' }), NO_FILTERS, ''), 'blocked');
  t.equal(screen(tenant(), filters([['allow', 'number', '13912345678']]), 'anonymous'), 'blocked', 'an allow list cannot be satisfied without a number');
});

t.test('block list: exact numbers in any spelling, prefixes, regions', async (t) => {
  const f = filters([['block', 'number', '13912345678'], ['block', 'prefix', '170'], ['block', 'region', '广东'], ['block', 'number', '+8613800000000']]);
  const ten = tenant();
  t.equal(screen(ten, f, '13912345678'), 'blocked');
  t.equal(screen(ten, f, '+8613912345678'), 'blocked', 'listed nationally, called internationally');
  t.equal(screen(ten, f, '13800000000'), 'blocked', 'listed with +86, called nationally');
  t.equal(screen(ten, f, '17012345678'), 'blocked', 'prefix');
  t.equal(screen(ten, f, '02088888888'), 'blocked', 'Guangzhou fixed line is in 广东');
  t.equal(screen(ten, f, '075512345678'), 'blocked', 'Shenzhen too');
  t.equal(screen(ten, f, '01012345678'), 'pass', 'Beijing is not');
  t.equal(screen(ten, f, '13912345679'), 'pass', 'exact means exact');
});

t.test('allow lists: each kind with rows must be satisfied; block beats allow', async (t) => {
  const ten = tenant();
  const onlyVip = filters([['allow', 'number', '13912345678']]);
  t.equal(screen(ten, onlyVip, '13912345678'), 'pass');
  t.equal(screen(ten, onlyVip, '13912345679'), 'blocked');
  const beijing = filters([['allow', 'region', '北京']]);
  t.equal(screen(ten, beijing, '01012345678'), 'pass');
  t.equal(screen(ten, beijing, '02088888888'), 'blocked');
  t.equal(screen(ten, beijing, '+14155552671'), 'blocked', 'foreign caller outside the allowed region');
  const both = filters([['allow', 'region', '北京'], ['allow', 'prefix', '010'], ['block', 'number', '01012345678']]);
  t.equal(screen(ten, both, '01087654321'), 'pass');
  t.equal(screen(ten, both, '01012345678'), 'blocked', 'block list wins');
  const country = filters([['allow', 'region', 'US']]);
  t.equal(screen(ten, country, '+14155552671'), 'pass', 'a country token');
});

t.test('bad filter rows are rejected, not applied', async (t) => {
  const snap = buildSnapshot({
    tenants: [{ id: 1, name: 'T', status: 'active', timezone: 'Asia/Shanghai' }],
    access_numbers: [], destination_groups: [], destinations: [], routing_rules: [], prompts: [],
    call_filters: [
      { id: 1, tenant_id: 1, list: 'deny', kind: 'number', value: '139' },
      { id: 2, tenant_id: 1, list: 'block', kind: 'number', value: '139 1234' },
      { id: 3, tenant_id: 1, list: 'block', kind: 'region', value: 'Atlantis' },
      { id: 4, tenant_id: 9, list: 'block', kind: 'prefix', value: '139' },
    ],
  }, 1, new Date(0));
  // Row 4 names tenant 9, which does not exist: one finding for tenant 9 counts it.
  t.same(snap.rejected.map((r) => `${r.table} ${r.id}`).sort(), ['call_filters 1', 'call_filters 2', 'call_filters 3', 'tenants 9']);
  t.equal(snap.filtersByTenant.get(1), undefined);
});
