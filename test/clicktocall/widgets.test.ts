// click_to_call_widgets rows → the snapshot's widgets, through the same ledger as every other
// configuration table: a bad new row skipped with a reason a DBA can act on (one finding, the line
// `npm run config:lint` prints), a widget edited into a bad state kept on its last good version, a
// widget of a tenant that is not in force counted in that tenant's finding; the good ones loaded.
import t from 'tap';
import { buildSnapshot } from '../../src/snapshot/build';
import { formatFinding } from '../../src/snapshot/findings';
import { normalizeOrigin, parseOrigins, widgetById } from '../../src/snapshot/widgets';
import { accessNumberRow, goodRaw, promptRow, type Row } from '../snapshot/fixtures';

function widgetRow(id: number, extra: Row = {}): Row {
  return {
    id, tenant_id: 1, access_number_id: 1, public_key: `acme-key-${id}`, allowed_origins: 'https://www.acme.example, https://m.acme.example',
    enabled: 1, max_per_visitor_minute: 1, max_per_visitor_day: 5, max_per_widget_minute: null, max_per_widget_day: null,
    answer_prompt_id: null, caller_id_number: null, allow_international: 0, name: 'www', ...extra,
  };
}

function build(rows: Row[], extra: Partial<ReturnType<typeof goodRaw>> = {}, before?: ReturnType<typeof buildSnapshot>) {
  return buildSnapshot({ ...goodRaw(), ...extra, click_to_call_widgets: rows }, before ? before.version + 1 : 1, new Date('2026-12-02T00:00:00Z'), before?.lastGood);
}

t.test('a good widget loads, keyed by its public key, with its access number', async (t) => {
  const s = build([widgetRow(1), widgetRow(2, { enabled: 0, allowed_origins: null, max_per_widget_day: 100, caller_id_number: '02088880000', answer_prompt_id: 500 })]);
  t.same(s.rejected, []);
  const w = s.widgets.get('acme-key-1')!;
  t.match(w, { id: 1, tenantId: 1, accessNumber: '4001000001', enabled: true, maxPerVisitorMinute: 1, maxPerVisitorDay: 5, maxPerWidgetDay: null, allowInternational: false });
  t.same(w.allowedOrigins, ['https://www.acme.example', 'https://m.acme.example']);
  const off = s.widgets.get('acme-key-2')!;
  t.equal(off.enabled, false, 'disabled widgets are kept (the API says "disabled", not "unknown")');
  t.same(off.allowedOrigins, [], 'NULL origins = any');
  t.equal(off.callerIdNumber, '02088880000');
  t.equal(off.maxPerWidgetDay, 100);
});

t.test('a visitor leg finds its widget by id: the same widget the key finds, disabled ones too, none for an id not in force', async (t) => {
  const s = build([widgetRow(1), widgetRow(2, { enabled: 0 }), widgetRow(3, { access_number_id: 999 })]);
  t.equal(widgetById(s, 1), s.widgets.get('acme-key-1'), 'widget 1');
  t.equal(widgetById(s, 2), s.widgets.get('acme-key-2'), 'widget 2, disabled');
  t.equal(s.rejected.length, 1, 'widget 3 is refused (not a number of its tenant)');
  t.equal(widgetById(s, 3), undefined, 'so it is not found by id either');
  t.equal(widgetById(s, 4), undefined, 'no such widget');
  t.equal(s.widgetsById.size, s.widgets.size, 'one entry by id for each by key');
});

t.test('defaults: max_per_visitor_minute 1, max_per_visitor_day 5 when NULL', async (t) => {
  const s = build([widgetRow(1, { max_per_visitor_minute: null, max_per_visitor_day: null, enabled: null })]);
  t.match(s.widgets.get('acme-key-1'), { maxPerVisitorMinute: 1, maxPerVisitorDay: 5, enabled: true });
});

