/**
 * The real FreeSWITCH side of the outbound-socket captures in test/fixtures/esl, cut into frames
 * the fuzz test can mutate and serialise again: the connect reply (CHANNEL_DATA), the reply each
 * kind of command got, the events before the caller's hang-up and the hang-up tail.
 *
 * Values are kept as "binary strings" (one character per byte, latin1), exactly as they crossed
 * the socket, so a mutation can put any byte anywhere (bad `%` escapes, non-UTF-8 bytes).
 */
import { fsUrlEncode } from '../peer/fake-freeswitch';
import { captureNames, commandsOf, readCapture, streamOf, type Chunk } from '../peer/fixtures';

export type Line = [name: string, value: string];

export interface WireFrame {
  /** Outer header lines in order, without Content-Length (computed when serialised). */
  outer: Line[];
  /** For events: 'plain' (text/event-plain) or 'json' (text/event-json); null for other frames. */
  encoding: 'plain' | 'json' | null;
  /** Event headers (plain: URL-encoded values), empty for other frames. */
  headers: Line[];
  /** The body: an event's text after its header block, an api/response or notice text. */
  body: string;
  /** Mutations: the outer Content-Length to send instead of the true one. */
  contentLength?: string;
  /** Mutations: send the true Content-Length plus this (shorter or longer than the body). */
  lengthDelta?: number;
  /** Mutations: cut the serialised JSON after this many bytes. */
  jsonCut?: number;
  /** Mutations: raw bytes spliced into the serialised body at a fraction of its length. */
  splice?: { at: number; bytes: string };
}

export interface CallTemplate {
  name: string;
  /** The captured call's UUID and dialled number, replaced by each fuzzed call's own. */
  uuid: string;
  destination: string;
  connectReply: WireFrame;
  /** What FreeSWITCH answered each kind of command (verb, or `api <cmd>`), in capture order. */
  replies: Map<string, WireFrame[]>;
  /** Events before the caller's leg hung up. */
  events: WireFrame[];
  /** From CHANNEL_HANGUP on: events and disconnect notices. */
  tail: WireFrame[];
}

export function header(lines: readonly Line[], name: string): string | undefined {
  let value: string | undefined;
  for (const [n, v] of lines) if (n === name) value = v;
  return value;
}

export function eventName(frame: WireFrame): string {
  return header(frame.headers, 'Event-Name') ?? '';
}

export function contentType(frame: WireFrame): string {
  return header(frame.outer, 'Content-Type') ?? '';
}

export function cloneFrame(frame: WireFrame): WireFrame {
  return { ...frame, outer: frame.outer.map(([n, v]) => [n, v]), headers: frame.headers.map(([n, v]) => [n, v]) };
}

/** The key a command's reply is filed under: `sendmsg`, `myevents`, `api uuid_kill` … */
export function commandKey(line: string): string {
  const words = line.trim().split(/\s+/);
  const verb = (words[0] ?? '').toLowerCase();
  return (verb === 'api' || verb === 'bgapi') && words[1] ? `${verb} ${words[1]}` : verb;
}

/** Every outbound-socket capture connection (FreeSWITCH calling the controller). */
export function callTemplates(): CallTemplate[] {
  const out: CallTemplate[] = [];
  for (const name of captureNames()) {
    if (name.startsWith('inbound-')) continue;
    readCapture(name).connections.forEach((chunks, i) => {
      const t = templateOf(`${name}#${i}`, chunks);
      if (t) out.push(t);
    });
  }
  return out;
}

function templateOf(name: string, chunks: Chunk[]): CallTemplate | null {
  const frames = splitFrames(streamOf(chunks, 'FS->CTL').toString('latin1'));
  const commands = commandsOf(streamOf(chunks, 'CTL->FS')).map((c) => c.toString('latin1').split('\n')[0]);
  const replies = frames.filter((f) => f.encoding === null && ['command/reply', 'api/response'].includes(contentType(f)));
  const connectReply = replies[0];
  const uuid = connectReply ? header(connectReply.outer, 'Unique-ID') : undefined;
  if (!connectReply || !uuid || commandKey(commands[0] ?? '') !== 'connect') return null;
  const byCommand = new Map<string, WireFrame[]>();
  replies.slice(1).forEach((reply, i) => {
    const key = commandKey(commands[i + 1] ?? '');
    byCommand.set(key, [...(byCommand.get(key) ?? []), reply]);
  });
  const rest = frames.filter((f) => !replies.includes(f));
  const hangup = rest.findIndex((f) => eventName(f).startsWith('CHANNEL_HANGUP'));
  const split = hangup < 0 ? rest.length : hangup;
  return {
    name,
    uuid,
    destination: header(connectReply.outer, 'Caller-Destination-Number') ?? '',
    connectReply,
    replies: byCommand,
    events: rest.slice(0, split).filter((f) => f.encoding !== null),
    tail: rest.slice(split),
  };
}

