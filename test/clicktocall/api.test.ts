/**
 * The click-to-call API's validation and every refusal, through a real daemon on SQLite: 400
 * (schema, not a number, premium/service/short/foreign), 403 (unknown or disabled widget, foreign
 * origin, blocked number, tenant over its cap), 404 (another widget's request), 429 with
 * Retry-After (database limits and the in-process first line), 503 (FreeSWITCH unreachable). Each
 * refusal has a stable code, no stack trace, and is counted by reason. 50 simultaneous requests
 * for one visitor give one call, on both databases.
 */
import t, { type Test } from 'tap';
import { dbTargets } from '../helpers/db';
import { fetchMetrics, tempSqliteUrl } from '../helpers/daemon';
import { DEMO_ORIGIN, startRig, widgetLoaded, WIDGET_KEY, type ClickToCallRig } from './helpers';

async function refusals(rig: ClickToCallRig): Promise<Record<string, number>> {
  const text = await fetchMetrics(rig.d);
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^hotline_click_to_call_requests_total\{result="([a-z_]+)"\} (\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

function noStack(t: Test, body: Record<string, unknown>): void {
  t.notMatch(JSON.stringify(body), /at [A-Za-z.]+ \(|node_modules|\.ts:\d+/, 'no stack trace');
}

t.test('validation and refusals', async (t) => {
  // Fastify's deprecation warnings (FSTDEP…) name options it will drop: the API must use none.
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }): void => void warnings.push(`${w.code ?? w.name}: ${w.message}`);
  process.on('warning', onWarning);
  const rig = await startRig(tempSqliteUrl(), { widget: { max_per_visitor_day: 1 } });
  process.off('warning', onWarning);
  t.same(warnings.filter((w) => w.startsWith('FST')), [], 'fastify started with no deprecated option');
  t.teardown(() => rig.stop());
  const { knex } = rig.d;
  const expectError = async (label: string, r: { status: number; body: Record<string, unknown> }, status: number, code: string, reason?: RegExp): Promise<void> => {
    t.equal(r.status, status, `${label}: ${status}`);
    t.match(r.body, { error: { code, message: /\S/ } }, `${label}: ${code}`);
    if (reason) t.match((r.body.error as { reason?: string }).reason, reason, `${label}: reason`);
    noStack(t, r.body);
  };

  await expectError('no body', await rig.post(''), 400, 'CTC_ERR_VALIDATION');
  await expectError('not JSON', await rig.post('{"widget":'), 400, 'CTC_ERR_VALIDATION');
  await expectError('missing number', await rig.post({ widget: WIDGET_KEY }), 400, 'CTC_ERR_VALIDATION');
  await expectError('extra property', await rig.post({ widget: WIDGET_KEY, number: '13912345678', callerId: '110' }), 400, 'CTC_ERR_VALIDATION');
  await expectError('bad key', await rig.post({ widget: 'x y', number: '13912345678' }), 400, 'CTC_ERR_VALIDATION', /widget/);
  await expectError('number not a string', await rig.post({ widget: WIDGET_KEY, number: 13912345678 }), 400, 'CTC_ERR_VALIDATION');
  await expectError('huge body', await rig.post({ widget: WIDGET_KEY, number: '1'.repeat(5000) }), 400, 'CTC_ERR_VALIDATION');
  await expectError('letters', await rig.post({ widget: WIDGET_KEY, number: '139abc45678' }), 400, 'CTC_ERR_INVALID_NUMBER');
  await expectError('short number 10086', await rig.post({ widget: WIDGET_KEY, number: '10086' }), 400, 'CTC_ERR_INVALID_NUMBER');
  await expectError('400 number', await rig.post({ widget: WIDGET_KEY, number: '4001012345' }), 400, 'CTC_ERR_NUMBER_NOT_CALLABLE', /shared_cost/);
  await expectError('800 number', await rig.post({ widget: WIDGET_KEY, number: '8008101234' }), 400, 'CTC_ERR_NUMBER_NOT_CALLABLE', /toll_free/);
  await expectError('premium rate (UK 09…)', await rig.post({ widget: WIDGET_KEY, number: '+449061234567' }), 400, 'CTC_ERR_NUMBER_NOT_CALLABLE', /premium_rate/);
  await expectError('international', await rig.post({ widget: WIDGET_KEY, number: '+14155552671' }), 400, 'CTC_ERR_NUMBER_NOT_CALLABLE', /international/);
  await expectError('unknown widget', await rig.post({ widget: 'no-such-widget', number: '13912345678' }), 403, 'CTC_ERR_UNKNOWN_WIDGET');
  await expectError('foreign origin', await rig.post({ widget: WIDGET_KEY, number: '13912345678' }, { origin: 'https://evil.example' }), 403, 'CTC_ERR_ORIGIN_NOT_ALLOWED');
  await expectError('no origin with a restricted widget', await rig.post({ widget: WIDGET_KEY, number: '13912345678' }, { origin: '' }), 403, 'CTC_ERR_ORIGIN_NOT_ALLOWED');

  // The tenant's block list and region blocking, with the call flow's own screening function.
  await knex('call_filters').insert([
    { tenant_id: 1, list: 'block', kind: 'number', value: '13700000001' },
    { tenant_id: 1, list: 'block', kind: 'region', value: '广东' },
  ]);
  await widgetLoaded(rig.d, WIDGET_KEY, () => (rig.d.daemon.store.current.filtersByTenant.get(1)?.block.regions.length ?? 0) > 0);
  await expectError('block list', await rig.post({ widget: WIDGET_KEY, number: '+86 137 0000 0001' }), 403, 'CTC_ERR_NUMBER_BLOCKED');
  await expectError('region blocking (Guangzhou fixed line)', await rig.post({ widget: WIDGET_KEY, number: '020-88888888' }), 403, 'CTC_ERR_NUMBER_BLOCKED');

  // Caps and balance, read only: an exhausted day cap refuses before dialling and counts nothing.
  await knex('tenants').where({ id: 1 }).update({ max_calls_day: 2 });
  await widgetLoaded(rig.d, WIDGET_KEY, () => rig.d.daemon.store.current.tenants.get(1)?.maxCallsDay === 2);
  // Today and, should local midnight fall during the test, tomorrow: the cap is full either way.
  const localDay = (at: Date): string => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(at);
  const days = [...new Set([localDay(new Date()), localDay(new Date(Date.now() + 60_000))])];
  await knex('tenant_usage').insert(days.map((day) => ({ tenant_id: 1, period_kind: 'day', period_start: day, calls: 2, spend: 0 })));
  await expectError('tenant over its daily cap', await rig.post({ widget: WIDGET_KEY, number: '13912340000' }), 403, 'CTC_ERR_UNAVAILABLE', /calls_day/);
  const usage: Array<{ calls: number }> = await knex('tenant_usage').where({ tenant_id: 1, period_kind: 'day' }).select('calls');
  t.same(usage.map((u) => Number(u.calls)), days.map(() => 2), 'the read-only check counted nothing');
  await knex('tenants').where({ id: 1 }).update({ max_calls_day: null });
  await widgetLoaded(rig.d, WIDGET_KEY, () => rig.d.daemon.store.current.tenants.get(1)?.maxCallsDay === null);

  // Per-visitor limits (1 a minute, here 1 a day), in the database.
  const first = await rig.post({ widget: WIDGET_KEY, number: '13912345678' });
  t.equal(first.status, 202, 'a good request is accepted');
  const again = await rig.post({ widget: WIDGET_KEY, number: '13912345678' });
  await expectError('same visitor again', again, 429, 'CTC_ERR_RATE_LIMITED', /^visitor_(minute|day)$/);
  t.match(again.headers.get('retry-after'), /^\d+$/, 'Retry-After in seconds');
  t.ok(Number(again.headers.get('retry-after')) >= 1 && Number(again.headers.get('retry-after')) <= 86_400);

  // Status: only through the same widget.
  const id = String(first.body.id);
  t.equal((await rig.get(`/v1/click-to-call/${id}?widget=${WIDGET_KEY}`)).status, 200);
  await knex('click_to_call_widgets').insert({ tenant_id: 1, access_number_id: 1, public_key: 'other-widget-key', enabled: 1 });
  await widgetLoaded(rig.d, 'other-widget-key');
  await expectError('another widget\'s request', await rig.get(`/v1/click-to-call/${id}?widget=other-widget-key`), 404, 'CTC_ERR_NOT_FOUND');
  await expectError('unknown request', await rig.get(`/v1/click-to-call/00000000-0000-4000-8000-000000000000?widget=${WIDGET_KEY}`), 404, 'CTC_ERR_NOT_FOUND');
  await expectError('bad id', await rig.get(`/v1/click-to-call/not-a-uuid?widget=${WIDGET_KEY}`), 400, 'CTC_ERR_VALIDATION');
  await expectError('no widget', await rig.get(`/v1/click-to-call/${id}`), 400, 'CTC_ERR_VALIDATION');
  await expectError('no such route', await rig.get('/v1/nothing'), 404, 'CTC_ERR_NOT_FOUND');

  // Disabled widget.
  await knex('click_to_call_widgets').where({ public_key: WIDGET_KEY }).update({ enabled: 0 });
  await widgetLoaded(rig.d, WIDGET_KEY, (w) => !w.enabled);
  await expectError('disabled widget', await rig.post({ widget: WIDGET_KEY, number: '13912349999' }), 403, 'CTC_ERR_WIDGET_DISABLED');
  await expectError('disabled widget script', await rig.get(`/v1/widget.js?key=${WIDGET_KEY}`), 403, 'CTC_ERR_WIDGET_DISABLED');

  const counted = await refusals(rig);
  t.match(counted, {
    accepted: 1, invalid_request: 9, invalid_number: 2, number_not_callable: 4, unknown_widget: 1, origin_not_allowed: 2,
    number_blocked: 2, tenant_unavailable: 1, rate_limited: 1, not_found: 3, widget_disabled: 2,
  }, 'every refusal counted by reason');
});

t.test('the widget script and CORS', async (t) => {
  const rig = await startRig(tempSqliteUrl());
  t.teardown(() => rig.stop());
  const js = await fetch(`${rig.api}/v1/widget.js?key=${WIDGET_KEY}`);
  t.equal(js.status, 200);
  t.match(js.headers.get('content-type'), /application\/javascript/);
  const text = await js.text();
  t.match(text, /免费接通/, 'Chinese text');
  t.match(text, /aria-live/, 'progress announced to screen readers');
  t.notMatch(text, /\brequire\(|\bimport\b/, 'dependency-free');
  const preflight = await fetch(`${rig.api}/v1/click-to-call`, { method: 'OPTIONS', headers: { origin: DEMO_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
  t.equal(preflight.headers.get('access-control-allow-origin'), DEMO_ORIGIN, 'an allowed origin may call');
  const foreign = await fetch(`${rig.api}/v1/click-to-call`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  t.equal(foreign.headers.get('access-control-allow-origin'), null, 'a foreign origin gets no CORS grant');
});

t.test('503 when FreeSWITCH cannot be reached; the in-process first line', async (t) => {
  const rig = await startRig(tempSqliteUrl(), { fsDown: true, settings: { api: { enabled: true, port: 0, rateLimitPerMinute: 3 } } });
  t.teardown(() => rig.stop());
  const r = await rig.post({ widget: WIDGET_KEY, number: '13912345678' });
  t.equal(r.status, 503);
  t.match(r.body, { error: { code: 'CTC_ERR_FREESWITCH_UNAVAILABLE' } });
  t.equal(Number((await rig.d.knex('click_to_call_limits').sum({ n: 'count' }))[0].n ?? 0), 0, 'the visitor\'s quota is not spent on a call that was never placed');
  t.equal(Number((await rig.d.knex('click_to_call_requests').count({ n: '*' }))[0].n), 0, 'no request, no CDR');
  await rig.post({ widget: WIDGET_KEY, number: '13912345678' });
  await rig.post({ widget: WIDGET_KEY, number: '13912345678' });
  const burst = await rig.post({ widget: WIDGET_KEY, number: '13912345678' });
  t.equal(burst.status, 429, 'API_RATE_LIMIT_PER_MINUTE per client address');
  t.match(burst.body, { error: { code: 'CTC_ERR_RATE_LIMITED', reason: 'client_burst' } });
  t.match(burst.headers.get('retry-after'), /^\d+$/);
  t.match(await refusals(rig), { freeswitch_unavailable: 3, rate_limited: 1 });
});

for (const target of dbTargets()) {
  t.test(`${target.name}: 50 simultaneous requests for one visitor give exactly one call`, async (t) => {
    const db = await target.create();
    t.teardown(() => db.destroy());
    const rig = await startRig(db.url, { fs: { visitors: { '13912345678': { result: 'busy', ringMs: 50 } } }, widget: { max_per_visitor_day: 1 } });
    t.teardown(() => rig.stop());
    const results = await Promise.all(Array.from({ length: 50 }, () => rig.post({ widget: WIDGET_KEY, number: '13912345678' })));
    t.equal(results.filter((r) => r.status === 202).length, 1, 'one accepted');
    t.equal(results.filter((r) => r.status === 429).length, 49, 'the rest rate limited');
    await rig.follow(String(results.find((r) => r.status === 202)!.body.id));
    t.equal(rig.fs.originates.length, 1, 'FreeSWITCH was asked for one call');
    t.equal(Number((await rig.d.knex('click_to_call_requests').count({ n: '*' }))[0].n), 1);
  });
}
