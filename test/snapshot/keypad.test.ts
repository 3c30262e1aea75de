// IVR option keys and extension numbers a DBA can type: what a caller cannot key is a finding, and
// the rest of the menu or switchboard plan stays in force. The call steps collect keys with the
// same patterns (src/domain/keypad.ts), checked here against what the build accepts.
import t from 'tap';
import { extensionProblem, menuKeyProblem, menuKeysPattern, EXTENSION_PATTERN, switchboardChoice } from '../../src/domain/keypad';
import { buildSnapshot, tenantExtension } from '../../src/snapshot/build';
import { goodRaw } from './fixtures';

const WHEN = new Date('2026-11-21T08:00:00.000Z');

t.test('menuKeyProblem: what a caller can choose in a menu collecting N keys', async (t) => {
  for (const key of ['0', '1', '9', '*', '*0']) t.equal(menuKeyProblem(key, 2), null, `${key} can be keyed`);
  t.match(menuKeyProblem('#', 1), /ends the entry/);
  t.match(menuKeyProblem('1#', 2), /ends the entry/);
  t.match(menuKeyProblem('A', 1), /not keypad keys/);
  t.match(menuKeyProblem('12', 1), /collects at most 1/);
  t.match(menuKeyProblem('', 1), /empty/);
  // Every key the build accepts matches the regexp the IVR step hands play_and_get_digits.
  for (const key of ['0', '5', '*', '801', '*9']) t.match(key, new RegExp(menuKeysPattern(3)), `${key}: the IVR can collect it`);
});

t.test('extensions: digits only; 0 is the operator at the switchboard', async (t) => {
  for (const ext of ['0', '8', '801', '0123', '1'.repeat(16)]) {
    t.equal(extensionProblem(ext), null, `${ext} is an extension`);
    t.match(ext, new RegExp(EXTENSION_PATTERN), `${ext}: the switchboard can collect it`);
  }
  for (const ext of ['', '80a', '8*1', '#', '1'.repeat(17), '80 1']) t.not(extensionProblem(ext), null, `${JSON.stringify(ext)} is refused`);
  t.same(switchboardChoice('0'), { kind: 'operator' });
  t.same(switchboardChoice('00'), { kind: 'extension', ext: '00' });
  t.same(switchboardChoice('801'), { kind: 'extension', ext: '801' });
});

