/**
 * Precomputed wire images of real FreeSWITCH traffic, for the load generator.
 *
 * Every event and the CHANNEL_DATA reply to `connect` is cut out of a byte-exact capture of a
 * real FreeSWITCH 1.11 (test/fixtures/esl, see its README): the same header set, the same order,
 * the same ~5-12 KB per event, URL-encoded values (`text/event-plain`) or JSON
 * (`text/event-json`, when a controller asked `event json …`, as modesl does). What changes per
 * call is cut into slots at load time: the call's UUID (same length as the captured one), the
 * hangup cause, and the Application-* headers, which are appended per command so that
 * Application-UUID echoes the controller's Event-UUID. Rendering a call's event is then a few
 * string concatenations: the generator must cost far less per call than the controllers it
 * measures, or it measures itself.
 *
 * The channel's times are slots too, as FreeSWITCH stamps them from its clock: the captured
 * Caller-Channel-{Created,Progress}-Time (µs) and the `_epoch` seconds that go with them become the
 * call's start, -Answered/-Bridged-Time its answer, -Hangup-Time its end, and `variable_duration`
 * and `variable_billsec` its whole seconds. A controller that checks a CDR's times against its own
 * clock (the daemon does) then sees what it would see from a real FreeSWITCH, not ten-day-old
 * stamps it must reject, log and replace. A never-answered call's answer times are 0, as
 * FreeSWITCH sends them. Captured values that stay as captured (nobody under test reads them): the
 * other leg's UUID, Core-UUID, Event-Sequence, the other `*sec` counters, and stamps that are none
 * of the three (a capture's Progress- or Bridged-Time that differs from them); an
 * Event-Date-Timestamp equal to one of them, or starting with its second, takes the call's value.
 */
import { CHANNEL_DATA_CAPTURE, channelDataTemplate, FIXTURE_DIR, readCapture, streamOf } from './captures';
import { cachedUrlEncoder } from './wire';

export type EventFormat = 'plain' | 'json';
/** Where the call is when FreeSWITCH fires the event: its Answer-State. */
export type Phase = 'ringing' | 'answered' | 'hangup';
type Slot = 'uuid' | 'cause' | 'caller' | TimeSlot;
/** The call's times: µs since the epoch, the same in seconds, and whole seconds of duration / billing. */
export type TimeSlot = 'created' | 'createdS' | 'answered' | 'answeredS' | 'ended' | 'endedS' | 'duration' | 'billsec';
/** What one call puts into the slots: its UUID, the hangup cause, the caller's number, its times. */
export type SlotValues = Readonly<Record<Slot, string>>;

/** One message with slots: parts[0] slot[0] parts[1] … parts[n]. */
export class Template {
  private readonly staticLength: number;
  /** The parts as bytes, copied into each message (no per-call encoding of 6 KB strings). */
  private readonly bytes: readonly Buffer[];

  constructor(
    readonly parts: readonly string[],
    readonly slots: readonly Slot[],
  ) {
    this.staticLength = parts.reduce((n, p) => n + p.length, 0);
    this.bytes = parts.map((p) => Buffer.from(p, 'latin1'));
  }

  /** Builds a template from text, cutting a slot wherever one of the captured values occurs. */
  static cut(text: string, captured: Partial<SlotValues>): Template {
    const parts: string[] = [];
    const slots: Slot[] = [];
    // Longest first: where a µs stamp starts, its seconds (a prefix) must not win the tie.
    const markers = (Object.entries(captured) as Array<[Slot, string]>).filter(([, v]) => v !== '').sort((a, b) => b[1].length - a[1].length);
    let from = 0;
    for (;;) {
      let best: [Slot, number, number] | null = null;
      for (const [slot, value] of markers) {
        const at = text.indexOf(value, from);
        if (at >= 0 && (best === null || at < best[1])) best = [slot, at, value.length];
      }
      if (!best) break;
      parts.push(text.slice(from, best[1]));
      slots.push(best[0]);
      from = best[1] + best[2];
    }
    parts.push(text.slice(from));
    return new Template(parts, slots);
  }

  render(values: SlotValues): string {
    let s = this.parts[0];
    for (let i = 0; i < this.slots.length; i++) s += values[this.slots[i]] + this.parts[i + 1];
    return s;
  }

  /** Writes render(values) into target at offset (ASCII values); returns the offset after it. */
  writeInto(target: Buffer, offset: number, values: SlotValues): number {
    let at = offset + this.bytes[0].copy(target, offset);
    for (let i = 0; i < this.slots.length; i++) {
      at += target.write(values[this.slots[i]], at, 'latin1');
      at += this.bytes[i + 1].copy(target, at);
    }
    return at;
  }

