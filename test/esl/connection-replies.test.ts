/**
 * EslConnection's replies: one FIFO of waiters and one timer for the socket, not a timer a
 * command. Assumption named: FreeSWITCH answers the commands of one socket in order
 * (mod_event_socket.c parse_command), so the oldest command's reply is the first that can be late.
 */
import net from 'node:net';
import t, { type Test } from 'tap';
import { until } from '../helpers/wait';
import { EslConnection, type ReplyWaiter } from '../../src/esl/connection';
import { EslProtocolError, EslTimeoutError, SocketClosedError, UnsafeValueError } from '../../src/esl/errors';
import type { EslEvent } from '../../src/esl/event';

const OK = 'Content-Type: command/reply\nReply-Text: +OK\n\n';

async function pair(t: Test, replyTimeoutMs: number): Promise<{ conn: EslConnection; peer: net.Socket; received: () => string }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  peer.on('error', () => undefined);
  let text = '';
  peer.on('data', (c: Buffer) => (text += c.toString()));
  t.teardown(() => peer.destroy());
  const socket = await accepted;
  socket.on('error', () => undefined);
  t.teardown(() => socket.destroy());
  return { conn: new EslConnection(socket, { replyTimeoutMs }), peer, received: () => text };
}

/** A waiter that records how it was settled, and when (performance.now()). */
class Recorder implements ReplyWaiter {
  readonly settled: Array<{ how: 'reply' | 'fail'; value: EslEvent | Error; at: number }> = [];
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor(readonly command: string) {
    this.done = new Promise((r) => (this.finish = r));
  }

  reply(reply: EslEvent): void {
    this.settled.push({ how: 'reply', value: reply, at: performance.now() });
    this.finish();
  }

  fail(err: Error): void {
    this.settled.push({ how: 'fail', value: err, at: performance.now() });
    this.finish();
  }
}

t.test('a command written after the first was answered gets its own full reply timeout from the one timer', async (t) => {
  const { conn, peer, received } = await pair(t, 300);
  const first = new Recorder('first');
  conn.request(undefined, undefined, first);
  await new Promise((r) => setTimeout(r, 20));
  peer.write(OK);
  await first.done;
  t.equal(first.settled[0]?.how, 'reply');
  // The timer armed for `first` is due 300 ms after it was written; `second` is written 200 ms
  // later and must have its own 300 ms: the timer, finding it not yet due, is armed again.
  await new Promise((r) => setTimeout(r, 200));
  const second = new Recorder('second');
  const writtenAt = performance.now();
  conn.request(undefined, undefined, second);
  await second.done;
  t.equal(second.settled.length, 1);
  const [outcome] = second.settled;
  t.type(outcome?.value, EslTimeoutError);
  t.ok(outcome.at - writtenAt >= 298, `timed out ${(outcome.at - writtenAt).toFixed(1)} ms after it was written, not before its 300 ms`);
  t.match(received(), /^first\n\nsecond\n\n$/);
});

t.test('no reply in time: the oldest fails with EslTimeoutError, those behind it with SocketClosedError, the socket is dropped, each waiter settled once', async (t) => {
  const { conn } = await pair(t, 80);
  const waiters = ['myevents plain', 'linger 5', 'nixevent CHANNEL_CREATE'].map((c) => new Recorder(c));
  for (const w of waiters) conn.request(undefined, undefined, w);
  t.equal(conn.awaitingReplies, 3);
  const closed = new Promise<number>((r) => conn.once('esl::close', () => r(waiters.filter((w) => w.settled.length > 0).length)));
  await Promise.all(waiters.map((w) => w.done));
  const [late, ...behind] = waiters;
  t.type(late.settled[0]?.value, EslTimeoutError);
  t.match((late.settled[0]?.value), { command: 'myevents plain', timeoutMs: 80, code: 'ESL_TIMEOUT' });
  for (const w of behind) {
    t.type(w.settled[0]?.value, SocketClosedError);
    t.match(w.settled[0]?.value, { command: w.command, code: 'ESL_SOCKET_CLOSED' });
  }
  t.equal(conn.awaitingReplies, 0);
  t.equal(conn.socket.destroyed, true, 'a socket FreeSWITCH stopped answering is given up');
  t.equal(await closed, 3, 'every waiter was settled before esl::close');
  await new Promise((r) => setTimeout(r, 150));
  t.same(waiters.map((w) => w.settled.length), [1, 1, 1], 'settled once each');
});