t.test('each bad new row is skipped and reported; config:lint lists it', async (t) => {
  const cases: Array<[string, Row, RegExp]> = [
    ["another tenant's number", { access_number_id: 2 }, /access_number_id 2 is not a number of tenant 1/],
    ['missing number', { access_number_id: 77 }, /access_number_id 77/],
    ['short key', { public_key: 'short' }, /public_key "short" is not 8 to 64/],
    ['key with spaces', { public_key: 'has spaces here' }, /public_key/],
    ['origin with a path', { allowed_origins: 'https://a.example/page' }, /allowed_origins: "https:\/\/a.example\/page" is not an origin/],
    ['not a URL', { allowed_origins: 'www.acme.example' }, /allowed_origins/],
    ['ftp origin', { allowed_origins: 'ftp://a.example' }, /allowed_origins/],
    ['negative limit', { max_per_visitor_day: -1 }, /max_per_visitor_day must be at least 0/],
    ['junk flag', { enabled: 'yes' }, /enabled must be 0 or 1/],
    ["another tenant's prompt", { answer_prompt_id: 502 }, /answer_prompt_id 502 is not a prompt of tenant 1/],
    ['caller id with letters', { caller_id_number: '400-ABC' }, /caller_id_number/],
    ['caller id injection', { caller_id_number: '4001000001,x=${system(id)}' }, /caller_id_number/],
  ];
  for (const [name, extra, reason] of cases) {
    const s = build([widgetRow(1), widgetRow(5, extra)]);
    t.ok(s.widgets.has('acme-key-1'), `${name}: the good widget still loads`);
    t.equal(s.rejected.length, 1, `${name}: one row rejected`);
    t.match(s.rejected[0], { table: 'click_to_call_widgets', id: 5, status: 'skipped', tenantId: 1, reason }, name);
    t.match(formatFinding(s.rejected[0]), /^click_to_call_widgets id=5 \(tenant 1\) \w+=.*: .* → skipped \(no last good version of it\)$/, `${name}: config:lint's line names table, id, tenant, column and value`);
  }
  const dup = build([widgetRow(1), widgetRow(6, { public_key: 'acme-key-1' })]);
  t.match(dup.rejected, [{ table: 'click_to_call_widgets', id: 6, column: 'public_key', reason: /public_key acme-key-1 is used twice \(widget 1 has it\)/ }]);
  t.equal(dup.widgets.get('acme-key-1')?.id, 1, 'the first (lowest id) keeps the key');
});

t.test('a widget edited into a bad state keeps its last good version; fixed, the edit is in force', async (t) => {
  const v1 = build([widgetRow(1, { max_per_widget_day: 100 })]);
  const v2 = build([widgetRow(1, { max_per_widget_day: -5 })], {}, v1);
  t.match(v2.rejected, [{ table: 'click_to_call_widgets', id: 1, status: 'last_good', column: 'max_per_widget_day', value: '-5' }]);
  t.equal(v2.widgets.get('acme-key-1')?.maxPerWidgetDay, 100, 'the visitors of this web site still get their calls, on the last good limits');
  const v3 = build([widgetRow(1, { max_per_widget_day: 200 })], {}, v2);
  t.same(v3.rejected, []);
  t.equal(v3.widgets.get('acme-key-1')?.maxPerWidgetDay, 200);
  const keyTaken = build([widgetRow(1), widgetRow(2, { public_key: 'acme-key-2' })], {}, v1);
  const edited = build([widgetRow(1), widgetRow(2, { public_key: 'acme-key-1' })], {}, keyTaken);
  t.equal(edited.widgets.get('acme-key-1')?.id, 1, 'a key that was in force stays with its widget');
  t.equal(edited.widgets.get('acme-key-2')?.id, 2, 'and the widget edited to take it stays on its last good key');
});

t.test("a widget of a tenant or number that is not in force is counted in that row's finding", async (t) => {
  const missing = build([widgetRow(1), widgetRow(5, { tenant_id: 99 })]);
  t.match(missing.rejected, [{ table: 'tenants', id: 99, status: 'missing', dependents: { click_to_call_widgets: 1 } }], 'one finding for the tenant that does not exist');
  const raw = goodRaw();
  // A status typo takes the tenant out of force (an unknown zone no longer does: default zone).
  raw.tenants = raw.tenants.map((r) => (r.id === 1 ? { ...r, status: 'actve' } : r));
  const skipped = build([widgetRow(1)], raw);
  t.notOk(skipped.widgets.has('acme-key-1'));
  t.equal(skipped.rejected.filter((f) => f.table === 'click_to_call_widgets').length, 0, 'no finding of its own');
  t.match(skipped.rejected.find((f) => f.table === 'tenants' && f.id === 1), { status: 'skipped', dependents: { click_to_call_widgets: 1 } });
});

t.test('a system prompt is a fine answer prompt; a number of a rejected tenant is not', async (t) => {
  const s = build([widgetRow(1, { answer_prompt_id: 501 })]);
  t.same(s.rejected, []);
  const raw = goodRaw();
  raw.access_numbers.push(accessNumberRow(3, 1, '4001000003'));
  raw.prompts.push(promptRow(503, 1));
  const s2 = build([widgetRow(1, { access_number_id: 3, answer_prompt_id: 503 })], raw);
  t.equal(s2.widgets.get('acme-key-1')?.accessNumber, '4001000003');
});

