/**
 * What the fuzz test does to FreeSWITCH's frames: headers dropped, duplicated, made huge, numbers
 * made negative/empty/non-numeric/out of range, bad `%` escapes, non-UTF-8 bytes, line breaks in
 * values, the call's identifiers pointed elsewhere, wrong Content-Length (shorter, longer, junk),
 * another encoding (plain ↔ JSON, cut JSON). Each mutation returns a short description for the
 * failure report.
 */
import type { Prng } from './prng';
import { header, type Line, type WireFrame } from './frames';

export interface MutationContext {
  /** Header names this frame must keep as they are (the connect reply's call identity). */
  protect: ReadonlySet<string>;
  /** Mutations that change the framing (line breaks, Content-Length, encoding) are allowed. */
  framing: boolean;
  /** Largest huge value to make, in bytes. */
  maxHuge: number;
  /** A UUID of no call, for identifiers pointed elsewhere. */
  strangerUuid: string;
}

const NUMERIC_JUNK = [
  '-1', '-99999999999999999999', '', 'abc', '99999999999999999999', '1e400', '0x1F', 'NaN', 'Infinity', ' 42', '4.2',
  '9007199254740993', '00000000000000000000000001', '-0', '1' + '0'.repeat(400),
];
const BAD_ESCAPES = ['%', '%G1', '%E4%B8', '%ZZ%', '%%41', '%C0%AF', '%ED%A0%80', '%FF%FE', '%0', '%u4E2D'];
const NON_UTF8 = ['\xff', '\xfe\xff', '\xc3(', '\x80', '\xed\xa0\x80', '\x00', '\xf8\x88\x80\x80\x80'];
const CALLER_JUNK = ['', '13000000123#', '+8613912345678', 'anonymous', '${system(id)}', '1'.repeat(200), '%00', '%0D%0Aapi%20status', '*', '-1'];
const CAUSE_JUNK = ['', 'NOT_A_CAUSE', '%', '-1', 'NORMAL_CLEARING%0Aapi status'];
const TIME_HEADERS = [
  'Caller-Channel-Created-Time', 'Caller-Channel-Answered-Time', 'Caller-Channel-Hangup-Time', 'Caller-Channel-Progress-Time',
  'Event-Date-Timestamp', 'variable_billsec', 'variable_duration', 'variable_answersec', 'variable_start_epoch', 'variable_answer_epoch',
];

type Op = (frame: WireFrame, rng: Prng, ctx: MutationContext) => string | null;

/** Applies 1–3 mutations to the frame in place; returns what was done. */
export function mutateFrame(frame: WireFrame, rng: Prng, ctx: MutationContext): string[] {
  const done: string[] = [];
  const count = rng.between(1, 3);
  for (let i = 0; i < count * 3 && done.length < count; i++) {
    const op = rng.pick(ctx.framing ? [...HEADER_OPS, ...FRAMING_OPS] : HEADER_OPS);
    const what = op(frame, rng, ctx);
    if (what) done.push(what);
  }
  return done;
}

/** The header list a mutation works on: an event's own headers, else the outer block. */
function target(frame: WireFrame): Line[] {
  return frame.encoding === null ? frame.outer : frame.headers;
}

function pickLine(frame: WireFrame, rng: Prng, ctx: MutationContext, filter: (l: Line) => boolean = () => true): Line | null {
  const lines = target(frame).filter((l) => !ctx.protect.has(l[0]) && filter(l));
  return lines.length > 0 ? rng.pick(lines) : null;
}

function setValue(lines: Line[], name: string, value: string | null): void {
  const i = lines.findIndex(([n]) => n === name);
  if (value === null) {
    if (i >= 0) lines.splice(i, 1);
  } else if (i >= 0) {
    lines[i][1] = value;
  } else {
    lines.push([name, value]);
  }
}

