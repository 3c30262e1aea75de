/**
 * Multi-level IVR menus (语音导航). A menu's prompt (its prompt_id, else choose_option.wav) is
 * played by play_and_get_digits, joined after the greeting on the first menu of a call and after
 * the invalid-entry prompt on a retry, so keys typed over any of them count (M3, M4 in
 * test/peer/channel-model.ts). Up to `digits` keys (`#` or the timeout ends them) pick an option;
 * unknown keys or silence retry, up to max_retries. The option's action goes back to the
 * dispatcher (plan.ts toAction). A caller can never be trapped: a call makes at most
 * MAX_MENU_STEPS menu visits. The keys that chose something make the CDR's ivr_path (1>3>801).
 */
import { MAX_MENU_STEPS, type Call } from '../call';
import { toAction, type CallAction } from '../plan';
import { tenantPrompt, type PromptRef } from '../prompt-player';
import { menuKeysPattern, TERMINATOR } from '../../domain/keypad';

/** Time to key the second and later digits of a multi-digit choice. */
export const MENU_DIGIT_TIMEOUT_MS = 3000;

export async function runMenu(call: Call, menuId: number): Promise<CallAction | null> {
  if (++call.menuSteps > MAX_MENU_STEPS) {
    call.log.warn({ menu_id: menuId }, 'IVR step limit reached');
    return { kind: 'goodbye' };
  }
  const menu = call.snapshot.menus.get(menuId);
  if (!menu || menu.tenantId !== call.tenant.id) return { kind: 'unavailable', reason: `IVR menu ${menuId} is missing` };
  const prompt = tenantPrompt(menu.promptId, 'choose_option');
  const invalid = tenantPrompt(menu.invalidPromptId, 'invalid_entry');
  // Answer and ask in one burst (no gap in which FreeSWITCH's park would drop keys: M2).
  const answered = call.answer();
  let prompts: PromptRef[] = [...call.takeGreeting(), prompt];
  for (let attempt = 0; attempt <= menu.maxRetries; attempt++) {
    const [keys] = await Promise.all([
      call.prompts.collect(prompts, {
        min: 1,
        max: menu.digits,
        tries: 1,
        timeoutMs: menu.timeoutS * 1000,
        terminators: TERMINATOR,
        invalidFile: 'silence_stream://250',
        variable: 'hotline_ivr',
        regexp: menuKeysPattern(menu.digits),
        digitTimeoutMs: MENU_DIGIT_TIMEOUT_MS,
      }),
      answered,
    ]);
    const option = keys === '' ? undefined : menu.options.get(keys);
    if (option) {
      call.facts.ivrPath.push(keys);
      return toAction(option.action, option.targetId, { kind: 'option', menuId: menu.id });
    }
    if (call.channel.hungUp) return null;
    call.log.info({ menu_id: menu.id, keys }, keys === '' ? 'no choice keyed' : 'no such option');
    prompts = [invalid, prompt];
  }
  return { kind: 'goodbye' };
}
