/**
 * click_to_call_widgets rows → validated widgets, keyed by public key (pure, like build.ts, and
 * through the same Ledger: a widget edited into a bad state keeps its last good version, a new bad
 * one is skipped, each with one finding; a widget whose tenant or access number is not in force is
 * counted in that row's finding). Disabled widgets are kept so the API can say "disabled" rather
 * than "unknown". A widget must point at an access number and prompts of its own tenant.
 */
import { nationalNumber } from '../domain/access-number';
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
export function widgetById(snapshot: Pick<ConfigSnapshot, 'widgetsById'>, id: number): ClickToCallWidget | undefined {
  return snapshot.widgetsById.get(id);
}

/**
 * The same widgets by id, for the visitor legs (widgetById): a lookup a click-to-call call, not a
 * scan of every tenant's widgets.
 */
export function widgetsById(widgets: ReadonlyMap<string, ClickToCallWidget>): Map<number, ClickToCallWidget> {
  return new Map([...widgets.values()].map((w) => [w.id, w]));
}

export function* buildWidgets(
  ledger: Ledger,
  ctx: {
    tenantOwner: (tenantId: number) => Problem | null;
    accessNumbers: ReadonlyMap<string, AccessNumber>;
    prompts: ReadonlyMap<number, Prompt>;
  },
): Generator<void, Map<string, ClickToCallWidget>, undefined> {
  const numbersById = new Map([...ctx.accessNumbers.values()].map((a) => [a.id, a]));
  const out = new Map<string, ClickToCallWidget>();
  const check = (w: ReadWidget): Problem | null => {
    const number = numbersById.get(w.accessNumberId);
    const prompt = w.answerPromptId === null ? undefined : ctx.prompts.get(w.answerPromptId);
    const holder = out.get(w.publicKey);
    const callerIdOwner = w.callerIdNumber === null ? undefined : otherTenantsNumber(ctx.accessNumbers, w.callerIdNumber, w.tenantId);
    return ctx.tenantOwner(w.tenantId)
      ?? ledger.ref('access_number_id', 'access_numbers', w.accessNumberId, number?.tenantId === w.tenantId, `access_number_id ${w.accessNumberId} is not a number of tenant ${w.tenantId}`)
      ?? ledger.ref('answer_prompt_id', 'prompts', w.answerPromptId, w.answerPromptId === null || (prompt !== undefined && (prompt.tenantId === null || prompt.tenantId === w.tenantId)),
        `answer_prompt_id ${w.answerPromptId} is not a prompt of tenant ${w.tenantId} or a system prompt`)
      ?? (holder ? { kind: 'value', column: 'public_key', value: w.publicKey, reason: `public_key ${w.publicKey} is used twice (widget ${holder.id} has it)` } : null)
      // The visitor's phone would show another company's 400 number: calls back reach that company.
      ?? (callerIdOwner ? { kind: 'value', column: 'caller_id_number', value: w.callerIdNumber, reason: `caller_id_number ${w.callerIdNumber} is access number ${callerIdOwner.number} of tenant ${callerIdOwner.tenantId}, not of tenant ${w.tenantId}` } : null);
  };
  yield* ledger.table('click_to_call_widgets', readWidget, check, ({ junkOrigins, originsText, ...w }) => {
    out.set(w.publicKey, { ...w, accessNumber: numbersById.get(w.accessNumberId)!.number });
    if (junkOrigins.length > 0) {
      ledger.linkIgnored('click_to_call_widgets', w.id, 'allowed_origins', originsText,
        `allowed_origins: ${junkList(junkOrigins)} ${junkOrigins.length === 1 ? 'is not an origin' : 'are not origins'} like https://www.example.com and ${junkOrigins.length === 1 ? 'is' : 'are'} dropped; the widget allows ${w.allowedOrigins.join(', ')}`);
    }
  }, { key: (w) => w.publicKey, columns: ['public_key'] });
  return out;
}

/** The access number in force that a caller id spells (any spelling), when it is another tenant's. */
function otherTenantsNumber(accessNumbers: ReadonlyMap<string, AccessNumber>, callerId: string, tenantId: number): AccessNumber | undefined {
  // snapshot.accessNumbers is keyed by the national number (access-number.ts), whatever the spelling.
  const key = nationalNumber(callerId);
  const a = key === null ? undefined : accessNumbers.get(key);
  return a && a.tenantId !== tenantId ? a : undefined;
}

/** A widget as read from its row, with the allowed_origins entries dropped as junk. */
type ReadWidget = Omit<ClickToCallWidget, 'accessNumber'> & { readonly junkOrigins: readonly string[]; readonly originsText: string | null };

function readWidget(r: RowReader): ReadWidget {
  const perVisitorMinute = r.intOrNull('max_per_visitor_minute', { min: 0, max: 1000 }) ?? 1;
  const perVisitorDay = r.intOrNull('max_per_visitor_day', { min: 0, max: 100_000 }) ?? 5;
  const originsText = r.textOrNull('allowed_origins', { max: 2000 });
  const origins = parseOrigins(originsText);
  return {
    id: r.id,
    tenantId: r.int('tenant_id', { min: 1 }),
    accessNumberId: r.int('access_number_id', { min: 1 }),
    publicKey: r.text('public_key', { pattern: PUBLIC_KEY, what: '8 to 64 of A-Z a-z 0-9 _ -' }),
    allowedOrigins: origins.origins,
    junkOrigins: origins.junk,
    originsText,
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

/** allowed_origins as read: the origins in force, and the entries dropped as not origins. */
export interface ParsedOrigins {
  readonly origins: string[];
  readonly junk: string[];
}

/**
 * "https://www.example.com, https://m.example.com" → normalised origins. An origin is what a
 * browser sends in its Origin header: scheme, host and a port other than the default, no path.
 * A hand-edited list with some junk keeps its good entries (the junk is reported); a list with
 * entries but no good one is refused as a whole — read as "any origin" it would open the widget
 * to every web site, the opposite of what the DBA meant.
 */
export function parseOrigins(text: string | null): ParsedOrigins {
  const out: ParsedOrigins = { origins: [], junk: [] };
  if (text === null) return out;
  for (const token of text.split(/[,，\s]+/).filter((t) => t !== '')) {
    const origin = normalizeOrigin(token);
    if (origin === null) out.junk.push(token);
    else if (!out.origins.includes(origin)) out.origins.push(origin);
  }
  if (out.origins.length === 0 && out.junk.length > 0) {
    throw new RowError(`allowed_origins: ${junkList(out.junk)} ${out.junk.length === 1 ? 'is not an origin' : 'are not origins'} like https://www.example.com (scheme and host, no path), and no entry is: the widget would allow every web site`, 'allowed_origins', text);
  }
  return out;
}

function junkList(junk: readonly string[]): string {
  const shown = junk.slice(0, 3).map((j) => JSON.stringify(j.slice(0, 40))).join(', ');
  return junk.length > 3 ? `${shown} and ${junk.length - 3} more` : shown;
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
