/**
 * One message from FreeSWITCH.
 *
 * Event headers are read lazily: a `text/event-plain` event keeps its raw header block (the ~150
 * URL-encoded `Name: value` lines of the whole channel, 5-12 KB) and `getHeader()` finds and
 * decodes only the header asked for (a call reads about a dozen, of 9 events). Decoding every
 * header of every event was the daemon's top CPU frame (bench/PROFILE.md). `headers` still gives
 * the whole object, parsed once on first use (tests, the connect reply).
 *
 * It implements the part of modesl's Event interface that modesl's Connection uses to route
 * messages (getHeader/getBody/getType), for the inbound clients still built on modesl.
 */
import { BLANK_LINE, LazyHeaders, type EslFrame, type EslFramer } from './parser';

export class EslEvent {
  private parsed: Record<string, string> | null;
  private readonly lazy: LazyHeaders | null;

  constructor(
    /** Outer headers of the frame (Content-Type, Reply-Text, Content-Disposition …). */
    readonly outer: Record<string, string>,
    /** Event headers: a plain event's raw block (lazy), or the parsed headers. */
    source: Record<string, string> | LazyHeaders,
    readonly body: string,
  ) {
    if (source instanceof LazyHeaders) {
      this.lazy = source;
      this.parsed = null;
    } else {
      this.lazy = null;
      this.parsed = source;
    }
  }

  /** Every event header, parsed (and kept) on first use; prefer getHeader() on hot paths. */
  get headers(): Record<string, string> {
    this.parsed ??= this.lazy?.all() ?? {};
    return this.parsed;
  }

  get contentType(): string {
    return this.outer['Content-Type'] ?? '';
  }

  get name(): string {
    return this.getHeader('Event-Name') ?? '';
  }

  getHeader(name: string): string | undefined {
    if (this.parsed) return this.parsed[name];
    return this.lazy?.get(name);
  }

  getBody(): string {
    return this.body;
  }

  getType(): string {
    return this.name;
  }

  /** A channel variable (`variable_<name>`), or undefined. */
  variable(name: string): string | undefined {
    return this.getHeader(`variable_${name}`);
  }
}

/** The body of a frame without one. */
const NO_BODY = Buffer.alloc(0);

/**
 * Turns a frame into an event. Malformed JSON or plain bodies do not throw: the event keeps the
 * outer headers and the raw body, and `malformed` tells the caller to count it.
 */
export function frameToEvent(frame: EslFrame, framer: EslFramer): { event: EslEvent; malformed: boolean } {
  const type = frame.headers['Content-Type'];
  const raw = frame.body ?? NO_BODY;
  if (type === 'text/event-plain') {
    const end = raw.indexOf(BLANK_LINE);
    const headers = new LazyHeaders(raw, framer, end < 0 ? raw.length : end);
    let body = '';
    if (end >= 0 && end + 2 < raw.length) {
      const inner = headers.get('Content-Length');
      if (inner !== undefined && /^\d+$/.test(inner)) body = raw.toString('utf8', end + 2, end + 2 + Number(inner));
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
