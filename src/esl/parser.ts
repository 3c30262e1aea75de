/**
 * Frames and decodes the FreeSWITCH event-socket byte stream.
 *
 * Why not modesl's parser: it concatenates and rescans the whole buffer on every chunk
 * (quadratic on large events) and calls decodeURIComponent unguarded, so one malformed `%`
 * sequence (seen from an emoji in a User-Agent) throws inside a socket 'data' handler and takes
 * the process down. This parser is linear in the bytes received, never throws on a bad value
 * (it decodes leniently and counts it), and throws EslProtocolError only when the stream can no
 * longer be framed — the owner then drops that one connection.
 *
 * Bounded input: a frame whose header block or Content-Length exceeds `maxFrameBytes` is refused
 * as soon as its header is read (EslFrameTooLargeError, code ESL_FRAME_TOO_LARGE); its body is
 * never buffered. The bytes held never exceed the limit plus the chunk being read
 * (`peakBuffered`), so the work one chunk can cause is bounded too: a scan of the new chunk, and
 * at most one copy and parse of a frame within the limit. URL-decoding runs without exceptions
 * (a byte-wise decoder, no decodeURIComponent throw per bad value), linear in the value.
 *
 * Wire format (mod_event_socket.c, see test/fixtures): a message is a block of `Name: value`
 * lines ended by an empty line; `Content-Length: n` means n bytes of body follow. Events come as
 * `Content-Type: text/event-plain` whose body is itself a header block (URL-encoded values),
 * optionally followed by an empty line and an inner body of its own Content-Length.
 */
import { isUtf8 } from 'node:buffer';
import { EslFrameTooLargeError, EslProtocolError } from './errors';

/** A call's outbound socket: 1 MiB (ESL_MAX_FRAME_BYTES). Real events are 5-12 KB. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
/** Inbound clients (cron jobs, click-to-call) may get large `api` replies (show channels …). */
export const DEFAULT_INBOUND_MAX_FRAME_BYTES = 64 * 1024 * 1024;
const LF = 0x0a;
/**
 * The empty line that ends a header block, as bytes: Buffer.indexOf with a string needle encodes
 * it on every call (callgrind, a 5.3 KB event: 10,000 instructions a scan, 8,800 with this).
 */
export const BLANK_LINE = Buffer.from('\n\n');
/** A `%` not followed by two hex digits. */
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;
/** Exceptions from decodeURIComponent one stream may cause before it decodes without it. */
const NATIVE_FAILURE_BUDGET = 8;

export interface EslFrame {
  /** Outer headers, values URL-decoded where FreeSWITCH encoded them. */
  readonly headers: Record<string, string>;
  /** The body bytes when the frame had a Content-Length. */
  readonly body: Buffer | null;
}