function hugeValue(rng: Prng, max: number): string {
  const size = Math.min(max, rng.pick([4096, 65_536, 300_000, 1_500_000]));
  const unit = rng.pick(['A', '%E4%B8%AD', '%%', '%ZZ', '1', '\xff']);
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

const HEADER_OPS: Op[] = [
  function drop(frame, rng, ctx) {
    const line = pickLine(frame, rng, ctx);
    if (!line) return null;
    target(frame).splice(target(frame).indexOf(line), 1);
    return `drop ${line[0]}`;
  },
  function duplicate(frame, rng, ctx) {
    const line = pickLine(frame, rng, ctx);
    const other = pickLine(frame, rng, ctx);
    if (!line || !other) return null;
    const lines = target(frame);
    lines.splice(rng.int(lines.length + 1), 0, [line[0], rng.chance(0.5) ? line[1] : other[1]]);
    return `duplicate ${line[0]}`;
  },
  function huge(frame, rng, ctx) {
    const line = pickLine(frame, rng, ctx);
    if (!line) return null;
    line[1] = hugeValue(rng, ctx.maxHuge);
    return `huge ${line[0]} (${line[1].length} B)`;
  },
  function number(frame, rng, ctx) {
    const line = pickLine(frame, rng, ctx, ([n, v]) => /^-?\d+$/.test(v) || TIME_HEADERS.includes(n));
    if (!line) return null;
    line[1] = rng.pick(NUMERIC_JUNK);
    return `number ${line[0]}=${JSON.stringify(line[1].slice(0, 24))}`;
  },
  function escape(frame, rng, ctx) {
    const line = pickLine(frame, rng, ctx);
    if (!line) return null;
    const at = rng.int(line[1].length + 1);
    line[1] = line[1].slice(0, at) + rng.pick(BAD_ESCAPES) + line[1].slice(at);
    return `bad escape in ${line[0]}`;
  },
  function bytes(frame, rng, ctx) {
    const line = pickLine(frame, rng, ctx);
    if (!line) return null;
    const at = rng.int(line[1].length + 1);
    line[1] = line[1].slice(0, at) + rng.pick(NON_UTF8) + line[1].slice(at);
    return `non-UTF-8 bytes in ${line[0]}`;
  },
  function callFacts(frame, rng, ctx) {
    const name = rng.pick(['Caller-Caller-ID-Number', 'Caller-Destination-Number', 'Hangup-Cause', 'variable_billsec', ...TIME_HEADERS]);
    if (ctx.protect.has(name)) return null;
    const value = name.startsWith('Caller-Caller') || name.startsWith('Caller-Dest') ? rng.pick(CALLER_JUNK)
      : name === 'Hangup-Cause' ? rng.pick(CAUSE_JUNK) : rng.pick(NUMERIC_JUNK);
    setValue(target(frame), name, value);
    return `${name}=${JSON.stringify(value.slice(0, 24))}`;
  },
  function identity(frame, rng, ctx) {
    const name = rng.pick(['Unique-ID', 'Event-Name', 'Application-UUID', 'Job-UUID', 'Application']);
    if (ctx.protect.has(name) || frame.encoding === null) return null;
    const value = name === 'Event-Name' ? rng.pick(['*', '', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_DATA', 'CHANNEL_ANSWER', 'NOPE', null])
      : name === 'Application' ? rng.pick(['bridge', '', 'socket', null])
      : rng.pick(['*', ctx.strangerUuid, '', null]);
    setValue(target(frame), name, value);
    return `${name}=${JSON.stringify(value)}`;
  },
];

const FRAMING_OPS: Op[] = [
  function newline(frame, rng, ctx) {
    const line = pickLine(frame, rng, ctx);
    if (!line) return null;
    const at = rng.int(line[1].length + 1);
    line[1] = line[1].slice(0, at) + rng.pick(['\n', '\r\n', '\n\n', '\nUnique-ID: *']) + line[1].slice(at);
    return `line break in ${line[0]}`;
  },
  function length(frame, rng) {
    if (rng.chance(0.6)) {
      frame.lengthDelta = rng.pick([-1, 1, -rng.between(2, 5000), rng.between(2, 5000)]);
      return `Content-Length ${frame.lengthDelta > 0 ? '+' : ''}${frame.lengthDelta}`;
    }
    frame.contentLength = rng.pick(['-1', '', 'abc', '99999999999', '0', ' 12', '1e3', '0x10']);
    return `Content-Length ${JSON.stringify(frame.contentLength)}`;
  },
  function contentType(frame, rng) {
    const value = rng.pick(['text/event-xml', 'command/reply', 'api/response', '', 'text/event-json', 'text/event-plain', 'text/disconnect-notice', null]);
    setValue(frame.outer, 'Content-Type', value);
    return `Content-Type=${JSON.stringify(value)}`;
  },
  function encoding(frame, rng) {
    if (frame.encoding === null) return null;
    if (rng.chance(0.5)) {
      frame.encoding = frame.encoding === 'plain' ? 'json' : 'plain';
      setValue(frame.outer, 'Content-Type', `text/event-${frame.encoding}`);
      return `re-encoded as ${frame.encoding}`;
    }
    frame.encoding = 'json';
    frame.jsonCut = rng.between(0, 4000);
    return `JSON cut at ${frame.jsonCut}`;
  },
  function splice(frame, rng) {
    frame.splice = { at: rng.next(), bytes: rng.pick(NON_UTF8) };
    return 'raw bytes spliced into the body';
  },
];

/** The connect reply's Unique-ID as the daemon will read it (the last one wins); '' when none. */
export function connectUuid(frame: WireFrame): string {
  return header(frame.outer, 'Unique-ID') ?? '';
}