t.test('ivr_options: a key no caller can type, or typed twice, is a finding; the rest of the menu works', async (t) => {
  const raw = goodRaw();
  raw.ivr_menus = [{ id: 1, tenant_id: 1, name: 'Main', digits: 1 }, { id: 2, tenant_id: 1, name: 'Long', digits: 3 }];
  raw.ivr_options = [
    { id: 1, menu_id: 1, digits: '0', action: 'operator', target_id: null },
    { id: 2, menu_id: 1, digits: ' 1 ', action: 'group', target_id: 10 },
    { id: 3, menu_id: 1, digits: '*', action: 'repeat', target_id: null },
    { id: 4, menu_id: 1, digits: '２', action: 'hangup', target_id: null },
    { id: 11, menu_id: 1, digits: '#', action: 'group', target_id: 10 },
    { id: 12, menu_id: 1, digits: '12', action: 'group', target_id: 10 },
    { id: 13, menu_id: 1, digits: 'A', action: 'group', target_id: 10 },
    { id: 14, menu_id: 1, digits: '1', action: 'hangup', target_id: null },
    { id: 15, menu_id: 1, digits: '', action: 'hangup', target_id: null },
    { id: 16, menu_id: 1, digits: '3', action: 'group', target_id: 999 },
    { id: 21, menu_id: 2, digits: '801', action: 'group', target_id: 10 },
    { id: 22, menu_id: 2, digits: '8011', action: 'group', target_id: 10 },
  ];
  const s = buildSnapshot(raw, 1, WHEN);
  t.same([...s.menus.get(1)!.options.keys()].sort(), ['*', '0', '1', '2'], "menu 1's good options are in force, key 0 among them");
  t.equal(s.menus.get(1)!.options.get('1')?.id, 2, 'the lower id keeps a key typed twice');
  t.same([...s.menus.get(2)!.options.keys()], ['801'], 'a key as long as the menu collects is in force');
  const findings = s.rejected.filter((f) => f.table === 'ivr_options');
  t.same(findings.map((f) => [f.id, f.status, f.column]), [
    [11, 'skipped', 'digits'], [12, 'skipped', 'digits'], [13, 'skipped', 'digits'], [14, 'skipped', 'digits'], [15, 'skipped', 'digits'],
    [16, 'skipped', 'target_id'], [22, 'skipped', 'digits'],
  ], 'each refused option is one finding');
  t.match(findings.find((f) => f.id === 11), { tenantId: 1, reason: /holds #, which ends the entry/ });
  t.match(findings.find((f) => f.id === 12), { reason: /has 2 keys but the menu collects at most 1/ });
  t.match(findings.find((f) => f.id === 13), { reason: /not keypad keys/ });
  t.match(findings.find((f) => f.id === 14), { reason: /digits 1 already used in menu 1 \(option 2 has it\)/ });
  t.match(findings.find((f) => f.id === 16), { reason: /target_id 999 is not a destination group of tenant 1/ });

  // The menu edited to collect fewer keys: its long option becomes a finding, the menu stays.
  const edited = structuredClone(raw);
  edited.ivr_menus![1] = { ...edited.ivr_menus![1], digits: 2, updated_at: '2026-11-21 08:05:00.000' };
  const next = buildSnapshot(edited, 2, WHEN, s.lastGood);
  t.ok(next.menus.has(2), 'the menu stays in force');
  t.match(next.rejected.find((f) => f.table === 'ivr_options' && f.id === 21), { reason: /has 3 keys but the menu collects at most 2/ });
});

t.test('extensions: a bad or repeated ext is a finding, the other extensions work; ext 0 is in force and said', async (t) => {
  const raw = goodRaw();
  raw.extensions = [
    { id: 1, tenant_id: 1, ext: '0' },
    { id: 2, tenant_id: 1, ext: '801' },
    { id: 3, tenant_id: 1, ext: '80-2' },
    { id: 4, tenant_id: 1, ext: '801' },
    { id: 5, tenant_id: 1, ext: '8*3' },
    { id: 6, tenant_id: 1, ext: '８０４' },
  ];
  raw.ivr_menus = [{ id: 1, tenant_id: 1, name: 'Main', digits: 1 }];
  raw.ivr_options = [{ id: 1, menu_id: 1, digits: '9', action: 'extension', target_id: 1 }];
  const s = buildSnapshot(raw, 1, WHEN);
  t.same([...s.extensionsByTenant.get(1)!.keys()].sort(), ['0', '801', '804']);
  t.equal(s.menus.get(1)!.options.get('9')?.targetId, 1, 'an IVR option still rings extension 0');
  t.same(s.rejected.filter((f) => f.table === 'extensions').map((f) => [f.id, f.status, f.column]), [
    [1, 'link_ignored', 'ext'], [3, 'skipped', 'ext'], [4, 'skipped', 'ext'], [5, 'skipped', 'ext'],
  ]);
  t.match(s.rejected.find((f) => f.table === 'extensions' && f.id === 1), { reason: /operator key/ });
  t.match(s.rejected.find((f) => f.table === 'extensions' && f.id === 4), { reason: /extension 801 already exists for tenant 1 \(extension 2 has it\)/ });
});

t.test('tenantExtension: an extension by id, only the tenant\'s own and only one in force', async (t) => {
  const raw = goodRaw();
  raw.extensions = [
    { id: 1, tenant_id: 1, ext: '801' },
    { id: 2, tenant_id: 2, ext: '801' },
    { id: 3, tenant_id: 1, ext: '8*3' },
  ];
  const s = buildSnapshot(raw, 1, WHEN);
  t.equal(tenantExtension(s.extensionsById, 1, 1), s.extensionsByTenant.get(1)!.get('801'), 'tenant 1\'s 801, the same object as by its ext');
  t.equal(tenantExtension(s.extensionsById, 2, 2)?.tenantId, 2, 'tenant 2\'s 801');
  t.equal(tenantExtension(s.extensionsById, 1, 2), undefined, 'another tenant\'s extension is not found');
  t.equal(tenantExtension(s.extensionsById, 1, 3), undefined, 'a skipped extension is not in force');
  t.equal(tenantExtension(s.extensionsById, 1, 99), undefined, 'no such extension');
  t.equal(s.extensionsById.size, [...s.extensionsByTenant.values()].reduce((n, m) => n + m.size, 0), 'every extension in force, once');
});
