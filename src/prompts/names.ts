/**
 * System prompts: the announcements every tenant shares. File names are a contract with the
 * FreeSWITCH side (freeswitch/sounds/hotline/README.md lists them). Here, in the lower folder, so
 * src/prompts (texts, renderer, resolver, file check) needs nothing from src/calls.
 */

export const SYSTEM_PROMPTS = [
  'not_in_service', 'service_unavailable', 'nobody_answered', 'all_busy', 'blocked', 'capped',
  'enter_pin', 'wrong_pin', 'pin_failed', 'welcome', 'after_hours', 'leave_message', 'suspended',
  'ringback', 'invalid_entry', 'enter_extension', 'goodbye', 'choose_option',
] as const;

export type SystemPromptName = (typeof SYSTEM_PROMPTS)[number];
