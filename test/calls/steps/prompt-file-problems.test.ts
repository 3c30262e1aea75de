/**
 * Which prompt file problems replace a prompt in calls (issue 9 review): only a file that is not
 * there (ENOENT, ENOTDIR). A file this daemon may not read (EACCES: FreeSWITCH runs as another
 * user and may well read it) is reported — logged, counted by reason, linted — but still played.
 * And a playback FreeSWITCH answers with FILE NOT FOUND is counted and followed by what stands
 * in for it: the system prompt, then a tone.
 */
import path from 'node:path';
import t from 'tap';
import { MISSING_PROMPT_TONE, PromptPlayer, tenantPrompt } from '../../../src/calls/prompt-player';
import { createLogger } from '../../../src/log';
import { Metrics } from '../../../src/metrics';
import { PromptResolver } from '../../../src/prompts';
import { PromptFileStatus, problemOfError, promptFilesInUse, type PromptFileProblem, type PromptFileUse } from '../../../src/prompts/file-check';
import { ScriptedChannel } from '../../peer/scripted-channel';
import { metricValue, stepWorld, type StepWorld } from './harness';

t.test('stat/access errors: only ENOENT and ENOTDIR say the file is not there', async (t) => {
  const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });
  t.equal(problemOfError(err('ENOENT')), 'missing');
  t.equal(problemOfError(err('ENOTDIR')), 'missing');
  for (const code of ['EACCES', 'EPERM', 'EIO', 'ELOOP']) t.equal(problemOfError(err(code)), 'unreadable', code);
  t.equal(problemOfError(null), 'unreadable');
});

interface Rig {
  player: PromptPlayer;
  channel: ScriptedChannel;
  metrics: Metrics;
  reported: PromptFileProblem[];
  promptId: number;
  tenantFile: string;
}

/** A tenant with a greeting file; the file check sees `problems` (path → problem) as this daemon would. */
async function rig(world: StepWorld, problems: Record<string, PromptFileProblem['problem']>, missingForFreeSwitch: string[] = []): Promise<Rig> {
  const [tenantId] = await world.knex('tenants').insert({ name: 'Files Co', status: 'active', timezone: 'Asia/Shanghai', caller_memory_hours: 0 });
  const tenantFile = path.join(world.systemDir, 'tenant-welcome.wav');
  const [promptId] = await world.knex('prompts').insert({ tenant_id: tenantId, name: 'greeting', file: tenantFile });
  const snapshot = await world.snapshot();
  const metrics = new Metrics();
  const reported: PromptFileProblem[] = [];
  const check = (files: readonly PromptFileUse[]): Promise<PromptFileProblem[]> =>
    Promise.resolve(files.filter((f) => problems[f.path] !== undefined).map((f) => ({ ...f, problem: problems[f.path] })));
  const promptFiles = new PromptFileStatus((p) => reported.push(p), (counts) => metrics.setPromptFileProblems(counts), check);
  await promptFiles.refresh(() => promptFilesInUse(world.settings, snapshot));
  const channel = new ScriptedChannel({ promptMs: world.promptMs, missingFiles: missingForFreeSwitch });
  const prompts = new PromptResolver(world.settings, { has: () => false });
  const player = new PromptPlayer(channel, { prompts, promptFiles, snapshot, metrics }, createLogger('silent'));
  return { player, channel, metrics, reported, promptId, tenantFile };
}

t.test('a tenant file this daemon cannot read (EACCES) is reported but still played', async (t) => {
  const world = await stepWorld(t);
  const tenantFile = path.join(world.systemDir, 'tenant-welcome.wav');
  const r = await rig(world, { [tenantFile]: 'unreadable' });
  t.equal(r.player.file(tenantPrompt(r.promptId, 'welcome')), tenantFile, 'FreeSWITCH is asked to play the tenant file, not the system prompt');
  t.same(r.reported.map((p) => [p.path, p.problem]), [[tenantFile, 'unreadable']], 'reported once');
  t.equal(await metricValue(r.metrics, 'hotline_prompt_files_missing', { reason: 'unreadable' }), 1, 'counted with its reason');
  t.equal(await metricValue(r.metrics, 'hotline_prompt_files_missing', { reason: 'missing' }), 0);
});

