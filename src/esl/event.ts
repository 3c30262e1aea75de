/**
 * One message from FreeSWITCH, with its event headers flattened into a plain object.
 *
 * It implements the part of modesl's Event interface that modesl's Connection uses to route
 * messages (getHeader/getBody/getType), so modesl's own dispatch works on it, while lookups stay
 * O(1) (modesl's Event scans an array of ~150 headers on every getHeader).
 */
import type { EslFrame, EslFramer } from './parser';

export class EslEvent {
  constructor(
    /** Outer headers of the frame (Content-Type, Reply-Text, Content-Disposition …). */
    readonly outer: Record<string, string>,
    /** Event headers: for events the decoded inner headers, otherwise the outer headers. */
    readonly headers: Record<string, string>,
    readonly body: string,
  ) {}

  get contentType(): string {
    return this.outer['Content-Type'] ?? '';
  }

  get name(): string {
    return this.headers['Event-Name'] ?? '';
  }

  getHeader(name: string): string | undefined {
    return this.headers[name];
  }

  getBody(): string {
    return this.body;
  }

  getType(): string {
    return this.name;
  }

  /** A channel variable (`variable_<name>`), or undefined. */
  variable(name: string): string | undefined {
    return this.headers[`variable_${name}`];
  }
}

/**
 * Turns a frame into an event. Malformed JSON or plain bodies do not throw: the event keeps the
 * outer headers and the raw body, and `malformed` tells the caller to count it.
 */
export function frameToEvent(frame: EslFrame, framer: EslFramer): { event: EslEvent; malformed: boolean } {
  const type = frame.headers['Content-Type'];
  const raw = frame.body ?? Buffer.alloc(0);
  if (type === 'text/event-plain') {
    const end = raw.indexOf('\n\n');
    const headers = framer.parseHeaderBlock(raw.toString('utf8', 0, end < 0 ? raw.length : end));
    let body = '';
    const inner = headers['Content-Length'];
    if (end >= 0 && inner !== undefined && /^\d+$/.test(inner)) {
      body = raw.toString('utf8', end + 2, end + 2 + Number(inner));
    }
    return { event: new EslEvent(frame.headers, headers, body), malformed: false };
  }
  if (type === 'text/event-json') {
    try {
      const parsed = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      const headers: Record<string, string> = {};
      let body = '';
      for (const [key, value] of Object.entries(parsed)) {
        if (key === '_body') body = String(value);
        // JSON events carry multi-valued variables as arrays; plain events spell the same value
        // "ARRAY::a|:b" (switch_event.c). Normalise to the plain spelling so callers see one form.
        else if (Array.isArray(value)) headers[key] = `ARRAY::${value.map(String).join('|:')}`;
        else headers[key] = String(value);
      }
      return { event: new EslEvent(frame.headers, headers, body), malformed: false };
    } catch {
      return { event: new EslEvent(frame.headers, frame.headers, raw.toString('utf8')), malformed: true };
    }
  }
  // command/reply (the connect reply carries the whole channel as its headers), api/response,
  // text/disconnect-notice, auth/request …
  return { event: new EslEvent(frame.headers, frame.headers, raw.toString('utf8')), malformed: false };
}
