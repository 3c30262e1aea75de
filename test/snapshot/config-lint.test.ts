// `npm run config:lint` and `route explain` on SQLite and MariaDB: one line per rejected row with
// a summary (a tenant skipped with 10,000 blacklist rows is one line, not 10,001), the daemon's
// last good versions taken from its cache file, and the findings of a call's tenant in `explain`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { explainCall } from '../../src/calls/explain';
import { commandSnapshot } from '../../src/cli/command-snapshot';
import { lint } from '../../src/cli/config-lint';
import { loadSettings } from '../../src/config';
import { loadGeoData } from '../../src/domain/geo';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { ConfigCache, databaseIdentity } from '../../src/snapshot/cache';
import { ConfigStore } from '../../src/snapshot/store';
import { dbTargets } from '../helpers/db';

t.before(async () => {
  await loadGeoData();
});

for (const target of dbTargets()) void t.test(target.name, async (t) => {
  const db = await target.create();
  t.teardown(() => db.destroy());
  const { knex, url } = db;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-lint-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Prompt files are not this test's subject (test/calls/prompt-files.test.ts): the lint does not look for them here.
  const settings = loadSettings({ env: {}, overrides: { database: { url }, configCache: { file: path.join(dir, 'config-cache.json') }, prompts: { sameFilesystem: 'no' } } });
  const run = async (): Promise<{ code: number; lines: string[] }> => {
    let text = '';
    const code = await lint(settings, { write: (s: string) => (text += s) });
    return { code, lines: text.trimEnd().split('\n') };
  };

  await knex('tenants').insert({ id: 1, name: 'Acme', pin: '2468', timezone: 'Asia/Shanghai' });
  // A name cleared by mistake takes the tenant out of force (the README's example; a zone the
  // runtime does not know, 'Asia/Beijing', no longer does: the tenant runs on the default zone).
  await knex('tenants').insert({ id: 7, name: '', timezone: 'Asia/Shanghai' });
  await knex('access_numbers').insert([{ id: 1, number: '4001000001', tenant_id: 1 }, { id: 7, number: '4007000007', tenant_id: 7 }]);
  await knex('destination_groups').insert([{ id: 10, tenant_id: 1, name: 'Sales', strategy: 'sequential' }]);
  await knex('destinations').insert([{ id: 100, group_id: 10, number: '13800000100' }]);
  await knex('routing_rules').insert([{ id: 1000, tenant_id: 1, priority: 10, action: 'group', target_id: 10 }]);
  const clean = await run();
  t.equal(clean.code, 1, 'tenant 7 is a finding');

  // Tenant 7 gets 10,000 blacklist rows and 3 rules; a default rate nobody's database can hold.
  await knex.batchInsert('call_filters', Array.from({ length: 10_000 }, (_, i) => ({ tenant_id: 7, list: 'block', kind: 'number', value: `1390${String(i).padStart(7, '0')}` })), 500);
  await knex('routing_rules').insert([1, 2, 3].map((i) => ({ tenant_id: 7, priority: i, action: 'reject' })));
  await knex('rates').insert({ id: 1, tenant_id: null, call_type: 'mobile', per_minute: '0.1000', increment_s: 60, connect_fee: '9999999999.9999' });
  await knex('rates').insert(['local', 'long_distance', 'international'].map((callType, i) => ({ id: 2 + i, tenant_id: null, call_type: callType, per_minute: '0.1000', increment_s: 60, connect_fee: '0' })));

  // The daemon ran before the DBA's edit of tenant 1 and cached its rows.
  const cache = new ConfigCache(settings.configCache.file, databaseIdentity(url));
  const store = new ConfigStore(knex, { pollIntervalMs: 60_000, fullReloadIntervalS: 3600 }, createLogger('silent'), new Metrics(), undefined, { cache });
  await store.start();
  store.stop();
  await store.cacheSaved();
  await knex('tenants').where({ id: 1 }).update({ pin: '12ab' });

  const { code, lines } = await run();
  t.equal(code, 1);
  t.comment(lines.join('\n'));
  t.equal(lines.length, 2 + 4 + 1, 'header, cache note, four findings, summary: nothing per blacklist row');
  t.match(lines[1], /last good versions from the daemon's cache .*config-cache\.json/);
  t.match(lines[2], /^tenants id=1 pin=\(hidden\): pin \(hidden\) is not a PIN of 1 to 16 digits → its last good version stays in force until the row is fixed$/);
  t.match(lines[3], /^tenants id=7 name="": name must be non-empty text, got "" → skipped \(no last good version of it\); with it 10,000 call_filters rows, 3 routing_rules rows, 1 access_numbers row are not in force$/);
  t.match(lines[4], /^rates id=1 connect_fee="?9999999999\.9999"?: connect_fee 9999999999\.9999 is too large: a call of 14400 s/);
  // The refused rate was the only mobile one: mobile calls cost nothing, said.
  t.match(lines[5], /^rates \(no row\) call_type="mobile: tenants 1": no mobile rate: no default one \(tenant_id NULL\), and active tenants without their own: their mobile calls cost nothing → calls go on so; add the row if that is not what was meant$/);
  t.match(lines[6], /^4 findings: 1 on the last good version, 2 skipped, 1 in force as written but doubtful; 10,004 rows of other tables not in force with them$/);
  t.notMatch(lines.join('\n'), /2468|12ab/, 'no PIN in clear');

  // route explain: the findings of the call's tenant; a number not in service says why.
  const { snapshot } = await commandSnapshot(settings, knex);
  const acme = (await explainCall(snapshot, { dialed: '4001000001', caller: '13912345678', at: new Date('2026-11-20T10:00:00+08:00') }, null)).join('\n');
  t.match(acme, /configuration findings for this call \(1; npm run config:lint lists them all\):\n {2}tenants id=1 pin=\(hidden\): .* its last good version stays in force/);
  t.match(acme, /1 identify: access number 4001000001/, 'and the call goes on');
  const typo = (await explainCall(snapshot, { dialed: '4007000007', caller: '13912345678', at: new Date() }, null)).join('\n');
  t.match(typo, /tenants id=7 name="": .* skipped/);
  t.match(typo, /unknown number → not_in_service\.wav/);
  const none = (await explainCall(snapshot, { dialed: '4009999999', caller: '1', at: new Date() }, null)).join('\n');
  t.notMatch(none, /configuration findings/, 'nothing to say about a number nobody configured');

  // Fixed: clean, exit 0.
  await knex('tenants').where({ id: 1 }).update({ pin: '2468' });
  await knex('tenants').where({ id: 7 }).update({ name: 'Typo Ltd' });
  await knex('rates').where({ id: 1 }).update({ connect_fee: '0.1000' });
  const fixed = await run();
  t.equal(fixed.code, 0);
  t.equal(fixed.lines.at(-1), 'no problems found');
});