  /** Length of render() without building it (ASCII: bytes = characters). */
  length(values: SlotValues): number {
    let n = this.staticLength;
    for (const slot of this.slots) n += values[slot].length;
    return n;
  }
}

export interface EventTemplate {
  body: Template;
  /** The captured completion already says how the bridge ended (originate_disposition …). */
  hasBridgeResult: boolean;
}

export interface Templates {
  /** The whole connect reply: CHANNEL_DATA headers, then Content-Type/Reply-Text/Socket-Mode/Control. */
  channelData: Template;
  /** Event body without its trailing Application-* headers (plain: no final blank line; json: no closing brace). */
  event(format: EventFormat, name: string, phase: Phase): EventTemplate;
  /** The caller number of the capture (every call presents its own, of the same length). */
  caller: string;
  /** switch_url_encode for the Application-* headers, its cache living as long as these templates. */
  urlEncode(value: string): string;
}

const HUNT = CHANNEL_DATA_CAPTURE;
const ANSWERED_APPS = 'outbound-plain-pin-dtmf-record-hunt.log';
const MODESL = 'outbound-modesl-json-hunt.log';
/** Every capture loadTemplates reads: what the build copies for a deployment without test/ (package-captures.ts). */
export const TEMPLATE_CAPTURES: readonly string[] = [HUNT, ANSWERED_APPS, MODESL];
const CAUSE = 'NORMAL_CLEARING';

interface Message {
  headers: string;
  body: string;
}

/** Frames one side of a capture: header block to the blank line, then Content-Length bytes. */
function messages(capture: string, dir: string): Message[] {
  const stream = streamOf(readCapture(capture, dir).connections[0], 'FS->CTL');
  const out: Message[] = [];
  let pos = 0;
  while (pos < stream.length) {
    const end = stream.indexOf('\n\n', pos);
    if (end < 0) break;
    const headers = stream.toString('latin1', pos, end + 2);
    const m = /(?:^|\n)Content-Length: (\d+)/.exec(headers);
    const length = m ? Number(m[1]) : 0;
    out.push({ headers, body: stream.toString('latin1', end + 2, end + 2 + length) });
    pos = end + 2 + length;
  }
  return out;
}

function header(text: string, name: string, json: boolean): string | null {
  const m = json ? new RegExp(`"${name}":"([^"]*)"`).exec(text) : new RegExp(`(?:^|\\n)${name}: ([^\\n]*)`).exec(text);
  return m ? m[1] : null;
}

function phaseOf(answerState: string | null): Phase {
  if (answerState === 'answered') return 'answered';
  if (answerState === 'hangup') return 'hangup';
  return 'ringing';
}

/** Drops the trailing Application-* headers (they are rendered per command) and the end marker. */
function stripApplication(body: string, json: boolean): string {
  if (json) {
    const at = body.indexOf(',"Application":"');
    return at >= 0 ? body.slice(0, at) : body.slice(0, body.lastIndexOf('}'));
  }
  const lines = body.replace(/\n+$/, '\n').split('\n');
  lines.pop(); // the empty string after the last \n
  while (lines.length > 0 && /^Application(-Data|-Response|-UUID)?: /.test(lines[lines.length - 1])) lines.pop();
  return `${lines.join('\n')}\n`;
}

/** Which captured Caller-Channel-*-Time stands for which of the call's times. */
const TIME_HEADERS: ReadonlyArray<readonly [string, 'created' | 'answered' | 'ended']> = [
  ['Caller-Channel-Created-Time', 'created'],
  ['Caller-Channel-Progress-Time', 'created'],
  ['Caller-Channel-Answered-Time', 'answered'],
  ['Caller-Channel-Bridged-Time', 'answered'],
  ['Caller-Channel-Hangup-Time', 'ended'],
];
/** Placeholders for the two whole-second counters (their captured values, `7`, occur everywhere). */
const DURATION = '\u0001duration\u0001';
const BILLSEC = '\u0001billsec\u0001';

/**
 * The captured stamps of one capture as slot markers: each non-zero µs value (16 digits) and its
 * seconds (its first 10 digits, as `variable_*_epoch`), first seen wins.
 */
function timeMarkers(texts: readonly string[], json: boolean): Partial<SlotValues> {
  const markers: Partial<Record<Slot, string>> = {};
  for (const [name, slot] of TIME_HEADERS) {
    if (markers[slot] !== undefined) continue;
    for (const text of texts) {
      const value = header(text, name, json);
      if (value !== null && /^[1-9][0-9]{15}$/.test(value)) {
        markers[slot] = value;
        markers[`${slot}S`] = value.slice(0, 10);
        break;
      }
    }
  }
  return markers;
}

