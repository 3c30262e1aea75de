/**
 * TTS prompts where the caller keys digits (issue 9 review). What goes into play_and_get_digits
 * must be something FreeSWITCH plays there: a file (a recorded prompt, a TTS prompt rendered by
 * espeak, a system prompt) or a tone. A tts_text prompt spoken by FreeSWITCH (TTS_ENGINE=freeswitch)
 * is a `speak` application, which play_and_get_digits cannot run: the system prompt is sent
 * instead, logged once per prompt, and config:lint lists every such use.
 */
import t from 'tap';
import { PromptPlayer, tenantPrompt } from '../../../src/calls/prompt-player';
import { Metrics } from '../../../src/metrics';
import { PromptResolver } from '../../../src/prompts';
import { speakOnlyPrompts } from '../../../src/prompts/lint';
import { ScriptedChannel } from '../../peer/scripted-channel';
import { stepWorld } from './harness';
import { capturingLogger } from '../../helpers/log';

t.test('TTS_ENGINE=freeswitch: a tts_text greeting in front of digits is the system prompt, logged once, linted', async (t) => {
  const world = await stepWorld(t);
  const settings = { ...world.settings, tts: { ...world.settings.tts, engine: 'freeswitch' as const } };
  const [tenantId] = await world.knex('tenants').insert({ name: 'TTS Co', status: 'active', timezone: 'Asia/Shanghai', caller_memory_hours: 0 });
  const [promptId] = await world.knex('prompts').insert({ tenant_id: tenantId, name: 'hello', tts_text: '欢迎致电' });
  await world.knex('tenants').where({ id: tenantId }).update({ welcome_prompt_id: promptId });
  const [menuId] = await world.knex('ivr_menus').insert({ tenant_id: tenantId, name: 'main', digits: 1, timeout_s: 5, max_retries: 2, prompt_id: promptId });
  const snapshot = await world.snapshot();

  const { log, lines } = capturingLogger('warn');
  const prompts = new PromptResolver(settings, { has: () => false });
  const deps = { prompts, promptFiles: null, snapshot, metrics: new Metrics() };
  const ref = tenantPrompt(promptId, 'welcome');
  const first = new PromptPlayer(new ScriptedChannel({}), deps, log);
  t.equal(first.instruction(ref).app, 'speak', 'played alone, FreeSWITCH speaks it');
  t.equal(first.file(ref), `${world.systemDir}/welcome.wav`, 'where a file is needed: the system prompt');
  t.equal(new PromptPlayer(new ScriptedChannel({}), deps, log).file(ref), `${world.systemDir}/welcome.wav`, 'a second call: the same');
  t.equal(lines.filter((l) => String(l.msg).includes('cannot be played where the caller keys digits')).length, 1, 'logged once, not on every call');

  const findings = speakOnlyPrompts(settings, snapshot);
  t.equal(findings.length, 2);
  t.match(findings[0], new RegExp(`^tenants id=${tenantId} welcome_prompt_id=${promptId}: prompt ${promptId} is tts_text only`));
  t.match(findings[1], new RegExp(`^ivr_menus id=${menuId} \\(tenant ${tenantId}\\) prompt_id=${promptId}: .* → callers hear the system prompt choose_option.wav there`));
  t.same(speakOnlyPrompts(world.settings, snapshot), [], 'espeak renders files: nothing to list');
});
