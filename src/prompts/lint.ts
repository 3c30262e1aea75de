/**
 * What `npm run config:lint` says about prompts: IVR menus without a prompt of their own (callers
 * hear the system prompt choose_option.wav, which cannot name this tenant's options), and — when
 * the daemon sees FreeSWITCH's files (PROMPTS_SAME_FILESYSTEM) — every prompt file that is
 * missing or unreadable (calls would get a system prompt or a tone instead).
 */
import type { Settings } from '../config';
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

export async function promptFindings(settings: Pick<Settings, 'prompts' | 'esl'>, snapshot: ConfigSnapshot): Promise<string[]> {
  const out = menusWithoutPrompt(snapshot);
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
