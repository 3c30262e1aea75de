/**
 * hotline_click_to_call_not_found_total{what}: requests naming a widget, request, tenant or path
 * that does not exist, counted by a fixed set of label values (never a key, an id or a number),
 * every series at 0 from the start.
 */
import t from 'tap';
import { notFoundWhat, NOT_FOUND_WHAT } from '../../src/clicktocall/errors';
import { tempSqliteUrl } from '../helpers/daemon';
import { startRig, WIDGET_KEY } from './helpers';

async function notFound(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^hotline_click_to_call_not_found_total\{([^}]*)\} (\d+)/gm)) {
    const what = /^what="([^"]*)"$/.exec(m[1]);
    out[what ? what[1] : `unexpected labels ${m[1]}`] = Number(m[2]);
  }
  return out;
}

t.test('notFoundWhat: which refusals name something that does not exist', async (t) => {
  t.equal(notFoundWhat({ code: 'CTC_ERR_UNKNOWN_WIDGET', reason: undefined }), 'widget');
  t.equal(notFoundWhat({ code: 'CTC_ERR_NOT_FOUND', reason: 'route' }), 'route');
  t.equal(notFoundWhat({ code: 'CTC_ERR_NOT_FOUND', reason: 'widget' }), 'widget');
  t.equal(notFoundWhat({ code: 'CTC_ERR_NOT_FOUND', reason: 'request' }), 'request');
  t.equal(notFoundWhat({ code: 'CTC_ERR_UNAVAILABLE', reason: 'unknown_number' }), 'tenant');
  t.equal(notFoundWhat({ code: 'CTC_ERR_UNAVAILABLE', reason: 'tenant_suspended' }), null, 'a tenant that exists but is suspended');
  t.equal(notFoundWhat({ code: 'CTC_ERR_RATE_LIMITED', reason: 'visitor_day' }), null);
});

t.test('through the API: counted by what, the label values a fixed set', async (t) => {
  const rig = await startRig(tempSqliteUrl());
  t.teardown(() => rig.stop());
  const port = rig.d.daemon.metricsPort;
  t.same(await notFound(port), { widget: 0, request: 0, tenant: 0, route: 0 }, 'every series at 0 from the start');

  t.equal((await rig.post({ widget: 'no-such-widget-1', number: '13912345678' })).status, 403);
  t.equal((await rig.get('/v1/widget.js?key=no-such-widget-2')).status, 403);
  t.equal((await rig.get('/v1/click-to-call/00000000-0000-4000-8000-000000000000?widget=no-such-widget-3')).status, 404);
  t.equal((await rig.get(`/v1/click-to-call/00000000-0000-4000-8000-000000000000?widget=${WIDGET_KEY}`)).status, 404);
  t.equal((await rig.get('/wp-login.php')).status, 404);
  t.equal((await rig.get('/v1/nothing/13912345678')).status, 404);
  t.equal((await rig.get('/v1/widget.js?key=bad')).status, 400, 'a malformed key is a bad request, not counted as not found');

  const counts = await notFound(port);
  t.same(counts, { widget: 3, request: 1, tenant: 0, route: 2 });
  t.same(Object.keys(counts).sort(), [...NOT_FOUND_WHAT].sort(), 'only the fixed label values');
});
