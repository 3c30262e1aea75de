// click_to_call_widgets rows → the snapshot's widgets: every bad row skipped with a reason a DBA
// can act on (the same path `npm run config:lint` reports), the good ones loaded.
import t from 'tap';
import { buildSnapshot } from '../../src/snapshot/build';
import { normalizeOrigin, parseOrigins } from '../../src/snapshot/widgets';
import { lintFindings } from '../../src/cli/config-lint';
import { accessNumberRow, goodRaw, promptRow, type Row } from '../snapshot/fixtures';

function widgetRow(id: number, extra: Row = {}): Row {
  return {
    id, tenant_id: 1, access_number_id: 1, public_key: `acme-key-${id}`, allowed_origins: 'https://www.acme.example, https://m.acme.example',
    enabled: 1, max_per_visitor_minute: 1, max_per_visitor_day: 5, max_per_widget_minute: null, max_per_widget_day: null,
    answer_prompt_id: null, caller_id_number: null, allow_international: 0, name: 'www', ...extra,
  };
}

function build(rows: Row[], extra: Partial<ReturnType<typeof goodRaw>> = {}) {
  return buildSnapshot({ ...goodRaw(), ...extra, click_to_call_widgets: rows }, 1, new Date('2026-12-02T00:00:00Z'));
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

t.test('defaults: max_per_visitor_minute 1, max_per_visitor_day 5 when NULL', async (t) => {
  const s = build([widgetRow(1, { max_per_visitor_minute: null, max_per_visitor_day: null, enabled: null })]);
  t.match(s.widgets.get('acme-key-1'), { maxPerVisitorMinute: 1, maxPerVisitorDay: 5, enabled: true });
});

t.test('each bad row is skipped and reported; config:lint lists it', async (t) => {
  const cases: Array<[string, Row, RegExp]> = [
    ['unknown tenant', { tenant_id: 99 }, /tenant_id 99 does not exist/],
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
    t.match(s.rejected[0], { table: 'click_to_call_widgets', id: 5, reason }, name);
    t.ok(lintFindings(s).some((f) => f.startsWith('click_to_call_widgets id=5:')), `${name}: config:lint reports it`);
  }
  const dup = build([widgetRow(1), widgetRow(6, { public_key: 'acme-key-1' })]);
  t.match(dup.rejected, [{ table: 'click_to_call_widgets', id: 6, reason: /public_key acme-key-1 is used twice/ }]);
  t.equal(dup.widgets.get('acme-key-1')?.id, 1, 'the first (lowest id) keeps the key');
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
  t.same(parseOrigins('https://a.example，https://b.example  https://c.example'), ['https://a.example', 'https://b.example', 'https://c.example'], 'full-width commas and spaces separate too');
});