t.test('a tenant file that is not there (ENOENT) is replaced by the system prompt; a missing system prompt by a tone', async (t) => {
  const world = await stepWorld(t);
  const tenantFile = path.join(world.systemDir, 'tenant-welcome.wav');
  const welcome = path.join(world.systemDir, 'welcome.wav');
  const r = await rig(world, { [tenantFile]: 'missing' });
  t.equal(r.player.file(tenantPrompt(r.promptId, 'welcome')), welcome);
  t.equal(await metricValue(r.metrics, 'hotline_prompt_files_missing', { reason: 'missing' }), 1);
  const both = await rig(world, { [tenantFile]: 'missing', [welcome]: 'missing' });
  t.equal(both.player.file(tenantPrompt(both.promptId, 'welcome')), MISSING_PROMPT_TONE);
  // An unreadable system prompt is still played.
  const unreadable = await rig(world, { [welcome]: 'unreadable' });
  t.equal(unreadable.player.file(tenantPrompt(null, 'welcome')), welcome);
});

t.test('FILE NOT FOUND from FreeSWITCH: counted, then the system prompt, then a tone; the call goes on', async (t) => {
  const world = await stepWorld(t);
  const tenantFile = path.join(world.systemDir, 'tenant-welcome.wav');
  const welcome = path.join(world.systemDir, 'welcome.wav');
  // The daemon cannot read the tenant's file (so plays it); FreeSWITCH does not find it either.
  const r = await rig(world, { [tenantFile]: 'unreadable' }, [tenantFile]);
  await r.player.play([tenantPrompt(r.promptId, 'welcome')]);
  t.same(r.channel.apps.map((a) => `${a.app} ${a.arg} → ${a.response}`), [`playback ${tenantFile} → FILE NOT FOUND`, `playback ${welcome} → FILE PLAYED`]);
  t.equal(await metricValue(r.metrics, 'hotline_prompts_not_played_total', { application: 'playback' }), 1);

  const none = await rig(world, {}, [tenantFile, welcome]);
  await none.player.play([tenantPrompt(none.promptId, 'welcome')]);
  t.same(none.channel.apps.map((a) => `${a.app} ${a.arg} → ${a.response}`), [
    `playback ${tenantFile} → FILE NOT FOUND`, `playback ${welcome} → FILE NOT FOUND`, `playback ${MISSING_PROMPT_TONE} → FILE PLAYED`,
  ]);
  t.equal(await metricValue(none.metrics, 'hotline_prompts_not_played_total', { application: 'playback' }), 2);
  t.equal(none.channel.hangupAt, null, 'nobody hung the caller up');
});

t.test('a held prompt (the greeting in front of a hunt): every playback event-locked; nothing stands in once something waits behind', async (t) => {
  const world = await stepWorld(t);
  const tenantFile = path.join(world.systemDir, 'tenant-welcome.wav');
  const welcome = path.join(world.systemDir, 'welcome.wav');
  // Nothing written behind it yet when FreeSWITCH answers FILE NOT FOUND: the stand-ins play as
  // before, each held too, so what is written during them waits as well.
  const free = await rig(world, {}, [tenantFile, welcome]);
  await free.player.play([tenantPrompt(free.promptId, 'welcome')], { standIn: () => true });
  t.same(free.channel.apps.map((a) => `${a.app} ${a.arg} → ${a.response} ${a.eventLock ? 'locked' : 'unlocked'}`), [
    `playback ${tenantFile} → FILE NOT FOUND locked`, `playback ${welcome} → FILE NOT FOUND locked`, `playback ${MISSING_PROMPT_TONE} → FILE PLAYED locked`,
  ]);
  // The bridge already waits behind it: a stand-in would be queued behind the ringing (and run
  // nested inside the bridge), so nothing is played; the miss is still counted.
  const behind = await rig(world, {}, [tenantFile]);
  await behind.player.play([tenantPrompt(behind.promptId, 'welcome')], { standIn: () => false });
  t.same(behind.channel.apps.map((a) => `${a.app} ${a.arg} → ${a.response}`), [`playback ${tenantFile} → FILE NOT FOUND`]);
  t.equal(await metricValue(behind.metrics, 'hotline_prompts_not_played_total', { application: 'playback' }), 1);
  // Without `held` nothing is locked (a prompt the call waits for needs no lock).
  const plain = await rig(world, {}, []);
  await plain.player.play([tenantPrompt(plain.promptId, 'welcome')]);
  t.same(plain.channel.apps.map((a) => a.eventLock), [false]);
});
