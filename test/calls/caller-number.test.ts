/**
 * The one reading of a caller ID (src/domain/caller-number.ts), alone and as the decisions use
 * it: screening and rating see the digits; only a caller with no number is withheld.
 */
import t from 'tap';
import { callerNumber, MAX_DIGITS, MAX_RAW_CHARS } from '../../src/domain/caller-number';
import { geocode, loadGeoData } from '../../src/domain/geo';
import { screenCaller } from '../../src/domain/screening';
import { callPricing } from '../../src/billing/rate-cdr';
import { buildSnapshot, NO_FILTERS } from '../../src/snapshot/build';
import type { ConfigSnapshot, Tenant, TenantFilters } from '../../src/snapshot/types';

t.before(async () => {
  await loadGeoData();
});

t.test('numbers that are numbers already', async (t) => {
  for (const raw of ['13912345678', '+8613912345678', '008613912345678', '02088888888', '95555', '1', '+1', '10086']) {
    t.same(callerNumber(raw), { number: raw, withheld: false, form: 'plain' }, raw);
  }
});

t.test('other characters are dropped, a leading + is kept', async (t) => {
  const cases: Array<[string, string]> = [
    ['13000000123#', '13000000123'],
    ['*13000000123', '13000000123'],
    ['+86 139-1234-5678', '+8613912345678'],
    ['(020) 8888 8888', '02088888888'],
    ['  +8613912345678', '+8613912345678'],
    ['139 1234 5678\r\n', '13912345678'],
    ['１３９１２３４５６７８', '13912345678'],
    ['＋８６１３９１２３４５６７８', '+8613912345678'],
    ['sip:1001@10.0.0.1', '100110001'],
    ['13912345678;ext=2', '139123456782'],
    ['${system(rm -rf /)}13912345678', '13912345678'],
    ['86+13912345678', '8613912345678'],
    ['%2B8613912345678', '28613912345678'],
    ['tel:+8613912345678', '8613912345678'],
  ];
  for (const [raw, number] of cases) t.same(callerNumber(raw), { number, withheld: false, form: 'reduced' }, JSON.stringify(raw));
});

t.test('withheld: no number at all', async (t) => {
  for (const raw of ['', 'anonymous', 'Anonymous', 'unknown', 'UNKNOWN', 'Restricted', 'private', 'withheld', '0000000000', '0', '00', '+0000', '#', '   ', '+', 'anonymous@anonymous.invalid', '０００']) {
    t.same(callerNumber(raw), { number: '', withheld: true, form: 'withheld' }, JSON.stringify(raw));
  }
  t.same(callerNumber(undefined), { number: '', withheld: true, form: 'withheld' });
  t.same(callerNumber(null), { number: '', withheld: true, form: 'withheld' });
});

t.test('bounded: long text is cut before it is read, digits are capped', async (t) => {
  t.equal(callerNumber('1'.repeat(100)).number, '1'.repeat(MAX_DIGITS));
  t.equal(callerNumber('1'.repeat(100)).form, 'reduced');
  t.same(callerNumber(`${'x'.repeat(MAX_RAW_CHARS)}13912345678`), { number: '', withheld: true, form: 'withheld' }, 'digits after the first 256 characters are not looked at');
  t.equal(callerNumber('9'.repeat(10_000_000)).number, '9'.repeat(MAX_DIGITS), 'a 10 MB caller ID: the first digits');
});

t.test('idempotent: the normalised number reads as itself', async (t) => {
  for (const raw of ['13000000123#', '+86 139-1234-5678', 'anonymous', '0000', '１３９１２３４５６７８', 'sip:1001@10.0.0.1']) {
    const once = callerNumber(raw);
    const twice = callerNumber(once.number);
    t.equal(twice.number, once.number, JSON.stringify(raw));
    t.equal(twice.withheld, once.withheld);
  }
});

function tenant(extra: Record<string, unknown> = {}): { tenant: Tenant; filters: TenantFilters; snapshot: ConfigSnapshot } {
  const snapshot = buildSnapshot({
    tenants: [{ id: 1, name: 'T', status: 'active', timezone: 'Asia/Shanghai', ...extra }],
    access_numbers: [], destination_groups: [], destinations: [], routing_rules: [], prompts: [],
    call_filters: [
      { id: 1, tenant_id: 1, list: 'block', kind: 'number', value: '13000000123' },
      { id: 2, tenant_id: 1, list: 'block', kind: 'prefix', value: '95' },
    ],
    rates: [{ id: 1, tenant_id: null, call_type: 'mobile', per_minute: '0.1000', increment_s: 60, connect_fee: '0' }, { id: 2, tenant_id: null, call_type: 'long_distance', per_minute: '0.2000', increment_s: 60, connect_fee: '0' }],
  }, 1, new Date(0));
  const ten = snapshot.tenants.get(1);
  if (!ten) throw new Error('tenant not built');
  return { tenant: ten, filters: snapshot.filtersByTenant.get(1) ?? NO_FILTERS, snapshot };
}

function screen(raw: string, extra: Record<string, unknown> = {}): string {
  const { tenant: ten, filters } = tenant(extra);
  const caller = callerNumber(raw);
  return screenCaller(ten, filters, caller, geocode(caller.number)).verdict;
}

t.test('screening sees the digits: block lists apply to a caller ID with other characters', async (t) => {
  t.equal(screen('13000000123#'), 'blocked', '13000000123# on a tenant blocking 13000000123');
  t.equal(screen('+86 130-0000-0123'), 'blocked');
  t.equal(screen('1３000000123'), 'blocked', 'full-width digits');
  t.equal(screen('95555'), 'blocked', 'a service number is not withheld: the prefix list applies');
  t.equal(screen('13000000124#'), 'pass');
  t.equal(screen('13000000124#', { anonymous_callers: 'block' }), 'pass', 'not withheld, so the anonymous policy does not apply');
  t.equal(screen('12345', { anonymous_callers: 'block' }), 'pass', 'an implausible number is still a number');
  t.equal(screen('anonymous', { anonymous_callers: 'block' }), 'blocked');
  t.equal(screen('0000000000', { anonymous_callers: 'block' }), 'blocked');
  t.equal(screen('anonymous'), 'pass', 'withheld and allowed');
});

t.test('rating sees the digits', async (t) => {
  const { snapshot } = tenant();
  const rate = (raw: string): string => callPricing(snapshot, 1, geocode(callerNumber(raw).number), '20').callType;
  t.equal(rate('13912345678#'), 'mobile');
  t.equal(rate('+86 139 1234 5678'), 'mobile');
  t.equal(rate('anonymous'), 'long_distance');
});
