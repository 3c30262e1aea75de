/**
 * A FreeSWITCH stand-in for the INBOUND event socket (port 8021), as the cron side uses it.
 * Byte for byte what FreeSWITCH 1.11 sent in test/fixtures/esl/inbound-auth-api-bgapi.log
 * (checked by test/billing/freeswitch-inbound.test.ts):
 *  B1 on accept: `Content-Type: auth/request\n\n`;
 *  B2 `auth <pw>\n\n` → `Content-Type: command/reply\nReply-Text: +OK accepted\n\n`; a wrong
 *     password → `Reply-Text: -ERR invalid`, then a text/disconnect-notice (the ClueCon text) and close;
 *  B3 `api <cmd>\n\n` → `Content-Type: api/response\nContent-Length: n\n\n` + n bytes:
 *     uuid_kill of an unknown channel `-ERR No such channel!\n`, of a live one `+OK\n`;
 *     uuid_broadcast `+OK Message Sent\n` (mod_commands.c writes it whatever the channel);
 *     uuid_displace <uuid> start <file> 0 mux (M13 in channel-model.ts): `+OK Success\n`, or
 *     `-ERR Cannot locate session!\n` for an unknown channel, or what `onDisplace` answers (the
 *     channel's own model: a missing file → `-ERR Cannot displace session!\n`, a channel with no media pre-answered first);
 *     uuid_exists `true` / `false`, no newline (mod_commands.c uuid_exists_function): an originated
 *     leg exists from its answer until its socket call ended (FreeSWITCH keeps a channel whose
 *     socket application runs);
 *     anything else `-ERR <cmd> Command not found!\n`;
 *  B4 a command before auth → `Content-Type: command/reply\nReply-Text: -ERR command not found\n\n`;
 *  B5 `exit` → close (after `Reply-Text: +OK bye` and a disconnect notice, as the originate capture shows).
 *
 * Click-to-call originates, each as real FreeSWITCH did in test/fixtures/esl/inbound-originate-to-socket.log
 * (checked by test/clicktocall/inbound-originate.test.ts) or as its source says:
 *  B6 `event plain <EVENTS…>` → `+OK event listener enabled plain`; only subscribed connections get
 *     BACKGROUND_JOB events (mod_event_socket.c event_handler).
 *  B7 `bgapi <cmd>` → at once `Reply-Text: +OK Job-UUID: <id>` plus a `Job-UUID: <id>` header, where
 *     <id> is the command's own `Job-UUID:` header when it sent one (mod_event_socket.c), else new.
 *  B8 When the job ends: a text/event-plain BACKGROUND_JOB with Job-UUID, Job-Command: originate,
 *     Job-Command-Arg (the argument, URL-encoded) and the result as its body: `+OK <channel uuid>\n`
 *     for an answered leg, `-ERR <CAUSE>\n` otherwise (mod_commands.c originate_function).
 *  B9 originate splits its argument at spaces, keeping '…' together and dropping the quotes
 *     (switch_separate_string); `{k=v,…}` before the dial string are channel variables;
 *     `&app(args)` runs app with the text up to the first `)`. So an unquoted
 *     `&socket(host:port async full)` gives the socket application just `host:port`
 *     (outbound-originated-leg-to-socket.log: Socket-Mode static, Control single-channel).
 *  B10 The channel's uuid is origination_uuid when given. Results by the visitor's plan: answered
 *     (after ringMs: +OK, then the socket application connects to host:port with the answered
 *     leg, see A9/A10 of fake-freeswitch.ts); busy `-ERR USER_BUSY` (486); no answer `-ERR NO_ANSWER`
 *     once originate_timeout runs out (the capture: 6 s for originate_timeout=6); unreachable
 *     `-ERR UNALLOCATED_NUMBER` (404); a gateway that never answers SIP
 *     `-ERR RECOVERY_ON_TIMER_EXPIRE` (timer B).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { fsUrlEncode, placeCall, type CallRecord, type CallScript } from './fake-freeswitch';

const DISCONNECT_TEXT = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';

export interface InboundCommand {
  /** The command line as received, e.g. `api uuid_kill <uuid> CALL_REJECTED`. */
  line: string;
  at: number;
}

