/**
 * The per-client-address limit (issue 11 review): IPv4 clients are counted per address, IPv6
 * clients per /64 — one visitor controls a whole /64 and could otherwise take a fresh address for
 * every request.
 */
import t from 'tap';
import { clientSubject } from '../../src/clicktocall/limits';
import { dbTargets } from '../helpers/db';
import { startRig } from './helpers';

t.test('clientSubject: IPv4 as is, IPv6 by its /64', async (t) => {
  t.equal(clientSubject('203.0.113.7'), '203.0.113.7');
  t.equal(clientSubject('::ffff:203.0.113.7'), '203.0.113.7', 'IPv4-mapped: the IPv4 address');
  t.equal(clientSubject('2001:db8:1:2::5'), '2001:db8:1:2::/64');
  t.equal(clientSubject('2001:0DB8:0001:0002:ffff:ffff:ffff:9'), '2001:db8:1:2::/64', 'any address of the /64, any spelling');
  t.equal(clientSubject('[2001:db8:1:2::5]'), '2001:db8:1:2::/64');
  t.equal(clientSubject('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(clientSubject('::1'), '0:0:0:0::/64');
  t.equal(clientSubject('2001:db8::'), '2001:db8:0:0::/64');
  t.equal(clientSubject('64:ff9b::192.0.2.33'), '64:ff9b:0:0::/64');
  t.not(clientSubject('2001:db8:1:3::5'), clientSubject('2001:db8:1:2::5'), 'the next /64 is another client');
  t.equal(clientSubject('not-an-address'), 'not-an-address');
});

t.test('through the API: one request per /64, per IPv4 address', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const rig = await startRig(db.url, {
    settings: {
      api: { enabled: true, port: 0, rateLimitPerMinute: 1000, trustProxy: '127.0.0.1' },
      // The day's limit too: a minute window alone resets when the clock crosses a minute between two
      // clicks, and the second was then let through by chance (what is tested is the subject, not the window).
      clickToCall: { ringTimeoutS: 30, connectTimeoutS: 2, maxPerClientMinute: 1, maxPerClientDay: 1 },
    },
    widget: { max_per_visitor_minute: 10, max_per_visitor_day: 10 },
  });
  t.teardown(() => rig.stop());
  const click = async (number: string, from: string): Promise<number> => (await rig.post({ widget: 'demo-click-to-call', number }, { 'x-forwarded-for': from })).status;
  t.equal(await click('13900000011', '2001:db8:1:2::5'), 202);
  t.equal(await click('13900000012', '2001:db8:1:2:abcd::9'), 429, 'another address of the same /64: the same client');
  t.equal(await click('13900000013', '2001:db8:1:3::5'), 202, 'the next /64: another client');
  t.equal(await click('13900000014', '198.51.100.1'), 202);
  t.equal(await click('13900000015', '198.51.100.2'), 202, 'IPv4: per address');
  t.equal(await click('13900000016', '198.51.100.1'), 429);
});

t.test('the in-process first line counts the same subject; 0 turns it off', async (t) => {
  const db = await dbTargets()[0].create();
  t.teardown(() => db.destroy());
  const rig = await startRig(db.url, { fsDown: true, settings: { api: { enabled: true, port: 0, rateLimitPerMinute: 1, trustProxy: '127.0.0.1' } } });
  t.teardown(() => rig.stop());
  const burst = async (from: string): Promise<{ status: number; reason: unknown; retry: string | null }> => {
    const r = await rig.post({ widget: 'demo-click-to-call', number: '13900000011' }, { 'x-forwarded-for': from });
    return { status: r.status, reason: (r.body.error as { reason?: unknown } | undefined)?.reason, retry: r.headers.get('retry-after') };
  };
  t.equal((await burst('2001:db8:1:2::5')).status, 503, 'the first request passes the first line (FreeSWITCH is down)');
  const second = await burst('2001:db8:1:2:ffff::1');
  t.match(second, { status: 429, reason: 'client_burst' }, 'another address of the same /64 is the same client');
  t.ok(Number(second.retry) >= 1 && Number(second.retry) <= 60, 'Retry-After: when this client\'s minute frees a slot');
  t.equal((await burst('2001:db8:1:3::5')).status, 503, 'the next /64 is another client');
  t.equal((await burst('::ffff:198.51.100.1')).status, 503);
  t.equal((await burst('198.51.100.1')).status, 429, 'an IPv4-mapped address and the IPv4 address are one client');

  const db2 = await dbTargets()[0].create();
  t.teardown(() => db2.destroy());
  const off = await startRig(db2.url, { fsDown: true, settings: { api: { enabled: true, port: 0, rateLimitPerMinute: 0 } } });
  t.teardown(() => off.stop());
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await off.post({ widget: 'demo-click-to-call', number: '13900000011' })).status);
  t.same(statuses, [503, 503, 503, 503, 503], 'API_RATE_LIMIT_PER_MINUTE=0: no in-process limit (not "refuse everything")');
});
