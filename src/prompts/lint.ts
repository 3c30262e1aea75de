/**
 * What `npm run config:lint` says about prompts: IVR menus without a prompt of their own (callers
 * hear the system prompt choose_option.wav, which cannot name this tenant's options), company
 * ringbacks whose file a channel variable cannot carry (callers hear the system ringback), and — when
 * the daemon sees FreeSWITCH's files (PROMPTS_SAME_FILESYSTEM) — every prompt file that is
 * missing or unreadable (calls would get a system prompt or a tone instead).
 */
import type { Settings } from '../config';
import { isPlainVariableValue } from '../esl/safe';
import { formatFindingLine } from '../snapshot/findings';
import { showValue } from '../snapshot/rows';
import type { ConfigSnapshot } from '../snapshot/types';
import { checkPromptFiles, promptFilesInUse, replacedInCalls, seesPromptFiles } from './file-check';

/** Lines in config:lint's one finding format (formatFindingLine). */
export function menusWithoutPrompt(snapshot: Pick<ConfigSnapshot, 'menus' | 'prompts'>): string[] {
  const out: string[] = [];
  for (const menu of snapshot.menus.values()) {
    const where = { table: 'ivr_menus', id: menu.id, tenantId: menu.tenantId, column: 'prompt_id', value: showValue('prompt_id', menu.promptId) };
    if (menu.promptId === null) {
      out.push(formatFindingLine({ ...where, reason: `menu ${showValue('name', menu.name)} has no prompt`, outcome: 'callers hear the system prompt choose_option.wav, which does not say what the options are' }));
    } else if (!snapshot.prompts.has(menu.promptId)) {
      out.push(formatFindingLine({ ...where, reason: `prompt ${menu.promptId} is not in prompts`, outcome: 'callers hear the system prompt choose_option.wav' }));
    }
  }
  return out;
}

/**
 * With TTS_ENGINE=freeswitch a tts_text prompt is spoken by FreeSWITCH's `speak`, which only a
 * prompt played alone can use: where the caller keys digits (play_and_get_digits: a greeting in
 * front of a PIN, IVR or switchboard prompt, an IVR menu and its invalid-entry prompt) and as
 * ringback, FreeSWITCH needs a file, so callers hear the system prompt there. Listed per use.
 */
export function speakOnlyPrompts(settings: Pick<Settings, 'tts'>, snapshot: Pick<ConfigSnapshot, 'menus' | 'prompts' | 'tenants'>): string[] {
  if (settings.tts.engine !== 'freeswitch') return [];
  const out: string[] = [];
  const check = (table: string, id: number, tenantId: number | null, column: string, promptId: number | null, system: string): void => {
    const prompt = promptId === null ? undefined : snapshot.prompts.get(promptId);
    if (!prompt || prompt.file !== null || prompt.ttsText === null) return;
    out.push(formatFindingLine({
      table, id, tenantId, column, value: showValue(column, promptId),
      reason: `prompt ${promptId} is tts_text only, spoken by FreeSWITCH (TTS_ENGINE=freeswitch), which play_and_get_digits and ringback cannot use`,
      outcome: `callers hear the system prompt ${system}.wav there; give the prompt a file or use TTS_ENGINE=espeak`,
    }));
  };
  for (const tenant of snapshot.tenants.values()) {
    check('tenants', tenant.id, tenant.id, 'welcome_prompt_id', tenant.welcomePromptId, 'welcome');
    check('tenants', tenant.id, tenant.id, 'ringback_prompt_id', tenant.ringbackPromptId, 'ringback');
  }
  for (const menu of snapshot.menus.values()) {
    check('ivr_menus', menu.id, menu.tenantId, 'prompt_id', menu.promptId, 'choose_option');
    check('ivr_menus', menu.id, menu.tenantId, 'invalid_prompt_id', menu.invalidPromptId, 'invalid_entry');
  }
  return out;
}

/**
 * A company ringback goes into a channel variable (`multiset ringback=…`), which may not carry
 * every character a playable path may (an apostrophe: isPlainVariableValue); calls then set the
 * system ringback instead (src/calls/steps/hunt.ts ringbackFile). Listed so the file is renamed.
 */
export function unsettableRingbacks(snapshot: Pick<ConfigSnapshot, 'prompts' | 'tenants'>): string[] {
  const out: string[] = [];
  for (const tenant of snapshot.tenants.values()) {
    const id = tenant.ringbackPromptId;
    const file = id === null ? null : (snapshot.prompts.get(id)?.file ?? null);
    if (file === null || isPlainVariableValue(file)) continue;
    out.push(formatFindingLine({
      table: 'tenants', id: tenant.id, tenantId: tenant.id, column: 'ringback_prompt_id', value: showValue('ringback_prompt_id', id),
      reason: `prompt ${id}'s file ${JSON.stringify(file)} cannot be set as the ringback channel variable (one of $ { } | , ^ ' [ ] or a control character)`,
      outcome: 'callers hear the system ringback instead; rename the file',
    }));
  }
  return out;
}

export async function promptFindings(settings: Pick<Settings, 'prompts' | 'esl' | 'tts'>, snapshot: ConfigSnapshot): Promise<string[]> {
  const out = [...menusWithoutPrompt(snapshot), ...speakOnlyPrompts(settings, snapshot), ...unsettableRingbacks(snapshot)];
  if (!seesPromptFiles(settings)) return out;
  for (const p of await checkPromptFiles(promptFilesInUse(settings, snapshot))) {
    const instead = p.owner.table === 'system prompts' ? 'a tone' : 'the system prompt';
    const outcome = replacedInCalls(p.problem)
      ? `calls hear ${instead} instead`
      : `calls still play it (FreeSWITCH may see it otherwise); if FreeSWITCH cannot, ${instead} is played after it fails`;
    // The whole path, not showValue()'s 64 characters: the file name at its end is what must be fixed.
    out.push(formatFindingLine({ ...p.owner, column: 'file', value: JSON.stringify(p.path), reason: p.problem === 'unreadable' ? 'unreadable by this daemon' : p.problem, outcome }));
  }
  return out;
}
