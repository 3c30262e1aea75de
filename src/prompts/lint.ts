/**
 * What `npm run config:lint` says about prompts: IVR menus without a prompt of their own (callers
 * hear the system prompt choose_option.wav, which cannot name this tenant's options), and — when
 * the daemon sees FreeSWITCH's files (PROMPTS_SAME_FILESYSTEM) — every prompt file that is
 * missing or unreadable (calls would get a system prompt or a tone instead).
 */
import type { Settings } from '../config';
import type { ConfigSnapshot } from '../snapshot/types';
import { checkPromptFiles, promptFilesInUse, seesPromptFiles } from './file-check';

export function menusWithoutPrompt(snapshot: Pick<ConfigSnapshot, 'menus' | 'prompts'>): string[] {
  const out: string[] = [];
  for (const menu of snapshot.menus.values()) {
    if (menu.promptId === null) {
      out.push(`ivr_menus id=${menu.id} (tenant ${menu.tenantId}, "${menu.name}"): no prompt_id; callers hear the system prompt choose_option.wav, which does not say what the options are`);
    } else if (!snapshot.prompts.has(menu.promptId)) {
      out.push(`ivr_menus id=${menu.id} (tenant ${menu.tenantId}, "${menu.name}"): prompt_id ${menu.promptId} is not in prompts; callers hear choose_option.wav`);
    }
  }
  return out;
}

export async function promptFindings(settings: Pick<Settings, 'prompts' | 'esl'>, snapshot: ConfigSnapshot): Promise<string[]> {
  const out = menusWithoutPrompt(snapshot);
  if (!seesPromptFiles(settings)) return out;
  for (const p of await checkPromptFiles(promptFilesInUse(settings, snapshot))) {
    const instead = p.usedBy.startsWith('system prompt') ? 'a tone' : 'the system prompt';
    out.push(`prompt file ${p.path} (${p.usedBy}): ${p.problem}; calls hear ${instead} instead`);
  }
  return out;
}
