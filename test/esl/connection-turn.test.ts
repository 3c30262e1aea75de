/**
 * EslConnection.flushAtEndOfTurn: the commands of a tick leave at the end of the turn, together
 * with a command an immediate queued before adds (the first bridge once SQLite's caller memory has
 * answered), in one socket write; without it each tick's commands leave at the end of their tick.
 * The flag holds for one tick only. Real loopback sockets; the daemon's side's writes are counted.
 */
import net from 'node:net';
import t, { type Test } from 'tap';
import { EslConnection } from '../../src/esl/connection';
import { until } from '../helpers/wait';

async function pair(t: Test): Promise<{ conn: EslConnection; writes: string[]; received: () => string }> {
  const peers: net.Socket[] = [];
  let got = '';
  const server = net.createServer((s) => {
    peers.push(s);
    s.on('data', (b: Buffer) => (got += b.toString()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', r));
  t.teardown(() => {
    socket.destroy();
    for (const p of peers) p.destroy();
    server.close();
  });
  const writes: string[] = [];
  const write = (data: string): boolean => net.Socket.prototype.write.call(socket, data);
  socket.write = ((data: string) => {
    writes.push(data);
    return write(data);
  });
  return { conn: new EslConnection(socket), writes, received: () => got };
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(() => setImmediate(r)));

t.test('without it: the tick\'s commands in one write, a command of a later immediate in another', async (t) => {
  const { conn, writes } = await pair(t);
  setImmediate(() => conn.write('sendmsg', undefined, 'bridge'));
  conn.write('myevents plain');
  conn.write('sendmsg', { 'event-lock': 'true' }, 'playback');
  await nextTurn();
  t.equal(writes.length, 2);
  t.match(writes[0], /^myevents plain\n\nsendmsg\nevent-lock: true\n/);
  t.match(writes[1], /bridge$/);
});

t.test('with it: the tick\'s commands and the immediate\'s in one write, in the order written', async (t) => {
  const { conn, writes, received } = await pair(t);
  setImmediate(() => conn.write('sendmsg', undefined, 'bridge')); // queued before: caller memory's batch
  conn.write('myevents plain');
  conn.flushAtEndOfTurn();
  conn.write('sendmsg', { 'event-lock': 'true' }, 'playback');
  await nextTurn();
  t.equal(writes.length, 1, 'one write');
  t.match(writes[0], /^myevents plain\n\nsendmsg\nevent-lock: true\n[^]*playback[^]*sendmsg\n[^]*bridge$/);
  await until('the peer has read the write', () => received().length >= writes[0].length);
  t.equal(received(), writes[0], 'and the peer got those bytes');
});

t.test('with it and no later command: the tick\'s commands still leave in the same turn', async (t) => {
  const { conn, writes } = await pair(t);
  conn.flushAtEndOfTurn();
  conn.write('myevents plain');
  await nextTurn();
  t.equal(writes.length, 1, 'written by the end of the turn');
});

t.test('the flag does not outlive its tick: a later command leaves at the end of its own tick', async (t) => {
  const { conn, writes } = await pair(t);
  conn.flushAtEndOfTurn(); // nothing written in this tick
  await new Promise<void>((r) => setTimeout(r, 5));
  conn.write('sendmsg', undefined, 'bridge');
  await new Promise<void>((r) => process.nextTick(r));
  t.equal(writes.length, 1, 'written at the end of the tick, not held to an immediate');
});