t.test('origins: what browsers send in the Origin header', async (t) => {
  t.equal(normalizeOrigin('https://WWW.Example.com'), 'https://www.example.com');
  t.equal(normalizeOrigin('https://www.example.com/'), 'https://www.example.com');
  t.equal(normalizeOrigin('http://localhost:8080'), 'http://localhost:8080');
  t.equal(normalizeOrigin('https://www.example.com:443'), 'https://www.example.com', 'default port dropped, as browsers do');
  for (const bad of ['null', '', 'https://a.example/x', 'https://a.example?q', 'javascript:alert(1)', 'https://u:p@a.example', 'file:///etc/passwd']) {
    t.equal(normalizeOrigin(bad), null, `${JSON.stringify(bad)} is not an origin`);
  }
  t.same(parseOrigins('https://a.example，https://b.example  https://c.example'), { origins: ['https://a.example', 'https://b.example', 'https://c.example'], junk: [] }, 'full-width commas and spaces separate too');
  t.same(parseOrigins('https://a.example, a.example/x, https://A.example'), { origins: ['https://a.example'], junk: ['a.example/x'] }, 'junk kept apart, duplicates once');
  t.throws(() => parseOrigins('www.a.example, ftp://b.example'), /no entry is: the widget would allow every web site/, 'all junk: refused, never read as "any origin"');
  t.same(parseOrigins(' ,, '), { origins: [], junk: [] }, 'separators only: an empty list (any origin), as NULL');
});

t.test('hand-edited allowed_origins: junk entries dropped with a finding; all junk refuses the row', async (t) => {
  const mixed = build([widgetRow(1, { allowed_origins: 'https://www.acme.example, www.acme.example/contact, ftp://files.acme.example' })]);
  t.same(mixed.widgets.get('acme-key-1')?.allowedOrigins, ['https://www.acme.example'], 'in force with the good entry only');
  t.equal(mixed.rejected.length, 1);
  t.match(mixed.rejected[0], {
    table: 'click_to_call_widgets', id: 1, tenantId: 1, status: 'link_ignored', column: 'allowed_origins',
    reason: /"www\.acme\.example\/contact", "ftp:\/\/files\.acme\.example" are not origins .* dropped; the widget allows https:\/\/www\.acme\.example$/,
  });
  t.match(formatFinding(mixed.rejected[0]), /^click_to_call_widgets id=1 \(tenant 1\) allowed_origins=.*: allowed_origins: .* → in force without this link$/);

  const junk = build([widgetRow(1), widgetRow(2, { allowed_origins: 'www.acme.example, acme' })]);
  t.notOk(junk.widgets.has('acme-key-2'), 'a new widget whose origins are all junk is off (unknown to the API), not open to every site');
  t.match(junk.rejected, [{ table: 'click_to_call_widgets', id: 2, status: 'skipped', column: 'allowed_origins', reason: /no entry is/ }]);

  const v1 = build([widgetRow(1)]);
  const v2 = build([widgetRow(1, { allowed_origins: 'acme' })], {}, v1);
  t.match(v2.rejected, [{ id: 1, status: 'last_good', column: 'allowed_origins' }]);
  t.same(v2.widgets.get('acme-key-1')?.allowedOrigins, ['https://www.acme.example', 'https://m.acme.example'], 'edited into all junk: the last good origins, never "any"');
});

t.test("a caller_id_number that is another tenant's access number is refused, in any spelling", async (t) => {
  for (const spelling of ['4002000002', '+864002000002', '00864002000002']) {
    const s = build([widgetRow(1), widgetRow(5, { caller_id_number: spelling })]);
    t.notOk(s.widgets.has('acme-key-5'), `${spelling}: refused`);
    t.match(s.rejected, [{ table: 'click_to_call_widgets', id: 5, status: 'skipped', column: 'caller_id_number', reason: /is access number 4002000002 of tenant 2, not of tenant 1/ }]);
  }
  const own = build([widgetRow(1, { caller_id_number: '+864001000001' })]);
  t.same(own.rejected, [], "the tenant's own access number is fine");
  t.equal(own.widgets.get('acme-key-1')?.callerIdNumber, '+864001000001');
  const v1 = build([widgetRow(1, { caller_id_number: '02088880000' })]);
  const v2 = build([widgetRow(1, { caller_id_number: '4002000002' })], {}, v1);
  t.match(v2.rejected, [{ id: 1, status: 'last_good', column: 'caller_id_number' }]);
  t.equal(v2.widgets.get('acme-key-1')?.callerIdNumber, '02088880000', 'edited: the last good caller id stays');
});
