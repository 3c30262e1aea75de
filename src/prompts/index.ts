/** Prompts and TTS: what a prompt plays as, the TTS cache, the renderer, the system prompt texts. */
export { PromptResolver, type PlayInstruction } from './resolver';
export { TtsRenderer, type TtsCacheIndex, type TtsRendererOptions, type PrepareReport, type PrepareFailure } from './tts-renderer';
export { checkVoice, renderWav, TtsError, type RenderOptions, type SpawnFn, type TtsErrorCode } from './render';
export { ttsCacheKey, normalizeTtsText, sanitizeSpeakText, SPEAK_MAX_CHARS } from './text';
export { SYSTEM_PROMPT_TEXTS } from './system-texts';
export { renderSystemPrompts, type SystemPromptsReport } from './system-prompts';
export { readWavInfo, telephonyFormatProblem, type WavInfo } from './wav';
