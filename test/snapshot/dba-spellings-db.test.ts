// Access numbers in several spellings, IVR keys and extensions as a DBA types them into MySQL or
// SQLite: read back through the driver, the snapshot takes one number per national number and
// refuses the keys no caller can type, with a finding each; calls and `route explain` agree.
import t from 'tap';
import { identify } from '../../src/domain/routing';
import { explainFindings } from '../../src/snapshot/findings';
import { loadSnapshot } from '../../src/snapshot/store';
import { withDatabases } from '../helpers/db';

withDatabases(t, async (t, knex) => {
  await knex('tenants').insert([
    { id: 1, name: 'Acme', status: 'active', timezone: 'Asia/Shanghai' },
    { id: 2, name: 'Beta', status: 'active', timezone: 'Asia/Shanghai' },
  ]);
  await knex('access_numbers').insert([
    { id: 1, number: '+86 400-100-0001', tenant_id: 1, kind: 'hotline', enabled: 1 },
    { id: 2, number: '020-8888-0002', tenant_id: 2, kind: 'switchboard', enabled: 1 },
    { id: 3, number: '0086 4001000001', tenant_id: 2, kind: 'hotline', enabled: 1 },
    { id: 4, number: '400 1OO 0004', tenant_id: 2, kind: 'hotline', enabled: 1 },
    { id: 5, number: '400-100-0005', tenant_id: 99, kind: 'hotline', enabled: 1 },
  ]);
  await knex('extensions').insert([
    { id: 7, tenant_id: 2, ext: '0' },
    { id: 8, tenant_id: 2, ext: '801' },
    { id: 9, tenant_id: 2, ext: '8-02' },
  ]);
  await knex('ivr_menus').insert([{ id: 1, tenant_id: 2, name: 'Main', digits: 1 }]);
  await knex('ivr_options').insert([
    { id: 1, menu_id: 1, digits: '0', action: 'operator' },
    { id: 2, menu_id: 1, digits: '1', action: 'extension', target_id: 8 },
    { id: 3, menu_id: 1, digits: '#', action: 'hangup' },
    { id: 4, menu_id: 1, digits: '2', action: 'extension', target_id: 9 },
  ]);

  const s = await loadSnapshot(knex, 1);
  t.same([...s.accessNumbers.keys()].sort(), ['2088880002', '4001000001']);
  t.equal(s.accessNumbers.get('4001000001')?.id, 1, 'the lower id keeps the number');
  const acme = identify(s, '4001000001');
  t.equal(acme.kind === 'ok' && acme.tenant.id, 1, 'a call to 4001000001 reaches tenant 1');
  const beta = identify(s, '+862088880002');
  t.equal(beta.kind === 'ok' && beta.accessNumber.id, 2, 'a call to +862088880002 reaches the switchboard 020-8888-0002');
  t.same([...s.menus.get(1)!.options.keys()].sort(), ['0', '1'], "the menu's good options work, key 0 among them");
  t.same([...s.extensionsByTenant.get(2)!.keys()].sort(), ['0', '801']);
  t.same(s.rejected.map((f) => [f.table, f.id, f.status, f.column]), [
    ['tenants', 99, 'missing', null],
    ['access_numbers', 3, 'skipped', 'number'],
    ['access_numbers', 4, 'skipped', 'number'],
    ['ivr_options', 3, 'skipped', 'digits'],
    ['extensions', 7, 'link_ignored', 'ext'],
    ['extensions', 9, 'skipped', 'ext'],
  ], 'one finding per refused or doubtful row');
  t.match(s.rejected.find((f) => f.table === 'extensions' && f.id === 9), { dependents: { ivr_options: 1 } }, 'the option naming the refused extension is counted with it');
  t.match(explainFindings(s, '+86 400 100 0005').join('\n'), /tenants id=99: tenant 99 does not exist/, 'route explain says why a number in any spelling is not in service');
});
