/**
 * The floor FREESWITCH.md measures against: a bare modesl controller (myevents, two `set`, one
 * `bridge`, `hangup`), with TCP_NODELAY set as each socket is accepted. No database, no routing,
 * no CDR. Run as a child process by bench/run.ts: `node dist/bench/baseline-modesl.js <port>`.
 */
import net from 'node:net';
import esl from 'modesl';

const port = Number(process.argv[2] ?? 8086);
const server = net.createServer({ noDelay: true });
// Registered before modesl's Server adds its own 'connection' listener (in the listen callback
// below), so TCP_NODELAY is set before modesl's first write (`connect`).
server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));
server.listen(port, '127.0.0.1', () => {
  const modesl = esl as unknown as { Server: new (opts: object) => { on(e: string, fn: (conn: ModeslConn) => void): void } };
  const eslServer = new modesl.Server({ server, myevents: true });
  // modesl re-emits socket errors on the connection; without a listener EventEmitter2 throws.
  eslServer.on('connection::open', (conn: ModeslConn) => conn.on('error', () => undefined));
  eslServer.on('connection::ready', (conn: ModeslConn) => {
    conn.execute('set', 'continue_on_fail=true', () => {
      conn.execute('set', 'hangup_after_bridge=true', () => {
        conn.execute('bridge', '{leg_timeout=15}sofia/gateway/carrier/13800000001', () => {
          conn.execute('hangup', 'NORMAL_CLEARING', () => undefined);
        });
      });
    });
  });
  process.send?.('ready');
});

interface ModeslConn {
  on(event: string, fn: (...args: unknown[]) => void): void;
  execute(app: string, arg: string, cb: () => void): void;
}
