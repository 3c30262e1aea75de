/**
 * One number_kind label per call: numberKindLabel (plan.ts) for every counter, so a call dialled
 * as +86400… is a hotline call when it starts and when it ends (it was `unknown`, then `hotline`).
 */
import t from 'tap';
import { numberKindLabel } from '../../src/calls/plan';
import { buildSnapshot } from '../../src/snapshot/build';
import { placeCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

t.test('numberKindLabel: any spelling of an access number, in service or not', async (t) => {
  const snapshot = buildSnapshot({
    tenants: [{ id: 1, name: 'T', status: 'active', timezone: 'Asia/Shanghai' }, { id: 2, name: 'S', status: 'suspended', timezone: 'Asia/Shanghai' }],
    access_numbers: [
      { id: 1, number: '4001012345', tenant_id: 1, kind: 'hotline', enabled: 1 },
      { id: 2, number: '02088880000', tenant_id: 1, kind: 'switchboard', enabled: 1 },
      { id: 3, number: '4002000000', tenant_id: 1, kind: 'hotline', enabled: 0 },
      { id: 4, number: '4003000000', tenant_id: 2, kind: 'switchboard', enabled: 1 },
    ],
    destination_groups: [], destinations: [], routing_rules: [], prompts: [],
  }, 1, new Date(0));
  const cases: Array<[string, string]> = [
    ['4001012345', 'hotline'], ['+864001012345', 'hotline'], ['864001012345', 'hotline'], ['00864001012345', 'hotline'],
    ['02088880000', 'switchboard'], ['+8602088880000', 'switchboard'],
    ['4002000000', 'hotline'], ['4003000000', 'switchboard'],
    ['4009999999', 'unknown'], ['', 'unknown'], ['anonymous', 'unknown'],
  ];
  for (const [dialed, kind] of cases) t.equal(numberKindLabel(snapshot, dialed), kind, JSON.stringify(dialed));
});

t.test('a +86-prefixed call is counted under one kind from start to end', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  const value = async (name: string, labels: string): Promise<number> => {
    const text = await d.daemon.metrics.registry.getSingleMetricAsString(name);
    return Number(new RegExp(`${name}\\{${labels}\\} (\\d+)`).exec(text)?.[1] ?? NaN);
  };
  const c = await placeCall(d.port, { caller: '13912345678', destination: '+864001012345', legs: { '13800000001': { result: 'answer', talkMs: 1100 } } });
  t.match(await d.cdr(c.uuid), { outcome: 'answered', tenant_id: 1 });
  t.equal(await value('hotline_calls_started_total', 'number_kind="hotline"'), 1, 'started: hotline');
  t.equal(await value('hotline_calls_started_total', 'number_kind="unknown"'), 0, 'not unknown');
  t.equal(await value('hotline_calls_ended_total', 'outcome="answered",number_kind="hotline"'), 1, 'ended: hotline');
  const unknown = await placeCall(d.port, { caller: '13912345678', destination: '+864009999999' });
  t.match(await d.cdr(unknown.uuid), { outcome: 'announced' });
  t.equal(await value('hotline_calls_started_total', 'number_kind="unknown"'), 1);
  t.equal(await value('hotline_calls_ended_total', 'outcome="announced",number_kind="unknown"'), 1);
});
