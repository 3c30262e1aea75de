/** The system prompt names, for the call side (they live in src/prompts/names.ts). */
import type { Settings } from '../config';
import { systemPromptPath } from '../prompts/names';

export { SYSTEM_PROMPTS, type SystemPromptName } from '../prompts/names';

export function systemPrompt(settings: Settings, name: string): string {
  return systemPromptPath(settings, name);
}
