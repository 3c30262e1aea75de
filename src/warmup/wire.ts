/**
 * The event socket's wire format as FreeSWITCH reads and writes it (mod_event_socket.c): commands
 * framed as read_packet frames them, values URL-encoded as switch_url_encode does, the types
 * `myevents` subscribes.
 */

/** The event types `myevents` subscribes (mod_event_socket.c, parse_command). */
export const MYEVENTS = [
  'CHANNEL_ANSWER', 'CHANNEL_APPLICATION', 'CHANNEL_BRIDGE', 'CHANNEL_CREATE', 'CHANNEL_DATA',
  'CHANNEL_DESTROY', 'CHANNEL_EXECUTE', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_HANGUP',
  'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_ORIGINATE', 'CHANNEL_UUID', 'CHANNEL_OUTGOING', 'CHANNEL_PARK',
  'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA', 'CHANNEL_STATE', 'CHANNEL_UNBRIDGE', 'CHANNEL_UNPARK',
  'DETECTED_SPEECH', 'DTMF', 'NOTALK', 'TALK',
] as const;

/** switch_url_encode: these printable characters, controls and every non-ASCII byte are %XX. */
const UNSAFE = new Set('\r\n "#%&+:;<=>?@[\\]^`{|}'.split(''));

/**
 * switch_url_encode, remembering up to 10,000 values it encoded. One per set of templates
 * (templates.ts), so the cache goes with them: in the daemon, with the warm-up's.
 */
export function cachedUrlEncoder(): (value: string) => string {
  const encoded = new Map<string, string>();
  return (value) => {
    let out = encoded.get(value);
    if (out !== undefined) return out;
    out = '';
    for (const byte of Buffer.from(value, 'utf8')) {
      const ch = String.fromCharCode(byte);
      out += byte < 0x20 || byte > 0x7e || UNSAFE.has(ch) ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : ch;
    }
    if (encoded.size < 10_000) encoded.set(value, out);
    return out;
  };
}

export interface Command {
  /** The first line: `sendmsg <uuid>`, `myevents plain` … */
  line: string;
  /** The other headers, names lower-cased. */
  headers: Map<string, string>;
  body: string;
}

/** read_packet: header lines up to a blank line, then content-length bytes of body. */
export class CommandReader {
  private pending: Buffer | null = null;

  push(chunk: Buffer): Command[] {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    const out: Command[] = [];
    for (;;) {
      const end = buf.indexOf('\n\n');
      if (end < 0) break;
      const lines = buf.toString('latin1', 0, end).split('\n');
      let length = 0;
      const headers = new Map<string, string>();
      for (let i = 1; i < lines.length; i++) {
        const sep = lines[i].indexOf(': ');
        if (sep <= 0) continue;
        const name = lines[i].slice(0, sep).toLowerCase();
        const value = lines[i].slice(sep + 2);
        headers.set(name, value);
        if (name === 'content-length') length = Number(value);
      }
      if (buf.length < end + 2 + length) break;
      const body = length > 0 ? buf.toString('utf8', end + 2, end + 2 + length) : '';
      buf = buf.subarray(end + 2 + length);
      out.push({ line: lines[0].trim(), headers, body });
    }
    if (buf.length > 0) this.pending = Buffer.from(buf);
    return out;
  }
}