export interface FakeInboundOptions {
  password?: string;
  /** Channels FreeSWITCH has; uuid_kill removes one. */
  channels?: Iterable<string>;
  /** Never answer api commands (timeout tests). */
  silent?: boolean;
  /** uuid_displace of a known channel: FreeSWITCH's answer (e.g. the outbound stand-in's model, M13); default `+OK Success\n`. */
  onDisplace?: (uuid: string, file: string) => string;
  /** Called when a channel is killed (e.g. to end the call in the outbound stand-in). */
  onKill?: (uuid: string, cause: string) => void;
  /** B10: what each visitor number does when originated (default: answers after 20 ms). */
  visitors?: Record<string, VisitorPlan>;
  /** Scales originate_timeout seconds into test time (as CallScript.timeScale): 0.01 → 30 s is 300 ms. */
  timeScale?: number;
  /** The rest of the answered leg's call script (the tenant's phones, talk time …). */
  callScript?: (visitor: string) => Partial<CallScript>;
}

export interface VisitorPlan {
  result: 'answer' | 'busy' | 'no_answer' | 'unreachable' | 'timer_expire';
  ringMs?: number;
  /** Answered legs: the socket application connects only once this resolves (a daemon slow to take the leg). */
  socketAfter?: () => Promise<void>;
}

export interface OriginateRecord {
  jobUuid: string;
  /** The argument as received. */
  arg: string;
  /** After B9: channel variables, the dial string, the visitor number, the &app and its arguments. */
  vars: Record<string, string>;
  dialString: string;
  visitor: string;
  app: string;
  appArgs: string;
  result: string;
  /** The outbound call the answered leg became (resolves when its socket closed). */
  call?: Promise<CallRecord>;
}

/** B9: switch_separate_string with ' ' as delimiter: '…' groups, quotes removed. */
export function separateString(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  let started = false;
  for (const ch of text) {
    if (ch === "'") {
      quoted = !quoted;
      started = true;
    } else if (ch === ' ' && !quoted) {
      if (started) out.push(current);
      current = '';
      started = false;
    } else {
      current += ch;
      started = true;
    }
  }
  if (started) out.push(current);
  return out;
}

const CAUSE_OF: Record<Exclude<VisitorPlan['result'], 'answer'>, string> = {
  busy: 'USER_BUSY',
  no_answer: 'NO_ANSWER',
  unreachable: 'UNALLOCATED_NUMBER',
  timer_expire: 'RECOVERY_ON_TIMER_EXPIRE',
};

