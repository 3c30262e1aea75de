/**
 * The protocol's ceiling: a controller with no ESL library and no decisions, doing the least a
 * call needs: `connect`, `myevents`, `set continue_on_fail`, `set hangup_after_bridge`, `bridge`,
 * `hangup`, close. A plain net server with TCP_NODELAY, framing only as far as it must (the blank
 * line, Content-Length, the bridge's completion), one write per batch of commands.
 *
 * Two ways, chosen by the second argument:
 *  - `pipelined` (the ceiling): after the connect reply, myevents + set + set + bridge in ONE
 *    write, since FreeSWITCH answers a socket's commands in order and runs its applications in
 *    order; then hangup when the bridge completes (or the call is gone).
 *  - `serial`: each command waits for its reply and each application for its completion, as
 *    modesl's callbacks do: the same dependency chain as bench/baseline-modesl.ts without modesl.
 *
 * `node dist/bench/ceiling.js <port> [pipelined|serial]`, run as a child process by the benches.
 */
import net from 'node:net';

const port = Number(process.argv[2] ?? 8086);
const pipelined = (process.argv[3] ?? 'pipelined') === 'pipelined';
const DIAL = '{leg_timeout=15}sofia/gateway/carrier/13800000001';
let sequence = 0;

function sendmsg(uuid: string, app: string, arg: string, id: string): string {
  return `sendmsg ${uuid}\ncall-command: execute\nexecute-app-name: ${app}\nEvent-UUID: ${id}\ncontent-type: text/plain\ncontent-length: ${Buffer.byteLength(arg)}\n\n${arg}`;
}

class Call {
  private pending: Buffer | null = null;
  private uuid = '';
  private step = 0;
  private readonly ids: string[];
  private ended = false;

  constructor(private readonly socket: net.Socket) {
    const n = ++sequence;
    // Event-UUIDs only need to be unique on this socket for the completion to be matched.
    this.ids = ['set1', 'set2', 'bridge', 'hangup'].map((s) => `${s}-${process.pid}-${n}`);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.write('connect\n\n');
  }

  private onData(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    for (;;) {
      const end = buf.indexOf('\n\n');
      if (end < 0) break;
      // Events start with Content-Length; disconnect notices carry it last; replies not at all.
      let length = 0;
      const event = buf.length > 16 && buf.toString('latin1', 0, 16) === 'Content-Length: ';
      if (event) {
        length = Number(buf.toString('latin1', 16, buf.indexOf('\n')));
      } else {
        const at = buf.indexOf('\nContent-Length: ');
        if (at >= 0 && at < end) length = Number(buf.toString('latin1', at + 17, buf.indexOf('\n', at + 17)));
      }
      if (buf.length < end + 2 + length) break;
      this.onMessage(buf, end, length, event);
      buf = buf.subarray(end + 2 + length);
    }
    if (buf.length > 0) this.pending = Buffer.from(buf);
  }

  private onMessage(buf: Buffer, end: number, length: number, event: boolean): void {
    if (this.ended) return;
    if (this.step === 0) {
      // The connect reply: the channel's UUID is all we need from its 6 KB of headers.
      const at = buf.indexOf('\nUnique-ID: ');
      if (at < 0 || at > end) return;
      this.uuid = buf.toString('latin1', at + 12, buf.indexOf('\n', at + 12));
      this.step = 1;
      if (pipelined) {
        this.socket.write(
          `myevents\n\n${sendmsg(this.uuid, 'set', 'continue_on_fail=true', this.ids[0])}${sendmsg(this.uuid, 'set', 'hangup_after_bridge=true', this.ids[1])}${sendmsg(this.uuid, 'bridge', DIAL, this.ids[2])}`,
        );
        this.step = 5;
      } else {
        this.socket.write('myevents\n\n');
      }
      return;
    }
    if (!event) {
      const head = buf.toString('latin1', 0, end);
      if (head.startsWith('Content-Type: text/disconnect-notice') && head.includes('Content-Disposition: disconnect')) this.finish();
      else if (!pipelined && this.step === 1 && head.startsWith('Content-Type: command/reply')) {
        // serial: the reply to myevents → set 1; each completion → the next application.
        this.socket.write(sendmsg(this.uuid, 'set', 'continue_on_fail=true', this.ids[0]));
        this.step = 2;
      }
      return;
    }
    if (buf.toString('latin1', end + 2, end + 2 + 36) !== 'Event-Name: CHANNEL_EXECUTE_COMPLETE') return;
    if (pipelined) {
      if (this.completes(buf, end, length, this.ids[2])) this.hangup();
      return;
    }
    if (this.step >= 2 && this.step <= 4 && this.completes(buf, end, length, this.ids[this.step - 2])) {
      if (this.step === 2) this.socket.write(sendmsg(this.uuid, 'set', 'hangup_after_bridge=true', this.ids[1]));
      else if (this.step === 3) this.socket.write(sendmsg(this.uuid, 'bridge', DIAL, this.ids[2]));
      else this.hangup();
      this.step++;
    }
  }

  /** The completion's Application-UUID is the last header: look at the end of the body only. */
  private completes(buf: Buffer, end: number, length: number, id: string): boolean {
    const stop = end + 2 + length;
    const at = buf.indexOf(id, Math.max(end + 2, stop - 120));
    return at >= 0 && at < stop;
  }

  private hangup(): void {
    this.socket.write(sendmsg(this.uuid, 'hangup', 'NORMAL_CLEARING', this.ids[3]));
    this.finish();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.end();
  }
}

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.setNoDelay(true);
  new Call(socket);
});
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => process.send?.('ready'));
process.on('SIGTERM', () => process.exit(0));
