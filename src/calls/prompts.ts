/** The system prompt names, for the call side (they live in src/prompts/names.ts). */
export { SYSTEM_PROMPTS, type SystemPromptName } from '../prompts/names';