export class FakeInboundFreeSwitch {
  readonly commands: InboundCommand[] = [];
  readonly kills: Array<{ uuid: string; cause: string }> = [];
  readonly broadcasts: Array<{ uuid: string; file: string; legs: string }> = [];
  readonly displaces: Array<{ uuid: string; file: string; reply: string }> = [];
  readonly channels: Set<string>;
  readonly originates: OriginateRecord[] = [];
  private readonly subscribers = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Every byte each connection received, in order. */
  readonly received: Buffer[] = [];
  connections = 0;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly options: FakeInboundOptions = {}) {
    this.channels = new Set(options.channels ?? []);
    this.server = net.createServer((socket) => this.accept(socket));
  }

  get password(): string {
    return this.options.password ?? 'ClueCon';
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.connections++;
    this.sockets.add(socket);
    const index = this.received.push(Buffer.alloc(0)) - 1;
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.subscribers.delete(socket);
    });
    socket.on('error', () => undefined);
    let authed = false;
    let buffer = '';
    socket.write('Content-Type: auth/request\n\n');
    socket.on('data', (chunk: Buffer) => {
      this.received[index] = Buffer.concat([this.received[index], chunk]);
      buffer += chunk.toString('utf8');
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end < 0) break;
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const line = block.split('\n')[0] ?? '';
        this.commands.push({ line, at: Date.now() });
        if (line === 'exit') {
          socket.write('Content-Type: command/reply\nReply-Text: +OK bye\n\n');
          socket.end(`Content-Type: text/disconnect-notice\nContent-Length: ${Buffer.byteLength(DISCONNECT_TEXT)}\n\n${DISCONNECT_TEXT}`);
          return;
        }
        if (line.startsWith('auth ')) {
          if (line.slice(5) === this.password) {
            authed = true;
            socket.write('Content-Type: command/reply\nReply-Text: +OK accepted\n\n');
          } else {
            socket.write('Content-Type: command/reply\nReply-Text: -ERR invalid\n\n');
            socket.write(`Content-Type: text/disconnect-notice\nContent-Length: ${Buffer.byteLength(DISCONNECT_TEXT)}\n\n${DISCONNECT_TEXT}`);
            socket.end();
            return;
          }
          continue;
        }
        if (!authed) {
          socket.write('Content-Type: command/reply\nReply-Text: -ERR command not found\n\n');
          continue;
        }
        if (line.startsWith('api ')) {
          if (this.options.silent) continue;
          const body = this.api(line.slice(4));
          socket.write(`Content-Type: api/response\nContent-Length: ${Buffer.byteLength(body)}\n\n${body}`);
        } else if (line.startsWith('event ')) {
          const [, format = 'plain', ...names] = line.split(' ');
          if (names.includes('BACKGROUND_JOB') || names.includes('ALL')) this.subscribers.add(socket);
          socket.write(`Content-Type: command/reply\nReply-Text: +OK event listener enabled ${format}\n\n`);
        } else if (line.startsWith('bgapi ')) {
          if (this.options.silent) continue;
          const jobUuid = /^Job-UUID: (.+)$/m.exec(block)?.[1] ?? randomUUID();
          socket.write(`Content-Type: command/reply\nReply-Text: +OK Job-UUID: ${jobUuid}\nJob-UUID: ${jobUuid}\n\n`);
          this.bgapi(line.slice(6), jobUuid);
        }
      }
    });
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  /** B7/B8: run a background job; only originate is known. */
  private bgapi(command: string, jobUuid: string): void {
    const space = command.indexOf(' ');
    const name = space < 0 ? command : command.slice(0, space);
    const arg = space < 0 ? '' : command.slice(space + 1);
    if (name !== 'originate') {
      this.backgroundJob(jobUuid, name, arg, `-ERR ${name} Command not found!\n`);
      return;
    }
    const [aleg = '', exten = ''] = separateString(arg);
    const m = /^\{([^}]*)\}(.*)$/.exec(aleg);
    const vars: Record<string, string> = {};
    for (const pair of (m ? m[1] : '').split(',')) {
      const eq = pair.indexOf('=');
      if (eq > 0) vars[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    const dialString = m ? m[2] : aleg;
    const visitor = dialString.slice(dialString.lastIndexOf('/') + 1).split('@')[0];
    const appMatch = /^&([^(]+)\(([^)]*)\)?/.exec(exten);
    const record: OriginateRecord = { jobUuid, arg, vars, dialString, visitor, app: appMatch?.[1] ?? '', appArgs: appMatch?.[2] ?? '', result: '' };
    this.originates.push(record);
    const plan = this.options.visitors?.[visitor] ?? { result: 'answer' as const };
    const scale = this.options.timeScale ?? 0.01;
    const timeoutMs = Number(vars.originate_timeout ?? 60) * 1000 * scale;
    const uuid = vars.origination_uuid ?? randomUUID();
    if (plan.result === 'answer') {
      const ringMs = plan.ringMs ?? 20;
      if (ringMs > timeoutMs) {
        this.later(timeoutMs, () => this.finishOriginate(record, '-ERR NO_ANSWER\n'));
        return;
      }
      this.later(ringMs, () => {
        this.channels.add(uuid);
        this.finishOriginate(record, `+OK ${uuid}\n`);
        if (record.app !== 'socket') {
          this.channels.delete(uuid);
          return;
        }
        // B9: the socket application's own arguments: host:port, then flags.
        const [address = '', ...flags] = record.appArgs.split(' ');
        const [host = '127.0.0.1', port = '8084'] = address.split(':');
        const { origination_uuid: _u, origination_caller_id_number: callerId = '', ...legVars } = vars;
        const gate = plan.socketAfter?.() ?? Promise.resolve();
        record.call = gate.then(() => placeCall(Number(port), {
          caller: visitor,
          destination: visitor,
          uuid,
          timeScale: scale,
          ...this.options.callScript?.(visitor),
          socketMode: { async: flags.includes('async'), full: flags.includes('full') },
          originated: { callerIdNumber: callerId, variables: legVars, ringMs },
        }, host));
        // The channel is gone once its socket call ended (or could not connect).
        record.call.then(() => this.channels.delete(uuid), () => this.channels.delete(uuid));
      });
      return;
    }
    const wait = plan.result === 'no_answer' ? timeoutMs : Math.min(plan.ringMs ?? 20, timeoutMs);
    this.later(wait, () => this.finishOriginate(record, `-ERR ${CAUSE_OF[plan.result as Exclude<VisitorPlan['result'], 'answer'>]}\n`));
  }

  private finishOriginate(record: OriginateRecord, body: string): void {
    record.result = body.trim();
    this.backgroundJob(record.jobUuid, 'originate', record.arg, body);
  }

  /** B8: the event, to every connection subscribed to BACKGROUND_JOB. */
  private backgroundJob(jobUuid: string, command: string, arg: string, body: string): void {
    const now = Date.now();
    const headers = [
      ['Event-Name', 'BACKGROUND_JOB'], ['Core-UUID', '94abeddf-d79d-4864-98a7-141a350b9ac2'], ['FreeSWITCH-Hostname', 'vm'],
      ['FreeSWITCH-Switchname', 'vm'], ['FreeSWITCH-IPv4', '192.0.2.2'], ['FreeSWITCH-IPv6', 'fd00::2'],
      ['Event-Date-Timestamp', String(now * 1000)], ['Event-Calling-File', 'mod_event_socket.c'],
      ['Event-Calling-Function', 'api_exec'], ['Event-Calling-Line-Number', '1580'], ['Event-Sequence', String(now % 100000)],
      ['Job-UUID', jobUuid], ['Job-Command', command], ['Job-Command-Arg', arg],
    ].map(([n, v]) => `${n}: ${fsUrlEncode(v)}\n`).join('');
    const event = `${headers}Content-Length: ${Buffer.byteLength(body)}\n\n${body}`;
    for (const socket of this.subscribers) {
      if (!socket.destroyed) socket.write(`Content-Length: ${Buffer.byteLength(event)}\nContent-Type: text/event-plain\n\n${event}`);
    }
  }

  private api(command: string): string {
    const [name, ...args] = command.split(' ');
    if (name === 'uuid_kill') {
      const [uuid = '', cause = 'NORMAL_CLEARING'] = args;
      if (!this.channels.has(uuid)) return '-ERR No such channel!\n';
      this.channels.delete(uuid);
      this.kills.push({ uuid, cause });
      this.options.onKill?.(uuid, cause);
      return '+OK\n';
    }
    if (name === 'uuid_exists') return this.channels.has(args[0] ?? '') ? 'true' : 'false';
    if (name === 'uuid_displace') {
      const [uuid = '', action = '', file = ''] = args;
      if (action !== 'start' || !file) return '-USAGE: <uuid> [start|stop] <path> [<limit>] [mux]\n';
      const reply = !this.channels.has(uuid) ? '-ERR Cannot locate session!\n' : (this.options.onDisplace?.(uuid, file) ?? '+OK Success\n');
      this.displaces.push({ uuid, file, reply });
      return reply;
    }
    if (name === 'uuid_broadcast') {
      const [uuid = '', file = '', legs = 'aleg'] = args;
      this.broadcasts.push({ uuid, file, legs });
      return '+OK Message Sent\n';
    }
    return `-ERR ${name} Command not found!\n`;
  }
}
