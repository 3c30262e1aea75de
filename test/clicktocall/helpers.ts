// A daemon with the click-to-call API on, FreeSWITCH's inbound side (bgapi originate) and its
// outbound side (the answered visitor leg) played by the stand-ins, and the demo tenant's widget.
import type { Knex } from 'knex';
import type { Test } from 'tap';
import { FakeInboundFreeSwitch, type FakeInboundOptions } from '../peer/fake-inbound-freeswitch';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon';

export const WIDGET_KEY = 'demo-click-to-call';
export const DEMO_ORIGIN = 'https://www.demo.example';

export interface ClickToCallRig {
  d: TestDaemon;
  fs: FakeInboundFreeSwitch;
  api: string;
  post(body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  get(path: string): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Polls the request until `until(status)` (default: ended). */
  follow(id: string, until?: (status: string) => boolean, key?: string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export async function widgetRow(knex: Knex, extra: Record<string, unknown> = {}): Promise<number> {
  const [id] = await knex('click_to_call_widgets').insert({
    tenant_id: 1, access_number_id: 1, public_key: WIDGET_KEY, allowed_origins: `${DEMO_ORIGIN},http://127.0.0.1`, enabled: 1,
    max_per_visitor_minute: 1, max_per_visitor_day: 5, ...extra,
  });
  return id;
}

/** Waits until the daemon's snapshot has the widget (the store polls every 50 ms in tests). */
export async function widgetLoaded(d: TestDaemon, key: string, check: (w: { enabled: boolean }) => boolean = () => true): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const w = d.daemon.store.current.widgets.get(key);
    if (w && check(w)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`widget ${key} not loaded`);
}

/**
 * `widget`: columns of the demo widget. Tests that expect a second request for one visitor to be
 * refused give it max_per_visitor_day 1, so the refusal cannot depend on a minute boundary falling
 * between the two requests (the minute window itself is tested with a fixed clock in limits.test.ts).
 */
export async function startRig(databaseUrl: string, opts: { fs?: FakeInboundOptions; settings?: Record<string, unknown>; fsDown?: boolean; widget?: Record<string, unknown> } = {}): Promise<ClickToCallRig> {
  const fs = new FakeInboundFreeSwitch({ timeScale: 0.01, ...opts.fs });
  const fsPort = await fs.listen();
  if (opts.fsDown) await fs.close();
  const d = await startTestDaemon(databaseUrl, {
    api: { enabled: true, port: 0, rateLimitPerMinute: 1000 },
    freeswitch: { inboundPort: fsPort, inboundPassword: 'ClueCon' },
    clickToCall: { ringTimeoutS: 30, connectTimeoutS: 2, maxPerClientMinute: 0, maxPerClientDay: 0 },
    ...opts.settings,
  });
  await widgetRow(d.knex, opts.widget);
  await widgetLoaded(d, WIDGET_KEY);
  if (!opts.fsDown) await d.daemon.clickToCall!.originator.waitReady(5000);
  const api = `http://127.0.0.1:${d.daemon.clickToCall!.port}`;
  const rig: ClickToCallRig = {
    d,
    fs,
    api,
    async post(body, headers = {}) {
      const res = await fetch(`${api}/v1/click-to-call`, { method: 'POST', headers: { 'content-type': 'application/json', origin: DEMO_ORIGIN, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
    },
    async get(path) {
      const res = await fetch(`${api}${path}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async follow(id, until = (s) => s === 'ended', key = WIDGET_KEY) {
      for (let i = 0; i < 1000; i++) {
        const r = await rig.get(`/v1/click-to-call/${id}?widget=${key}`);
        if (r.status === 200 && until(String(r.body.status))) return r.body;
        await new Promise((res) => setTimeout(res, 20));
      }
      throw new Error(`request ${id} did not get there`);
    },
    async stop() {
      await d.stop();
      await fs.close().catch(() => undefined);
    },
  };
  return rig;
}

export async function callUuidOf(knex: Knex, requestId: string): Promise<string> {
  const row: { call_uuid: string } | undefined = await knex('click_to_call_requests').where({ request_id: requestId }).first('call_uuid');
  if (!row) throw new Error(`no request ${requestId}`);
  return row.call_uuid;
}

/**
 * A rig whose visitor (`visitor`) answers but whose leg reaches the daemon's socket only once
 * `release()` is called (a leg late to its socket: given up, or past the watchdog's deadline);
 * the agent `agent` answers and talks 300 ms. The demo widget's click for the visitor is placed
 * (202 asserted); the rig stops when the test ends.
 */
export async function clickWithHeldLeg(
  t: Test,
  databaseUrl: string,
  visitor: string,
  agent: string,
  settings?: Record<string, unknown>,
): Promise<{ rig: ClickToCallRig; release: () => void; knex: Knex; id: string; uuid: string }> {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const rig = await startRig(databaseUrl, {
    fs: {
      visitors: { [visitor]: { result: 'answer', ringMs: 10, socketAfter: () => held } },
      callScript: () => ({ legs: { [agent]: { result: 'answer', ringMs: 20, talkMs: 300 } } }),
    },
    settings,
  });
  t.teardown(() => rig.stop());
  const { knex } = rig.d;
  const r = await rig.post({ widget: 'demo-click-to-call', number: visitor });
  t.equal(r.status, 202);
  const id = String(r.body.id);
  return { rig, release, knex, id, uuid: await callUuidOf(knex, id) };
}
