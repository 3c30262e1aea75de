/**
 * The switchboard (总机): "dial the extension followed by #, 0 for the operator". The prompt is
 * played by play_and_get_digits, after the greeting on the first try and after "invalid entry" on
 * the next ones, so an extension typed over either counts (the capture
 * daemon-switchboard-extension-typed-during-invalid-prompt lost `802#` to `playback`).
 * Extensions of any length end with # or the inter-digit timeout; an unknown one is re-prompted
 * a few times. An extension's phones ring in order with the tenant's ring time; nobody answering
 * goes to the member's voicemail (or the announcement).
 */
import type { Call } from '../call';
import type { CallAction } from '../plan';
import { systemPrompt, type PromptRef } from '../prompt-player';
import { dialBatch, finishHunt, type HuntResult } from './hunt';
import { EXTENSION_PATTERN, MAX_KEYS, switchboardChoice, TERMINATOR } from '../../domain/keypad';
import { tenantExtension } from '../../snapshot/build';

export const SWITCHBOARD_TRIES = 3;
export const EXTENSION_TIMEOUT_MS = 8000;
export const EXTENSION_DIGIT_TIMEOUT_MS = 3000;

export async function switchboard(call: Call): Promise<CallAction | null> {
  const answered = call.answer();
  let prompts: PromptRef[] = [...call.takeGreeting(), systemPrompt('enter_extension')];
  for (let attempt = 1; attempt <= SWITCHBOARD_TRIES; attempt++) {
    const [digits] = await Promise.all([
      call.prompts.collect(prompts, {
        min: 1,
        max: MAX_KEYS,
        tries: 1,
        timeoutMs: EXTENSION_TIMEOUT_MS,
        terminators: TERMINATOR,
        invalidFile: 'silence_stream://250',
        variable: 'hotline_extension',
        regexp: EXTENSION_PATTERN,
        digitTimeoutMs: EXTENSION_DIGIT_TIMEOUT_MS,
      }),
      answered,
    ]);
    if (digits !== '') {
      call.facts.ivrPath.push(digits);
      const choice = switchboardChoice(digits);
      if (choice.kind === 'operator') return { kind: 'operator' };
      const extension = call.snapshot.extensionsByTenant.get(call.tenant.id)?.get(choice.ext);
      if (extension) return { kind: 'extension', extensionId: extension.id };
      call.log.info({ ext: digits }, 'unknown extension');
    } else if (call.channel.hungUp) {
      return null;
    }
    prompts = [systemPrompt('invalid_entry'), systemPrompt('enter_extension')];
  }
  return { kind: 'goodbye' };
}

/** Rings an extension's phones in order; nobody answering: the member's box, if it has one. */
export async function ringExtension(call: Call, extensionId: number): Promise<CallAction | null> {
  const extension = tenantExtension(call.snapshot.extensionsById, call.tenant.id, extensionId);
  if (!extension) return { kind: 'unavailable', reason: `extension ${extensionId} is missing` };
  let result: HuntResult = 'no_answer';
  let allBusy = extension.phones.length > 0;
  for (const phone of extension.phones) {
    const leg = await dialBatch(call, [phone], call.tenant.ringTimeoutS, null);
    if (leg === 'answered') {
      result = 'answered';
      break;
    }
    if (leg === 'cancelled' || call.channel.hungUp) {
      result = 'gone';
      break;
    }
    if (leg !== 'busy') allBusy = false;
  }
  if (result === 'no_answer' && allBusy) result = 'busy';
  return finishHunt(call, result, extension.voicemailEnabled ? extension.id : undefined);
}

/** "0 for the operator": the tenant's operator group, or an apology when there is none. */
export function operator(call: Call): CallAction {
  const groupId = call.tenant.operatorGroupId;
  return groupId === null ? { kind: 'announce', prompt: systemPrompt('service_unavailable') } : { kind: 'hunt', groupId };
}