/** mod_event_socket framing: a header block to a blank line, then Content-Length bytes. */
function splitFrames(stream: string): WireFrame[] {
  const frames: WireFrame[] = [];
  let pos = 0;
  for (;;) {
    while (stream[pos] === '\n') pos++;
    const end = stream.indexOf('\n\n', pos);
    if (end < 0) break;
    const outer = lines(stream.slice(pos, end));
    const length = Number(header(outer, 'Content-Length') ?? 0);
    const body = stream.slice(end + 2, end + 2 + length);
    pos = end + 2 + length;
    frames.push(toFrame(outer.filter(([n]) => n !== 'Content-Length'), body));
  }
  return frames;
}

function toFrame(outer: Line[], body: string): WireFrame {
  const type = header(outer, 'Content-Type');
  if (type === 'text/event-plain') {
    const end = body.indexOf('\n\n');
    return { outer, encoding: 'plain', headers: lines(end < 0 ? body : body.slice(0, end)), body: end < 0 ? '' : body.slice(end + 2) };
  }
  if (type === 'text/event-json') {
    const parsed = JSON.parse(Buffer.from(body, 'latin1').toString('utf8')) as Record<string, unknown>;
    const headers: Line[] = [];
    let inner = '';
    for (const [key, value] of Object.entries(parsed)) {
      if (key === '_body') inner = Buffer.from(String(value), 'utf8').toString('latin1');
      else headers.push([key, fsUrlEncode(Array.isArray(value) ? `ARRAY::${value.map(String).join('|:')}` : String(value))]);
    }
    return { outer, encoding: 'json', headers, body: inner };
  }
  return { outer, encoding: null, headers: [], body };
}

function lines(block: string): Line[] {
  const out: Line[] = [];
  for (const line of block.split('\n')) {
    const sep = line.indexOf(': ');
    if (sep > 0) out.push([line.slice(0, sep), line.slice(sep + 2)]);
    else if (line.endsWith(':')) out.push([line.slice(0, -1), '']);
  }
  return out;
}

/** The frame as bytes on the wire, with whatever the mutations asked for. */
export function serialize(frame: WireFrame): Buffer {
  let body: Buffer;
  if (frame.encoding === 'plain') {
    body = Buffer.from(`${frame.headers.map(([n, v]) => `${n}: ${v}\n`).join('')}\n${frame.body}`, 'latin1');
  } else if (frame.encoding === 'json') {
    const obj: Record<string, unknown> = {};
    for (const [n, v] of frame.headers) {
      const text = decodeLoosely(v);
      obj[n] = text.startsWith('ARRAY::') ? text.slice(7).split('|:') : text;
    }
    if (frame.body !== '') obj._body = Buffer.from(frame.body, 'latin1').toString('utf8');
    body = Buffer.from(JSON.stringify(obj), 'utf8');
    if (frame.jsonCut !== undefined) body = body.subarray(0, Math.min(frame.jsonCut, body.length));
  } else {
    body = Buffer.from(frame.body, 'latin1');
  }
  if (frame.splice) {
    const at = Math.floor(frame.splice.at * body.length);
    body = Buffer.concat([body.subarray(0, at), Buffer.from(frame.splice.bytes, 'latin1'), body.subarray(at)]);
  }
  const length = frame.contentLength
    ?? (frame.lengthDelta !== undefined ? String(Math.max(0, body.length + frame.lengthDelta)) : undefined)
    ?? (body.length > 0 || frame.encoding !== null ? String(body.length) : undefined);
  const head = `${length === undefined ? '' : `Content-Length: ${length}\n`}${frame.outer.map(([n, v]) => `${n}: ${v}\n`).join('')}\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

function decodeLoosely(value: string): string {
  const utf8 = Buffer.from(value, 'latin1').toString('utf8');
  try {
    return decodeURIComponent(utf8);
  } catch {
    return utf8;
  }
}