/** `variable_duration` / `variable_billsec` values replaced by their placeholders. */
function counterSlots(text: string, json: boolean): string {
  const put = (t: string, name: string, marker: string): string =>
    json ? t.replace(new RegExp(`"${name}":"[0-9]+"`), `"${name}":"${marker}"`) : t.replace(new RegExp(`(^|\n)${name}: [0-9]+\n`), `$1${name}: ${marker}\n`);
  return put(put(text, 'variable_duration', DURATION), 'variable_billsec', BILLSEC);
}

function assertAscii(text: string, what: string): void {
  // eslint-disable-next-line no-control-regex -- the point is to find bytes above 0x7f
  if (/[^\u0000-\u007f]/.test(text)) throw new Error(`${what}: template is not ASCII; lengths would be wrong`);
}

/** The templates for calls to `destination`, cut from the captures of `dir` (by default FIXTURE_DIR). */
export function loadTemplates(destination: string, dir = FIXTURE_DIR): Templates {
  const byKey = new Map<string, EventTemplate>();
  const add = (capture: string, format: EventFormat): void => {
    const json = format === 'json';
    const all = messages(capture, dir);
    const data = all.find((m) => m.headers.startsWith('Event-Name: CHANNEL_DATA'));
    const uuid = data ? header(data.headers, 'Unique-ID', false) : null;
    const dialled = data ? header(data.headers, 'Caller-Destination-Number', false) : null;
    const caller = data ? header(data.headers, 'Caller-Caller-ID-Number', false) : null;
    if (!uuid || !dialled || !caller) throw new Error(`${capture}: no CHANNEL_DATA`);
    const times = { ...timeMarkers(all.map((m) => m.headers + m.body), json), duration: DURATION, billsec: BILLSEC };
    for (const m of all) {
      if (!m.headers.includes(`Content-Type: text/event-${format}`)) continue;
      const name = header(m.body, 'Event-Name', json);
      if (!name) continue;
      const phase = phaseOf(header(m.body, 'Answer-State', json));
      const key = `${format}/${name}/${phase}`;
      if (byKey.has(key)) continue; // the first of each kind, as it came
      const text = counterSlots(stripApplication(m.body, json).split(dialled).join(destination), json);
      assertAscii(text, `${capture} ${name}`);
      byKey.set(key, { body: Template.cut(text, { uuid, caller, cause: phase === 'hangup' ? CAUSE : '', ...times }), hasBridgeResult: /originate_disposition/.test(text) });
    }
  };
  add(HUNT, 'plain');
  add(ANSWERED_APPS, 'plain');
  add(MODESL, 'json');

  const pairs = channelDataTemplate(CHANNEL_DATA_CAPTURE, dir);
  const uuid = pairs.find(([n]) => n === 'Unique-ID')![1];
  const dialled = pairs.find(([n]) => n === 'Caller-Destination-Number')![1];
  const caller = pairs.find(([n]) => n === 'Caller-Caller-ID-Number')![1];
  const dataText = `${pairs.map(([n, v]) => `${n}: ${v}\n`).join('')}Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n\n`
    .split(dialled)
    .join(destination);
  assertAscii(dataText, 'CHANNEL_DATA');
  const channelData = Template.cut(dataText, { uuid, caller, ...timeMarkers([dataText], false) });

  const renamed = new Map<string, EventTemplate>();
  return {
    channelData,
    caller,
    urlEncode: cachedUrlEncoder(),
    event(format, name, phase) {
      const order: Phase[] = phase === 'hangup' ? ['hangup', 'answered', 'ringing'] : phase === 'answered' ? ['answered', 'ringing', 'hangup'] : ['ringing', 'answered', 'hangup'];
      for (const p of order) {
        const t = byKey.get(`${format}/${name}/${p}`);
        if (t) return t;
      }
      // A type the captures do not hold (CHANNEL_PROGRESS_MEDIA, CHANNEL_CREATE …): a captured
      // ringing-state event of the same size with its name changed.
      const key = `${format}/${name}`;
      let t = renamed.get(key);
      if (!t) {
        const base = byKey.get(`${format}/CHANNEL_PROGRESS/ringing`);
        if (!base) throw new Error(`no template for ${key}`);
        const parts = base.body.parts.map((p) => p.replace(format === 'json' ? /"Event-Name":"[A-Z_]+"/ : /^Event-Name: [A-Z_]+/, format === 'json' ? `"Event-Name":"${name}"` : `Event-Name: ${name}`));
        t = { body: new Template(parts, base.body.slots), hasBridgeResult: false };
        renamed.set(key, t);
      }
      return t;
    },
  };
}
