/**
 * FreeSWITCH's side of one fuzzed outbound-socket call: it connects to the daemon like the
 * `socket` application and answers the daemon's commands with a real capture's frames (the
 * connect reply, the replies, the events each application produced, the hang-up tail), mutated
 * by the call's own PRNG: headers, lengths, encodings, frame order (swapped, dropped, repeated,
 * another call's frame slipped in), and an early close at a random byte offset.
 *
 * It always ends the call itself: when the daemon sends nothing for a while it sends the
 * hang-up tail and closes, and it closes after at most `maxCallMs` whatever happens.
 *
 * The oracle for "this call's traffic carried a UUID": the connect reply was written whole and
 * its Unique-ID (the last one, as the daemon reads it) is not empty. Only then must the daemon
 * write a CDR; the connect reply is never given framing mutations, so this is exact.
 */
import net from 'node:net';
import { CommandReader } from '../peer/command-reader';
import { cloneFrame, commandKey, contentType, eventName, header, serialize, type CallTemplate, type WireFrame } from './frames';
import { connectUuid, mutateFrame, type MutationContext } from './mutate';
import type { Prng } from './prng';

export interface FuzzCallResult {
  index: number;
  template: string;
  uuid: string;
  /** The connect reply reached the daemon whole with a Unique-ID: one CDR is due. */
  carriedUuid: boolean;
  mutations: string[];
  commands: string[];
  /** Frame number and byte offset of the early close, when there was one. */
  cutAt: string | null;
}

const DEFAULT_REPLY: WireFrame = { outer: [['Content-Type', 'command/reply'], ['Reply-Text', '+OK']], encoding: null, headers: [], body: '' };
const DEMO_NUMBER = '4001012345';

export interface FuzzCallOptions {
  port: number;
  index: number;
  template: CallTemplate;
  /** Frames of every capture, to slip another call's frame in. */
  strangers: readonly WireFrame[];
  rng: Prng;
  maxCallMs: number;
}

export function runFuzzCall(opts: FuzzCallOptions): Promise<FuzzCallResult> {
  return new FuzzCall(opts).run();
}

class FuzzCall {
  private readonly rng: Prng;
  private readonly t: CallTemplate;
  private readonly uuid: string;
  private readonly destination: string;
  private readonly rate: number;
  private readonly idleMs: number;
  private readonly cut: { frame: number; fraction: number } | null;
  private readonly ctx: MutationContext;
  private readonly result: FuzzCallResult;
  private readonly replyCursor = new Map<string, number>();
  private socket!: net.Socket;
  private readonly reader = new CommandReader();
  private cursor = 0;
  private framesSent = 0;
  private ended = false;
  private idle: NodeJS.Timeout | null = null;

  constructor(private readonly opts: FuzzCallOptions) {
    const rng = opts.rng;
    this.rng = rng;
    this.t = opts.template;
    this.uuid = rng.uuid();
    this.destination = rng.chance(0.75) ? DEMO_NUMBER : this.t.destination;
    this.rate = rng.pick([0, 0.05, 0.2, 0.5, 0.9]);
    this.idleMs = rng.between(20, 300);
    this.cut = rng.chance(0.3) ? { frame: rng.int(rng.pick([2, 8, 30])), fraction: rng.next() } : null;
    this.ctx = { protect: new Set(), framing: true, maxHuge: 1_500_000, strangerUuid: rng.uuid() };
    this.result = { index: opts.index, template: this.t.name, uuid: this.uuid, carriedUuid: false, mutations: [], commands: [], cutAt: null };
  }

  run(): Promise<FuzzCallResult> {
    return new Promise((resolve) => {
      const cap = setTimeout(() => this.socket.destroy(), this.opts.maxCallMs);
      this.socket = net.connect({ host: '127.0.0.1', port: this.opts.port });
      this.socket.setNoDelay(true);
      this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
      this.socket.on('error', () => undefined);
      this.socket.on('close', () => {
        clearTimeout(cap);
        if (this.idle) clearTimeout(this.idle);
        this.ended = true;
        resolve(this.result);
      });
    });
  }

  /** The controller's commands as mod_event_socket reads them: headers, blank line, content-length bytes. */
  private onData(chunk: Buffer): void {
    for (const { line, headers } of this.reader.push(chunk)) this.onCommand(line, headers);
  }

  private onCommand(line: string, headers: Record<string, string>): void {
    if (this.ended) return;
    if (this.idle) clearTimeout(this.idle);
    const key = commandKey(line);
    const app = headers['execute-app-name'];
    this.result.commands.push(app ? `${key} ${app}` : key);
    if (key === 'connect') {
      this.sendConnectReply();
    } else if (key === 'sendmsg' && headers['call-command'] === 'execute' && app) {
      this.send([this.reply(key), ...this.episode(app, headers['event-uuid'] ?? '')]);
    } else if ((key === 'sendmsg' && headers['call-command'] === 'hangup') || key === 'api uuid_kill') {
      this.send([this.reply(key), ...this.own(this.t.tail)]);
      this.end();
      return;
    } else {
      this.send([this.reply(key)]);
    }
    if (!this.ended) this.idle = setTimeout(() => this.hangUp(), this.idleMs);
  }

  /** The caller hangs up (the daemon went quiet, or the capture has nothing left): tail, close. */
  private hangUp(): void {
    this.send(this.own(this.t.tail));
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.end();
  }