t.test('a reply read after its command timed out goes to no other command', async (t) => {
  const { conn } = await pair(t, 50);
  const late = new Recorder('api status');
  const behind = new Recorder('sendmsg');
  conn.request(undefined, undefined, late);
  conn.request(undefined, undefined, behind);
  await late.done;
  // Bytes read before the socket was dropped may still be handled after it, ahead of its close
  // (deferred input queues both behind other calls'): the late reply, as the socket's listener
  // receives it, before the close is handled.
  conn.socket.emit('data', Buffer.from(OK));
  await behind.done;
  t.equal(conn.stats.unexpectedReplies, 1, 'counted as a reply nobody waited for');
  t.same(behind.settled.map((s) => s.how), ['fail'], 'the command behind was not handed the late reply');
});

t.test('the socket closing fails every waiter with its own command named, before esl::close', async (t) => {
  const { conn, peer } = await pair(t, 5000);
  const a = new Recorder('a');
  const b = new Recorder('b');
  conn.request(undefined, undefined, a);
  conn.request(undefined, undefined, b);
  const order: string[] = [];
  conn.once('esl::close', () => order.push(`close after ${[a, b].filter((w) => w.settled.length > 0).length} settled`));
  conn.socket.resume();
  peer.end();
  await Promise.all([a.done, b.done]);
  await new Promise((r) => setImmediate(r));
  t.match(a.settled[0]?.value, { command: 'a', code: 'ESL_SOCKET_CLOSED' });
  t.match(b.settled[0]?.value, { command: 'b', code: 'ESL_SOCKET_CLOSED' });
  t.same(order, ['close after 2 settled']);
});

t.test('a stream that could not be framed fails the waiters with the framer\'s error', async (t) => {
  const { conn, peer } = await pair(t, 5000);
  const a = new Recorder('a');
  conn.request(undefined, undefined, a);
  conn.on('esl::protocol-error', () => undefined);
  peer.write('Content-Length: x\nContent-Type: command/reply\n\n');
  await a.done;
  t.type(a.settled[0]?.value, EslProtocolError);
  t.equal(a.settled[0]?.value, conn.framer.broken);
});

t.test('a waiter that throws when failed is counted; the others are still failed', async (t) => {
  const { conn, peer } = await pair(t, 5000);
  const thrower: ReplyWaiter = {
    command: 'a',
    reply: () => undefined,
    fail: () => {
      throw new Error('bug in a waiter');
    },
  };
  const b = new Recorder('b');
  const listenerErrors: unknown[] = [];
  conn.on('esl::listener-error', (err) => listenerErrors.push(err));
  conn.request(undefined, undefined, thrower);
  conn.request(undefined, undefined, b);
  conn.socket.resume();
  peer.end();
  await b.done;
  t.type(b.settled[0]?.value, SocketClosedError);
  t.equal(conn.stats.listenerErrors, 1);
  t.match(listenerErrors, [{ message: 'bug in a waiter' }]);
});

t.test('a command that cannot be written throws and waits for nothing', async (t) => {
  const { conn } = await pair(t, 5000);
  conn.socket.destroy();
  const a = new Recorder('a');
  t.throws(() => conn.request(undefined, undefined, a), SocketClosedError);
  t.equal(conn.awaitingReplies, 0);
});

t.test('a command refused for an unsafe value leaves no piece of itself in the stream; the commands around it leave as written', async (t) => {
  const { conn, peer, received } = await pair(t, 5000);
  const before = new Recorder('before');
  const after = new Recorder('sendmsg u-1');
  conn.request(undefined, undefined, before);
  for (const [headers, body] of [[{ 'call-command': 'execute', 'execute-app-name': 'set', 'Event-UUID': 'x\r\nevil: 1' }, 'a=1'], [{ 'bad\nname': 'v' }, undefined], [{ ok: 'fine', later: 'bad\u0000' }, 'b']] as const) {
    const refused = new Recorder('sendmsg u-1');
    t.throws(() => conn.request(headers, body, refused), UnsafeValueError);
  }
  conn.request({ 'call-command': 'execute', 'execute-app-name': 'playback', 'Event-UUID': 'e-1' }, '/greeting.wav', after);
  t.equal(conn.awaitingReplies, 2, 'only the two commands written wait for replies');
  const expected = 'before\n\nsendmsg u-1\ncall-command: execute\nexecute-app-name: playback\nEvent-UUID: e-1\ncontent-type: text/plain\ncontent-length: 13\n\n/greeting.wav';
  await until('both commands reached the peer', () => received().length >= expected.length);
  t.equal(received(), expected);
  peer.write(OK + OK);
  await Promise.all([before.done, after.done]);
  t.same([before, after].map((w) => w.settled[0]?.how), ['reply', 'reply']);
});
