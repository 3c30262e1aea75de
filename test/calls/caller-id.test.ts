/**
 * Caller IDs with more than a number in them, through the stand-in into a real daemon: the block
 * list applies to the digits, the CDR and every command carry the normalised number only, and
 * hotline_caller_numbers_total counts how the caller IDs read.
 */
import t from 'tap';
import { placeCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

t.test('caller IDs reduced to their digits', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  await d.knex('call_filters').insert({ tenant_id: 1, list: 'block', kind: 'number', value: '13000000123' });
  await d.knex('tenants').update({ caller_memory_hours: 0 });
  await d.daemon.store.poll();
  const metric = async (form: string): Promise<number> => {
    const text = await d.daemon.metrics.registry.getSingleMetricAsString('hotline_caller_numbers_total');
    return Number(new RegExp(`form="${form}"\\} (\\d+)`).exec(text)?.[1] ?? NaN);
  };

  const blocked = await placeCall(d.port, { caller: '13000000123#', destination: '4001012345', defaultLeg: { result: 'answer' } });
  t.match(await d.cdr(blocked.uuid), { outcome: 'blocked', caller: '13000000123' }, '13000000123# on a tenant that blocks 13000000123');
  t.same(blocked.bridges, [], 'no phone rang');

  const served = await placeCall(d.port, { caller: '+86 139-1234-5678#', destination: '4001012345', legs: { '13800000001': { result: 'answer' } } });
  t.match(await d.cdr(served.uuid), { outcome: 'answered', caller: '+8613912345678', call_type: 'mobile' }, 'rated as the mobile it is');
  t.equal(served.bridges[0]?.vars.origination_caller_id_number, '+8613912345678', 'the callee sees the normalised number');
  for (const x of served.commands) t.notMatch(`${x.line}\n${x.body}`, /139-1234|#/, `no raw caller text in: ${x.line}`);

  const withheld = await placeCall(d.port, { caller: 'anonymous', destination: '4001012345', legs: { '13800000001': { result: 'answer' } } });
  t.match(await d.cdr(withheld.uuid), { outcome: 'answered', caller: '' }, 'withheld: allowed by default, no number in the CDR');
  t.equal(withheld.bridges[0]?.vars.origination_caller_id_number, undefined, 'no caller ID presented');

  t.equal(await metric('reduced'), 2);
  t.equal(await metric('withheld'), 1);
  t.equal(await metric('plain'), 0);
});