  private sendConnectReply(): void {
    const [frame] = this.own([this.t.connectReply]);
    // The call's identity stays readable, so the oracle is exact; everything else may be mangled.
    if (this.rng.chance(this.rate)) {
      const ctx = { ...this.ctx, protect: new Set(['Unique-ID', 'Event-Name', 'Content-Type']), framing: false, maxHuge: 200_000 };
      this.note('connect reply', mutateFrame(frame, this.rng, ctx));
    }
    if (this.rng.chance(0.04)) {
      const value = this.rng.pick(['', null]);
      frame.outer = frame.outer.filter(([n]) => n !== 'Unique-ID');
      if (value !== null) frame.outer.push(['Unique-ID', value]);
      this.note('connect reply', [value === null ? 'drop Unique-ID' : 'empty Unique-ID']);
    }
    const whole = this.write(frame);
    this.result.carriedUuid = whole && connectUuid(frame) !== '';
  }

  /** The reply FreeSWITCH gave this kind of command in the capture (the last one again when used up). */
  private reply(key: string): WireFrame {
    const list = this.t.replies.get(key) ?? [];
    const n = this.replyCursor.get(key) ?? 0;
    this.replyCursor.set(key, n + 1);
    return this.own([list[Math.min(n, list.length - 1)] ?? DEFAULT_REPLY])[0];
  }

  /**
   * The capture's events up to the completion of the next application of this name (or of any
   * name), that completion answering the daemon's own Event-UUID.
   */
  private episode(app: string, eventUuid: string): WireFrame[] {
    const events = this.t.events;
    const isCompletion = (f: WireFrame): boolean => eventName(f) === 'CHANNEL_EXECUTE_COMPLETE' && header(f.headers, 'Application') !== 'socket';
    let end = events.findIndex((f, i) => i >= this.cursor && isCompletion(f) && header(f.headers, 'Application') === app);
    if (end < 0) end = events.findIndex((f, i) => i >= this.cursor && isCompletion(f));
    if (end < 0) return [];
    const frames = this.own(events.slice(this.cursor, end + 1));
    this.cursor = end + 1;
    const capturedId = header(frames[frames.length - 1].headers, 'Application-UUID');
    for (const f of frames) {
      if (capturedId === undefined || header(f.headers, 'Application-UUID') !== capturedId) continue;
      f.headers = f.headers.map(([n, v]) => [n, n === 'Application-UUID' ? eventUuid : n === 'Application' ? app : v]);
    }
    return frames;
  }

  /** Copies of captured frames made this call's: its UUID, and the dialled number it calls. */
  private own(frames: readonly WireFrame[]): WireFrame[] {
    const from = this.t.uuid;
    const swap = (v: string): string => (v === this.t.destination ? this.destination : v.split(from).join(this.uuid));
    return frames.map((f) => {
      const c = cloneFrame(f);
      c.outer = c.outer.map(([n, v]) => [n, swap(v)]);
      c.headers = c.headers.map(([n, v]) => [n, swap(v)]);
      c.body = c.body.split(from).join(this.uuid);
      return c;
    });
  }

  /** Mutates and reorders a burst of frames, then writes them. */
  private send(burst: WireFrame[]): void {
    const frames = [...burst];
    if (this.rng.chance(this.rate / 2) && frames.length > 1) {
      const i = this.rng.int(frames.length - 1);
      [frames[i], frames[i + 1]] = [frames[i + 1], frames[i]];
      this.note('order', [`swapped ${describe(frames[i + 1])} and ${describe(frames[i])}`]);
    }
    if (this.rng.chance(this.rate / 4) && frames.length > 0) {
      const i = this.rng.int(frames.length);
      if (this.rng.chance(0.5)) {
        this.note('order', [`dropped ${describe(frames[i])}`]);
        frames.splice(i, 1);
      } else {
        this.note('order', [`repeated ${describe(frames[i])}`]);
        frames.splice(i, 0, cloneFrame(frames[i]));
      }
    }
    if (this.rng.chance(this.rate / 4) && this.opts.strangers.length > 0) {
      const stranger = cloneFrame(this.rng.pick(this.opts.strangers));
      frames.splice(this.rng.int(frames.length + 1), 0, stranger);
      this.note('order', [`another call's ${describe(stranger)}`]);
    }
    for (const frame of frames) {
      if (this.rng.chance(this.rate)) this.note(describe(frame), mutateFrame(frame, this.rng, this.ctx));
      if (!this.write(frame)) return;
    }
  }

  /** Writes one frame, or the early close's part of it; false once the call's socket is ending. */
  private write(frame: WireFrame): boolean {
    if (this.ended) return false;
    const bytes = serialize(frame);
    const n = this.framesSent++;
    if (this.cut && this.cut.frame === n) {
      const offset = Math.floor(this.cut.fraction * bytes.length);
      this.result.cutAt = `frame ${n} (${describe(frame)}) at byte ${offset} of ${bytes.length}`;
      this.socket.write(bytes.subarray(0, offset));
      this.end();
      return false;
    }
    this.socket.write(bytes);
    return true;
  }

  private note(where: string, what: string[]): void {
    for (const w of what) this.result.mutations.push(`${where}: ${w}`);
  }
}

function describe(frame: WireFrame): string {
  return frame.encoding === null ? contentType(frame) || 'frame' : eventName(frame) || 'event';
}
