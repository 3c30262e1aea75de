/**
 * click_to_call_widgets rows → validated widgets, keyed by public key (pure, like build.ts, and
 * through the same Ledger: a widget edited into a bad state keeps its last good version, a new bad
 * one is skipped, each with one finding; a widget whose tenant or access number is not in force is
 * counted in that row's finding). Disabled widgets are kept so the API can say "disabled" rather
 * than "unknown". A widget must point at an access number and prompts of its own tenant.
 */
import type { Ledger, Problem } from './ledger';
import { RowError, type RowReader } from './rows';
import type { AccessNumber, ConfigSnapshot, Prompt } from './types';

export interface ClickToCallWidget {
  readonly id: number;
  readonly tenantId: number;
  readonly accessNumberId: number;
  /** The access number's digits: the call counts as a call to it. */
  readonly accessNumber: string;
  readonly publicKey: string;
  /** Normalised origins (scheme://host[:port], lower case); empty = any origin. */
  readonly allowedOrigins: readonly string[];
  readonly enabled: boolean;
  readonly maxPerVisitorMinute: number;
  readonly maxPerVisitorDay: number;
  readonly maxPerWidgetMinute: number | null;
  readonly maxPerWidgetDay: number | null;
  readonly answerPromptId: number | null;
  /** What the visitor's phone shows; null = the access number. */
  readonly callerIdNumber: string | null;
  readonly allowInternational: boolean;
}

export const PUBLIC_KEY = /^[A-Za-z0-9_-]{8,64}$/;

/** A widget by its id (the API finds widgets by key; a visitor leg names its widget's id). */
export function widgetById(snapshot: Pick<ConfigSnapshot, 'widgets'>, id: number): ClickToCallWidget | undefined {
  for (const w of snapshot.widgets.values()) if (w.id === id) return w;
  return undefined;
}

export function buildWidgets(
  ledger: Ledger,
  ctx: {
    tenantOwner: (tenantId: number) => Problem | null;
    accessNumbers: ReadonlyMap<string, AccessNumber>;
    prompts: ReadonlyMap<number, Prompt>;
  },
): Map<string, ClickToCallWidget> {
  const numbersById = new Map([...ctx.accessNumbers.values()].map((a) => [a.id, a]));
  const out = new Map<string, ClickToCallWidget>();
  const check = (w: Omit<ClickToCallWidget, 'accessNumber'>): Problem | null => {
    const number = numbersById.get(w.accessNumberId);
    const prompt = w.answerPromptId === null ? undefined : ctx.prompts.get(w.answerPromptId);
    const holder = out.get(w.publicKey);
    return ctx.tenantOwner(w.tenantId)
      ?? ledger.ref('access_number_id', 'access_numbers', w.accessNumberId, number?.tenantId === w.tenantId, `access_number_id ${w.accessNumberId} is not a number of tenant ${w.tenantId}`)
      ?? ledger.ref('answer_prompt_id', 'prompts', w.answerPromptId, w.answerPromptId === null || (prompt !== undefined && (prompt.tenantId === null || prompt.tenantId === w.tenantId)),
        `answer_prompt_id ${w.answerPromptId} is not a prompt of tenant ${w.tenantId} or a system prompt`)
      ?? (holder ? { kind: 'value', column: 'public_key', value: w.publicKey, reason: `public_key ${w.publicKey} is used twice (widget ${holder.id} has it)` } : null);
  };
  ledger.table('click_to_call_widgets', readWidget, check, (w) => {
    out.set(w.publicKey, { ...w, accessNumber: numbersById.get(w.accessNumberId)!.number });
  });
  return out;
}

function readWidget(r: RowReader): Omit<ClickToCallWidget, 'accessNumber'> {
  const perVisitorMinute = r.intOrNull('max_per_visitor_minute', { min: 0, max: 1000 }) ?? 1;
  const perVisitorDay = r.intOrNull('max_per_visitor_day', { min: 0, max: 100_000 }) ?? 5;
  return {
    id: r.id,
    tenantId: r.int('tenant_id', { min: 1 }),
    accessNumberId: r.int('access_number_id', { min: 1 }),
    publicKey: r.text('public_key', { pattern: PUBLIC_KEY, what: '8 to 64 of A-Z a-z 0-9 _ -' }),
    allowedOrigins: parseOrigins(r.textOrNull('allowed_origins', { max: 2000 })),
    enabled: r.flag('enabled', true),
    maxPerVisitorMinute: perVisitorMinute,
    maxPerVisitorDay: perVisitorDay,
    maxPerWidgetMinute: r.intOrNull('max_per_widget_minute', { min: 0, max: 1_000_000 }),
    maxPerWidgetDay: r.intOrNull('max_per_widget_day', { min: 0, max: 100_000_000 }),
    answerPromptId: r.intOrNull('answer_prompt_id', { min: 1 }),
    // Goes into the originate dial string as origination_caller_id_number: digits only.
    callerIdNumber: r.textOrNull('caller_id_number', { pattern: /^\+?[0-9]{3,32}$/, what: 'a number of digits (optional leading +)' }),
    allowInternational: r.flag('allow_international', false),
  };
}

/**
 * "https://www.example.com, https://m.example.com" → normalised origins. An origin is what a
 * browser sends in its Origin header: scheme, host and a port other than the default, no path.
 */
export function parseOrigins(text: string | null): string[] {
  if (text === null) return [];
  const out: string[] = [];
  for (const token of text.split(/[,，\s]+/).filter((t) => t !== '')) {
    const origin = normalizeOrigin(token);
    if (origin === null) throw new RowError(`allowed_origins: ${JSON.stringify(token)} is not an origin like https://www.example.com (scheme and host, no path)`, 'allowed_origins', text);
    out.push(origin);
  }
  return out;
}

/** The normalised form of an Origin header value, or null when it is not an http(s) origin. */
export function normalizeOrigin(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) return null;
  if (url.pathname !== '/' || url.search || url.hash || value.includes('?') || value.includes('#')) return null;
  return url.origin.toLowerCase();
}