export class EslFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Headers of a frame whose body is still arriving. */
  private pending: Record<string, string> | null = null;
  private bodyLength = 0;
  /** Values that were not valid %-encoding or UTF-8 and were decoded leniently. */
  malformedValues = 0;
  /** Set once the stream cannot be framed any more; later input is ignored. */
  broken: EslProtocolError | null = null;
  /** decodeURIComponent throws seen (invalid UTF-8); past the budget, urlDecode alone. */
  private nativeFailures = 0;
  /** Most bytes held at once (never above maxFrameBytes + the largest chunk). */
  peakBuffered = 0;
  /** Largest chunk pushed. */
  largestChunk = 0;

  constructor(readonly maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {}

  /**
   * Feeds one chunk from the socket; returns every frame it completed. When the stream breaks,
   * the frames completed before the break are still returned and `broken` says why.
   */
  push(chunk: Buffer): EslFrame[] {
    if (this.broken) return [];
    const frames: EslFrame[] = [];
    try {
      this.pushInto(chunk, frames);
    } catch (err) {
      if (!(err instanceof EslProtocolError)) throw err;
      this.broken = err;
      this.chunks = [];
      this.buffered = 0;
    }
    return frames;
  }

  private pushInto(chunk: Buffer, frames: EslFrame[]): void {
    if (chunk.length === 0) return;
    const previousLast = this.buffered > 0 ? this.lastByte() : -1;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (chunk.length > this.largestChunk) this.largestChunk = chunk.length;
    if (this.buffered > this.peakBuffered) this.peakBuffered = this.buffered;
    // Cheap early exit keeps this linear: only join the chunks once a frame can be complete.
    if (this.pending) {
      if (this.buffered < this.bodyLength) return;
    } else if (chunk.indexOf(BLANK_LINE) < 0 && !(previousLast === LF && chunk[0] === LF)) {
      // One byte over: a block of exactly the limit may be waiting for the second LF of its blank line.
      if (this.buffered > this.maxFrameBytes + 1) throw new EslFrameTooLargeError('header block', this.buffered, this.maxFrameBytes);
      return;
    }
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    let pos = 0;
    for (;;) {
      if (this.pending) {
        if (buf.length - pos < this.bodyLength) break;
        frames.push({ headers: this.pending, body: buf.subarray(pos, pos + this.bodyLength) });
        pos += this.bodyLength;
        this.pending = null;
        continue;
      }
      // Tolerate stray newlines between frames (a peer that ends a body with an extra LF).
      while (pos < buf.length && buf[pos] === LF) pos++;
      const end = buf.indexOf(BLANK_LINE, pos);
      if (end < 0) break;
      // Measured whole, however the reads cut it: a block that arrived complete in one read is
      // no smaller than one still waiting for its blank line (the check below and above).
      if (end - pos > this.maxFrameBytes) throw new EslFrameTooLargeError('header block', end - pos, this.maxFrameBytes);
      // A big block (the connect reply: the whole channel) is copied out and decoded on demand.
      const headers = end - pos >= LAZY_BLOCK_BYTES ? lazyRecord(new LazyHeaders(Buffer.from(buf.subarray(pos, end)), this)) : this.outerHeaders(buf.toString('utf8', pos, end));
      pos = end + 2;
      const length = headers['Content-Length'];
      if (length === undefined) {
        frames.push({ headers, body: null });
        continue;
      }
      if (!/^\d{1,20}$/.test(length)) throw new EslProtocolError(`unusable Content-Length ${JSON.stringify(length.slice(0, 40))}`);
      // Refused before a byte of the body is kept: the rest of the stream is not read.
      if (Number(length) > this.maxFrameBytes) throw new EslFrameTooLargeError('body', Number(length), this.maxFrameBytes);
      this.pending = headers;
      this.bodyLength = Number(length);
    }
    const rest = buf.subarray(pos);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    if (!this.pending && this.buffered > this.maxFrameBytes + 1) throw new EslFrameTooLargeError('header block', this.buffered, this.maxFrameBytes);
  }

  /**
   * A frame's own (outer) header block, frozen: from the cache when any stream sent the same
   * block lately. A call's frames repeat a few blocks (`Content-Length: n` and `Content-Type:
   * text/event-plain`, the `+OK …` replies), which were parsed into new strings and a new record
   * every frame (bench/PROFILE.md, release 41). Only a block that parsed cleanly is kept: a
   * malformed one is parsed, and counted, by every stream that sends it.
   */
  private outerHeaders(text: string): Record<string, string> {
    const cached = outerBlocks.get(text);
    if (cached !== undefined) return cached;
    const malformedBefore = this.malformedValues;
    const headers = Object.freeze(this.parseHeaderBlock(text));
    if (this.malformedValues === malformedBefore && text.length <= OUTER_BLOCK_CACHED_CHARS) {
      if (outerBlocks.size >= OUTER_BLOCKS_KEPT) outerBlocks.clear();
      outerBlocks.set(text, headers);
    }
    return headers;
  }

  /** Parses `Name: value` lines; a line without the separator is skipped and counted. */
  parseHeaderBlock(text: string): Record<string, string> {
    const headers: Record<string, string> = {};
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      let line = text.slice(start, end);
      start = end + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.length === 0) continue;
      const sep = line.indexOf(': ');
      if (sep <= 0) {
        // "Name:" with an empty value is legal; anything else is noise we refuse to guess at.
        if (line.endsWith(':') && line.length > 1) headers[line.slice(0, -1)] ??= '';
        else this.malformedValues++;
        continue;
      }
      const name = line.slice(0, sep);
      // FreeSWITCH writes a name once; should one repeat, the one LazyHeaders.get finds stands:
      // the first, or the last for a name searched from the end (searchedFromEnd).
      if (!(name in headers) || searchedFromEnd(name)) headers[name] = this.decode(line.slice(sep + 2));
    }
    return headers;
  }

  /**
   * URL-decodes a value; never throws, counts a malformed one. Well-formed values take the
   * native decodeURIComponent; a value with a bad escape, and every value of a stream that made
   * it throw a few times (invalid UTF-8), take the one-pass urlDecode: a stream of bad values
   * cannot make the process pay for an exception per value.
   */
  decode(value: string): string {
    if (!value.includes('%')) return value;
    if (this.nativeFailures < NATIVE_FAILURE_BUDGET && !BAD_ESCAPE.test(value)) {
      try {
        return decodeURIComponent(value);
      } catch {
        this.nativeFailures++;
      }
    }
    const { text, malformed } = urlDecode(value);
    if (malformed) this.malformedValues++;
    return text;
  }

  private lastByte(): number {
    const last = this.chunks[this.chunks.length - 1];
    return last[last.length - 1];
  }
}

