// Hand-edited rows a DBA could plausibly type that validation let through, and that then misrouted
// calls or took a number down without a finding. Each case: the row, what the snapshot keeps, and
// what a call gets.
import t from 'tap';
import { callerNumber } from '../../src/domain/caller-number';
import type { CallerGeo } from '../../src/domain/geo';
import { screenCaller } from '../../src/domain/screening';
import { buildSnapshot, NO_FILTERS } from '../../src/snapshot/build';
import { goodRaw } from './fixtures';

const WHEN = new Date('2026-11-21T08:00:00.000Z');

/** A Beijing mobile caller, as geocode() describes one. */
const BEIJING: CallerGeo = { e164: '+8613800138000', country: 'CN', province: '北京市', city: '北京市', areaCode: '10', isMobile: true, description: '北京市' };

t.test('call_filters: a region value listing several tokens ("北京,上海") screens by each of them', async (t) => {
  const raw = goodRaw();
  raw.call_filters = [
    // Tenant 1 only lets callers from Beijing or Shanghai in (one row, the way regions are written in routing_rules).
    { id: 1, tenant_id: 1, list: 'allow', kind: 'region', value: '北京,上海' },
    // Tenant 2 blocks Beijing, with a trailing full-width comma.
    { id: 2, tenant_id: 2, list: 'block', kind: 'region', value: '北京，' },
  ];
  const s = buildSnapshot(raw, 1, WHEN);
  t.same(s.rejected, [], 'both rows pass validation');
  const caller = callerNumber('13800138000');
  const allow = screenCaller(s.tenants.get(1)!, s.filtersByTenant.get(1) ?? NO_FILTERS, caller, BEIJING);
  t.equal(allow.verdict, 'pass', `a Beijing caller passes the allow list "北京,上海" (${allow.reason})`);
  const block = screenCaller(s.tenants.get(2)!, s.filtersByTenant.get(2) ?? NO_FILTERS, caller, BEIJING);
  t.equal(block.verdict, 'blocked', `a Beijing caller is blocked by "北京，" (${block.reason})`);

  // A value that lists no token at all is reported, as routing_rules.regions is.
  const empty = buildSnapshot({ ...goodRaw(), call_filters: [{ id: 3, tenant_id: 1, list: 'allow', kind: 'region', value: ' , ' }] }, 1, WHEN);
  t.match(empty.rejected, [{ table: 'call_filters', id: 3, status: 'skipped', column: 'value', reason: /lists no region token/ }]);
  t.equal(empty.filtersByTenant.get(1)?.allow.regions.length ?? 0, 0, 'and it lets nobody in or out');
});
