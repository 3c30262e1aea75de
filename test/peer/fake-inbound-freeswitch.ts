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
 *     anything else `-ERR <cmd> Command not found!\n`;
 *  B4 a command before auth → `Content-Type: command/reply\nReply-Text: -ERR command not found\n\n`;
 *  B5 `exit` → close.
 */
import net from 'node:net';

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
  /** Called when a channel is killed (e.g. to end the call in the outbound stand-in). */
  onKill?: (uuid: string, cause: string) => void;
}

export class FakeInboundFreeSwitch {
  readonly commands: InboundCommand[] = [];
  readonly kills: Array<{ uuid: string; cause: string }> = [];
  readonly broadcasts: Array<{ uuid: string; file: string; legs: string }> = [];
  readonly channels: Set<string>;
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
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.connections++;
    this.sockets.add(socket);
    const index = this.received.push(Buffer.alloc(0)) - 1;
    socket.on('close', () => this.sockets.delete(socket));
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
          socket.end();
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
        }
      }
    });
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
    if (name === 'uuid_broadcast') {
      const [uuid = '', file = '', legs = 'aleg'] = args;
      this.broadcasts.push({ uuid, file, legs });
      return '+OK Message Sent\n';
    }
    return `-ERR ${name} Command not found!\n`;
  }
}
