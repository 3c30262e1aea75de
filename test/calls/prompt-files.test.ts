/**
 * Prompt files that are not there. The capture daemon-pin-prompt-file-missing: PROMPTS_DIR
 * pointed at a folder that does not exist, every play_and_get_digits came back at once with no
 * digits, the PIN caller was rejected within 0.9 s without hearing a prompt, and nothing told
 * anyone. Now: the same caller keys the PIN and gets through — whether the daemon sees the folder
 * (the files are checked, a tone stands in) or not (the unplayed prompt is noticed and asked again
 * with a tone) — and the check is logged, counted and listed by config:lint.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { SYSTEM_PROMPTS } from '../../src/calls/prompts';
import { MISSING_PROMPT_TONE } from '../../src/calls/prompt-player';
import { lint } from '../../src/cli/config-lint';
import { promptFindings } from '../../src/prompts/lint';
import { placeCall } from '../peer/fake-freeswitch';
import { fetchMetrics, startTestDaemon, tempSqliteUrl, type TestDaemon } from '../helpers/daemon';
import { apps } from './helpers';

async function pinTenant(d: TestDaemon): Promise<void> {
  const [tenantId] = await d.knex('tenants').insert({ name: 'PIN Co', status: 'active', timezone: 'Asia/Shanghai', pin: '4321', pin_max_attempts: 3, caller_memory_hours: 0 });
  await d.knex('access_numbers').insert({ number: '4001010001', tenant_id: tenantId, kind: 'hotline', enabled: 1 });
  const [g] = await d.knex('destination_groups').insert({ tenant_id: tenantId, name: 'desk', strategy: 'sequential', max_queue: 0, queue_timeout_s: 0 });
  await d.knex('destinations').insert({ group_id: g, number: '13800000102', position: 1, weight: 1, enabled: 1 });
  await d.knex('routing_rules').insert({ tenant_id: tenantId, priority: 1, percent: 100, action: 'group', target_id: g, enabled: 1 });
  await d.daemon.store.poll();
}

async function metric(d: TestDaemon, name: string, labels = ''): Promise<number> {
  const text = await fetchMetrics(d);
  if (labels === '') {
    // Every series of the metric, summed (hotline_prompt_files_missing has one per reason).
    const all = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))];
    return all.length === 0 ? NaN : all.reduce((sum, m) => sum + Number(m[1]), 0);
  }
  const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

// The capture's caller: the PIN 4 s after answer, 400 ms apart; FreeSWITCH finds no prompt at all.
// Time scale 0.25: the PIN comes 1 s into the call. At 0.1 the daemon had about 370 ms of real time
// to start its second prompt before the keys came, and a loaded machine missed it by chance.
const CALLER = { caller: '13933339002', destination: '4001010001', timeline: { keys: [{ atMs: 4000, keys: '4321' }] }, missingDirs: ['/nonexistent'], timeScale: 0.25, defaultLeg: { result: 'answer' as const, talkMs: 100 } };

t.test('the daemon cannot see FreeSWITCH\'s files: the unplayed prompt is asked again with a tone, the caller gets through', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { prompts: { systemDir: '/nonexistent/hotline', sameFilesystem: 'no' } });
  t.teardown(() => d.stop());
  await pinTenant(d);
  const c = await placeCall(d.port, CALLER);
  const cdr = await d.cdr(c.uuid);
  t.match(cdr, { outcome: 'answered', answered_by: '13800000102' }, 'not CALL_REJECTED: the caller keyed the PIN');
  const pagd = apps(c).filter((a) => a.startsWith('play_and_get_digits'));
  t.equal(pagd.length, 2);
  t.match(pagd[1], ` ${MISSING_PROMPT_TONE} `);
  t.equal(await metric(d, 'hotline_prompts_not_played_total', '{application="play_and_get_digits"}'), 1);
  t.equal(await metric(d, 'hotline_prompt_files_missing'), 0, 'not checked: the daemon cannot see the files');
});

t.test('the daemon sees the folder: files checked at start-up, a tone at once, counted, listed by config:lint', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-sounds-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Only some prompts were installed; one is unreadable (empty).
  for (const name of ['welcome', 'goodbye']) fs.writeFileSync(path.join(dir, `${name}.wav`), Buffer.alloc(2000, 1));
  fs.writeFileSync(path.join(dir, 'capped.wav'), '');
  const d = await startTestDaemon(tempSqliteUrl(), { prompts: { systemDir: dir, sameFilesystem: 'yes' } });
  t.teardown(() => d.stop());
  await pinTenant(d);
  const [promptId] = await d.knex('prompts').insert({ tenant_id: 1, name: 'gone', file: path.join(dir, 'tenant-gone.wav') });
  await d.knex('tenants').where({ id: 1 }).update({ welcome_prompt_id: promptId });
  await d.daemon.store.poll();
  const expected = SYSTEM_PROMPTS.length - 2 + 1; // 16 missing or empty system prompts, one tenant file
  const deadline = Date.now() + 5000;
  while ((await metric(d, 'hotline_prompt_files_missing')) !== expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const counted = await metric(d, 'hotline_prompt_files_missing');
  t.equal(counted, expected, `every missing or unreadable file counted, after the configuration load too (${counted})`);
  t.equal(await metric(d, 'hotline_prompt_files_missing', '{reason="empty"}'), 1, 'by reason: capped.wav is empty');

  const c = await placeCall(d.port, { ...CALLER, missingDirs: [], missingFiles: SYSTEM_PROMPTS.filter((n) => n !== 'welcome' && n !== 'goodbye').map((n) => path.join(dir, `${n}.wav`)) });
  t.match(await d.cdr(c.uuid), { outcome: 'answered' });
  const pagd = apps(c).filter((a) => a.startsWith('play_and_get_digits'));
  t.equal(pagd.length, 1, 'no failed try: the daemon knew');
  t.match(pagd[0], ` file_string://${dir}/welcome.wav!${MISSING_PROMPT_TONE} `, 'the greeting that exists, a tone for "enter your PIN"');

  const findings = await promptFindings(d.settings, d.daemon.store.current);
  // config:lint's one finding format (snapshot/findings.ts formatFindingLine).
  t.ok(findings.some((f) => f === `system prompts id=enter_pin file="${dir}/enter_pin.wav": missing → calls hear a tone instead`));
  t.ok(findings.some((f) => f.startsWith(`system prompts id=capped file="${dir}/capped.wav": empty → `)));
  t.ok(findings.some((f) => f === `prompts id=${promptId} (tenant 1) file="${dir}/tenant-gone.wav": missing → calls hear the system prompt instead`));
  t.notOk(findings.some((f) => f.includes('welcome.wav')), 'files that are there are not listed');
});

t.test('config:lint lists IVR menus without a prompt', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  const [menu] = await d.knex('ivr_menus').insert({ tenant_id: 1, name: 'main', digits: 1, timeout_s: 5, max_retries: 2 });
  await d.daemon.store.poll();
  const findings = await promptFindings(d.settings, d.daemon.store.current);
  const line = `ivr_menus id=${menu} (tenant 1) prompt_id=NULL: menu "main" has no prompt → callers hear the system prompt choose_option.wav, which does not say what the options are`;
  t.same(findings, [line]);
  // In config:lint's output beside the rejected rows, counted in the one summary line.
  let text = '';
  t.equal(await lint(d.settings, { write: (s: string) => (text += s) }), 1);
  const lines = text.trimEnd().split('\n');
  t.ok(lines.includes(line));
  t.equal(lines.at(-1), 'no rejected rows; 1 prompt problem(s)');
});
