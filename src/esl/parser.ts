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
 * Wire format (mod_event_socket.c, see test/fixtures): a message is a block of `Name: value`
 * lines ended by an empty line; `Content-Length: n` means n bytes of body follow. Events come as
 * `Content-Type: text/event-plain` whose body is itself a header block (URL-encoded values),
 * optionally followed by an empty line and an inner body of its own Content-Length.
 */
import { EslProtocolError } from './errors';

/** Largest header block or body we accept before declaring the stream broken. */
const MAX_HEADER_BYTES = 1024 * 1024;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const LF = 0x0a;

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
    // Cheap early exit keeps this linear: only join the chunks once a frame can be complete.
    if (this.pending) {
      if (this.buffered < this.bodyLength) return;
    } else if (chunk.indexOf('\n\n') < 0 && !(previousLast === LF && chunk[0] === LF)) {
      if (this.buffered > MAX_HEADER_BYTES) {
        throw new EslProtocolError(`header block longer than ${MAX_HEADER_BYTES} bytes`);
      }
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
      const end = buf.indexOf('\n\n', pos);
      if (end < 0) break;
      const headers = this.parseHeaderBlock(buf.toString('utf8', pos, end));
      pos = end + 2;
      const length = headers['Content-Length'];
      if (length === undefined) {
        frames.push({ headers, body: null });
        continue;
      }
      if (!/^\d{1,10}$/.test(length) || Number(length) > MAX_BODY_BYTES) {
        throw new EslProtocolError(`unusable Content-Length ${JSON.stringify(length)}`);
      }
      this.pending = headers;
      this.bodyLength = Number(length);
    }
    const rest = buf.subarray(pos);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    if (!this.pending && this.buffered > MAX_HEADER_BYTES) {
      throw new EslProtocolError(`header block longer than ${MAX_HEADER_BYTES} bytes`);
    }
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
        if (line.endsWith(':') && line.length > 1) headers[line.slice(0, -1)] = '';
        else this.malformedValues++;
        continue;
      }
      headers[line.slice(0, sep)] = this.decode(line.slice(sep + 2));
    }
    return headers;
  }

  /** URL-decodes a value; never throws. */
  decode(value: string): string {
    if (!value.includes('%')) return value;
    try {
      return decodeURIComponent(value);
    } catch {
      this.malformedValues++;
      return lenientDecode(value);
    }
  }

  private lastByte(): number {
    const last = this.chunks[this.chunks.length - 1];
    return last[last.length - 1];
  }
}

/**
 * Decodes every valid %XX escape byte-wise and lets invalid UTF-8 become U+FFFD; a `%` that does
 * not start an escape stays as it is. This is what a careful reader of a mangled value can know.
 * One pass over the value's UTF-8 bytes into one buffer: a 1.5 MB value of bad escapes took
 * 1.5 s with a per-character array and froze every call of the process (test/fuzz, FUZZ_SEED=3).
 */
export function lenientDecode(value: string): string {
  const src = Buffer.from(value, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i];
    if (b === 0x25 && i + 2 < src.length && isHex(src[i + 1]) && isHex(src[i + 2])) {
      out[n++] = (hexValue(src[i + 1]) << 4) | hexValue(src[i + 2]);
      i += 2;
    } else {
      out[n++] = b;
    }
  }
  return out.toString('utf8', 0, n);
}

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