/**
 * Decodes every valid %XX escape byte-wise and lets invalid UTF-8 become U+FFFD; a `%` that does
 * not start an escape stays as it is. This is what a careful reader of a mangled value can know.
 * One pass, no exceptions: a megabyte of bad escapes costs what a megabyte of good ones does.
 */
export function urlDecode(value: string): { text: string; malformed: boolean } {
  const out = Buffer.allocUnsafe(Buffer.byteLength(value, 'utf8'));
  let n = 0;
  let malformed = false;
  const length = value.length;
  for (let i = 0; i < length; i++) {
    const ch = value.charCodeAt(i);
    if (ch === 0x25) {
      const hi = i + 2 < length ? hexValue(value.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hexValue(value.charCodeAt(i + 2)) : -1;
      if (lo >= 0) {
        out[n++] = hi * 16 + lo;
        i += 2;
      } else {
        malformed = true;
        out[n++] = ch;
      }
    } else if (ch < 0x80) {
      out[n++] = ch;
    } else {
      // Raw non-ASCII text (FreeSWITCH encodes it, a peer might not): copy its UTF-8 bytes.
      // A surrogate pair is one character; a lone surrogate is one (it becomes U+FFFD) and must not
      // swallow the next character, which may start an escape.
      const next = i + 1 < length ? value.charCodeAt(i + 1) : 0;
      const wide = ch >= 0xd800 && ch <= 0xdbff && next >= 0xdc00 && next <= 0xdfff ? 2 : 1;
      n += out.write(value.slice(i, i + wide), n, 'utf8');
      i += wide - 1;
    }
  }
  const bytes = out.subarray(0, n);
  if (!malformed && !isUtf8(bytes)) malformed = true;
  return { text: bytes.toString('utf8'), malformed };
}

/** urlDecode's text alone. */
export function lenientDecode(value: string): string {
  return urlDecode(value).text;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

const CR = 0x0d;

/** The connect reply's trailer, after the whole channel, and an event's own body length, its last header. */
const TRAILER_NAMES: ReadonlySet<string> = new Set(['Content-Type', 'Content-Length', 'Reply-Text']);

/**
 * Whether a name is looked for from the end of its header block: the names FreeSWITCH writes
 * after the channel's fields. An event is its own headers (Event-Name … Event-Sequence), the
 * channel's (Channel-*, Caller-*, Other-Leg-*), the channel's variables (`variable_*`), then what
 * the event adds after them: `Application*` on CHANNEL_EXECUTE(_COMPLETE), an inner body's
 * Content-Length; the connect reply ends with Content-Type and Reply-Text after all of them
 * (test/fixtures/esl). Searched forward, the CHANNEL_EXECUTE_COMPLETE a call waits for four times
 * and its CHANNEL_HANGUP_COMPLETE took a scan of nearly the whole block (5-12 KB) a lookup, 60 %
 * of the bytes a call's lookups scanned (bench/PROFILE.md, release 15). FreeSWITCH writes a name
 * once; should a peer repeat one, the last of such a name stands, in a full parse as in a lookup.
 */
export function searchedFromEnd(name: string): boolean {
  return name.startsWith('variable_') || name.startsWith('Application') || TRAILER_NAMES.has(name);
}

/**
 * `<name>: ` as UTF-8 bytes, made once per header name: a Buffer needle saves Buffer.indexOf
 * encoding a string on every lookup. The names are the few dozen the code reads; a peer cannot
 * add to them, but the map is bounded all the same.
 */
const needles = new Map<string, Buffer>();
const NEEDLES_KEPT = 1024;

function needleOf(name: string): Buffer {
  let needle = needles.get(name);
  if (needle === undefined) {
    if (needles.size >= NEEDLES_KEPT) needles.clear();
    needle = Buffer.from(`${name}: `, 'utf8');
    needles.set(name, needle);
  }
  return needle;
}

/** The raw header block of a plain event, searched on demand. */
export class LazyHeaders {
  /**
   * Values already looked up. A call reads a few names of most events (Unique-ID, Event-Name,
   * Application-UUID …): they are kept in four fields, and a Map is made only for a fifth
   * (the hang-up's variables for the CDR). A Map an event was 2 % of a call's allocation.
   */
  private name0: string | null = null;
  private value0: string | undefined;
  private name1: string | null = null;
  private value1: string | undefined;
  private name2: string | null = null;
  private value2: string | undefined;
  private name3: string | null = null;
  private value3: string | undefined;
  private more: Map<string, string | undefined> | null = null;
  /** Of `block`, the header lines: bytes [0, length). An event's inner body may follow them. */
  private readonly length: number;

  constructor(
    private readonly block: Buffer,
    private readonly framer: EslFramer,
    length: number = block.length,
  ) {
    this.length = length;
  }

  /**
   * The value of the line `Name: value`, URL-decoded; FreeSWITCH writes a name once, and should
   * it repeat, the first line stands, or the last for a name FreeSWITCH writes near the end of
   * the block (searchedFromEnd), as in parseHeaderBlock. Lines end at LF; a CR before it is
   * dropped. The headers a call reads most (Event-Name, Unique-ID) are near the start.
   */
  get(name: string): string | undefined {
    if (name === this.name0) return this.value0;
    if (name === this.name1) return this.value1;
    if (name === this.name2) return this.value2;
    if (name === this.name3) return this.value3;
    if (this.more?.has(name)) return this.more.get(name);
    const value = this.find(name);
    this.keep(name, value);
    return value;
  }

  private find(name: string): string | undefined {
    const { block, length } = this;
    if (length === 0) return undefined;
    const needle = needleOf(name);
    // A `Name: ` that starts a line. Searched without the LF in front: with it every line start
    // is a candidate match, without it few are (a third fewer instructions a lookup). A needle
    // holds no LF, so a match that starts among the header lines ends among them.
    let at: number;
    if (searchedFromEnd(name)) {
      at = block.lastIndexOf(needle, length - 1);
      while (at > 0 && block[at - 1] !== LF) at = block.lastIndexOf(needle, at - 1);
    } else {
      at = block.indexOf(needle);
      while (at > 0 && at < length && block[at - 1] !== LF) at = block.indexOf(needle, at + 1);
      if (at >= length) at = -1;
    }
    if (at < 0) return undefined;
    const start = at + needle.length;
    let end = block.indexOf(LF, start);
    if (end < 0 || end > length) end = length;
    if (end > start && block[end - 1] === CR) end--;
    return this.framer.decode(block.toString('utf8', start, end));
  }

  private keep(name: string, value: string | undefined): void {
    if (this.name0 === null) {
      this.name0 = name;
      this.value0 = value;
    } else if (this.name1 === null) {
      this.name1 = name;
      this.value1 = value;
    } else if (this.name2 === null) {
      this.name2 = name;
      this.value2 = value;
    } else if (this.name3 === null) {
      this.name3 = name;
      this.value3 = value;
    } else {
      (this.more ??= new Map()).set(name, value);
    }
  }

  all(): Record<string, string> {
    return this.framer.parseHeaderBlock(this.block.toString('utf8', 0, this.length));
  }
}

/**
 * A header block as a read-only record whose values are found and decoded on first read (a
 * Proxy over LazyHeaders): for the big outer blocks, the connect reply's ~150 channel headers,
 * of which a call reads a few. Listing its keys (spread, JSON) parses the whole block once.
 */
export function lazyRecord(headers: LazyHeaders): Record<string, string> {
  // `then` (the record returned from an async function or awaited: Promise resolution asks for
  // it), `toJSON` and the like are no FreeSWITCH header: answered without scanning the block.
  let all: Record<string, string> | null = null;
  const full = (): Record<string, string> => (all ??= headers.all());
  return new Proxy<Record<string, string>>({}, {
    get: (_target, name) => (isHeaderName(name) ? headers.get(name) : undefined),
    has: (_target, name) => isHeaderName(name) && headers.get(name) !== undefined,
    ownKeys: () => Object.keys(full()),
    getOwnPropertyDescriptor: (_target, name) => {
      const value = typeof name === 'string' ? full()[name] : undefined;
      return value === undefined ? undefined : { value, enumerable: true, configurable: true, writable: false };
    },
    set: () => false,
    deleteProperty: () => false,
  });
}

/**
 * Names JavaScript itself asks a record for (Promise resolution, JSON, inspection), never a
 * FreeSWITCH header: answered without a scan. Any other name is searched (FreeSWITCH also sends
 * lower-case ones, scope_variable_…).
 */
const NOT_HEADERS = new Set(['then', 'toJSON', 'constructor', 'inspect', 'valueOf', 'toString', 'asymmetricMatch', '$$typeof', 'nodeType']);

function isHeaderName(name: string | symbol): name is string {
  return typeof name === 'string' && !NOT_HEADERS.has(name);
}

/** Outer header blocks at least this long are read lazily (the connect reply); event frames' are two lines. */
const LAZY_BLOCK_BYTES = 1024;

/**
 * Outer header blocks parsed lately, by their text (EslFramer.outerHeaders), for every stream
 * of the process. Bounded: at most OUTER_BLOCKS_KEPT blocks of at most OUTER_BLOCK_CACHED_CHARS
 * (about 128 KB), emptied when full, so a peer sending a new block every frame costs a lookup
 * and no more memory.
 */
const outerBlocks = new Map<string, Readonly<Record<string, string>>>();
const OUTER_BLOCKS_KEPT = 512;
const OUTER_BLOCK_CACHED_CHARS = 256;
