// The inbound event-socket client (warn and cut live calls) against a stand-in that is checked,
// byte for byte, against real FreeSWITCH traffic (test/fixtures/esl/inbound-auth-api-bgapi.log).
import net from 'node:net';
import t, { type Test } from 'tap';
import { until } from '../helpers/wait';
import { EslAuthError, FreeSwitchInbound, callUuid } from '../../src/billing/freeswitch-inbound';
import { readCapture, streamOf } from '../peer/fixtures';
import { FakeInboundFreeSwitch } from '../peer/fake-inbound-freeswitch';

const capture = readCapture('inbound-auth-api-bgapi.log');
const [wrongPassword, rightPassword] = capture.connections;
const UNKNOWN = '00000000-0000-0000-0000-000000000000';

async function fake(t: Test, options: ConstructorParameters<typeof FakeInboundFreeSwitch>[0] = {}): Promise<{ fs: FakeInboundFreeSwitch; port: number }> {
  const fs = new FakeInboundFreeSwitch(options);
  const port = await fs.listen();
  t.teardown(() => fs.close());
  return { fs, port };
}

/**
 * Raw client: reads the greeting, then sends each step and reads its reply. Each reply is read
 * until it holds as many bytes as the capture's (or the peer closed), within a bound, not for a
 * fixed quiet time: a loaded machine's stall made a 150 ms quiet time cut replies short by chance.
 * Bytes beyond what was expected stay in that reply, so an extra byte still fails the comparison.
 */
async function converse(port: number, steps: Buffer[], expected: string[]): Promise<Buffer[]> {
  const socket = net.connect(port, '127.0.0.1');
  let current: Buffer[] = [];
  let arrived = 0;
  let closed = false;
  socket.on('data', (b: Buffer) => {
    current.push(b);
    arrived += b.length;
  });
  socket.once('close', () => (closed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const replies: Buffer[] = [];
  const read = async (want: number): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (arrived < want && !closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    // A short grace for anything the peer wrongly sends beyond the capture's bytes.
    await new Promise((r) => setTimeout(r, 20));
    replies.push(Buffer.concat(current));
    current = [];
    arrived = 0;
  };
  await read(Buffer.byteLength(expected[0], 'latin1'));
  for (const [i, step] of steps.entries()) {
    socket.write(step);
    await read(Buffer.byteLength(expected[i + 1] ?? '', 'latin1'));
  }
  socket.destroy();
  return replies;
}

/** What FreeSWITCH sent before the first command and after each, from a capture's connection. */
function repliesOf(connection: typeof wrongPassword): string[] {
  const replies = [''];
  for (const chunk of connection) {
    if (chunk.direction === 'CTL->FS') replies.push('');
    else replies[replies.length - 1] += chunk.bytes.toString('latin1');
  }
  return replies;
}

void t.test('the stand-in answers as FreeSWITCH did: wrong password', async (t) => {
  const { port } = await fake(t);
  const sent = wrongPassword.filter((c) => c.direction === 'CTL->FS').map((c) => c.bytes);
  const replies = await converse(port, sent, repliesOf(wrongPassword));
  t.same(Buffer.concat(replies).toString('latin1'), streamOf(wrongPassword, 'FS->CTL').toString('latin1'), 'auth/request, -ERR invalid, disconnect notice: identical bytes');
});

void t.test('the stand-in answers as FreeSWITCH did: auth, then api uuid_kill of an unknown channel', async (t) => {
  const { port } = await fake(t);
  const ctl = rightPassword.filter((c) => c.direction === 'CTL->FS').map((c) => c.bytes.toString('latin1'));
  const fsChunks = rightPassword.filter((c) => c.direction === 'FS->CTL').map((c) => c.bytes.toString('latin1'));
  // The capture's client (modesl) wrote "auth ClueCon\n" and "\n" separately, then subscribed to
  // events (which we never do): send auth, then the kill, as bytes taken from the capture.
  const auth = ctl[0] + ctl[1];
  const kill = ctl.find((c) => c.includes('api uuid_kill'))!.replace(/^\n/, '');
  const apiResponse = fsChunks.find((c) => c.includes('api/response'))!;
  const replies = await converse(port, [Buffer.from(auth, 'latin1'), Buffer.from(kill, 'latin1')], [fsChunks[0], fsChunks[1], apiResponse]);
  t.equal(replies[0].toString('latin1'), fsChunks[0], 'auth/request');
  t.equal(replies[1].toString('latin1'), fsChunks[1], '+OK accepted');
  t.equal(replies[2].toString('latin1'), apiResponse, 'api/response -ERR No such channel!');
});

void t.test('the client writes what modesl wrote for auth and api, in one write per command, and no event subscription', async (t) => {
  const { fs, port } = await fake(t);
  const client = await FreeSwitchInbound.connect({ host: '127.0.0.1', port, password: 'ClueCon', timeoutMs: 2000 });
  t.equal(await client.killCall(UNKNOWN, 'CALL_REJECTED'), 'gone', '-ERR No such channel! = the call is gone');
  client.close();
  await until('the exit on close reached the server', () => /exit\n\n$/.test(fs.received[0]?.toString('latin1') ?? ''));
  const ctl = streamOf(rightPassword, 'CTL->FS').toString('latin1');
  const received = fs.received[0].toString('latin1');
  t.ok(ctl.startsWith('auth ClueCon\n\n'), 'capture starts with the auth');
  t.ok(received.startsWith('auth ClueCon\n\n'), 'so do we');
  t.ok(ctl.includes(`api uuid_kill ${UNKNOWN} CALL_REJECTED\n\n`));
  t.ok(received.includes(`api uuid_kill ${UNKNOWN} CALL_REJECTED\n\n`), 'the same api line');
  t.notMatch(received, /^event /m, 'no `event json …` subscription (it would stream every channel on the box)');
  t.match(received, /exit\n\n$/, 'exit on close');
});

void t.test('kill, broadcast, wrong password', async (t) => {
  const killed: string[] = [];
  const { fs, port } = await fake(t, { password: 's3cret', channels: ['abc-1', 'abc-2'], onKill: (u) => killed.push(u) });
  await t.rejects(FreeSwitchInbound.connect({ host: '127.0.0.1', port, password: 'wrong', timeoutMs: 2000 }), EslAuthError, 'wrong password: EslAuthError');
  const client = await FreeSwitchInbound.connect({ host: '127.0.0.1', port, password: 's3cret', timeoutMs: 2000 });
  t.teardown(() => client.close());
  t.equal(await client.broadcast('abc-1', '/sounds/hotline/capped.wav'), true);
  t.same(fs.broadcasts, [{ uuid: 'abc-1', file: '/sounds/hotline/capped.wav', legs: 'both' }]);
  // Two at once: serialised, each gets its own reply.
  const [a, b] = await Promise.all([client.killCall('abc-1', 'OUTGOING_CALL_BARRED'), client.killCall('abc-9', 'OUTGOING_CALL_BARRED')]);
  t.equal(a, 'killed');
  t.equal(b, 'gone');
  t.same(killed, ['abc-1']);
  t.same(fs.kills, [{ uuid: 'abc-1', cause: 'OUTGOING_CALL_BARRED' }]);
  t.equal(await client.api('no_such_command'), '-ERR no_such_command Command not found!\n');
});

void t.test('nothing from a table or a caller reaches a command unchecked', async (t) => {
  const { fs, port } = await fake(t, { channels: ['x'] });
  const client = await FreeSwitchInbound.connect({ host: '127.0.0.1', port, password: 'ClueCon', timeoutMs: 2000 });
  t.teardown(() => client.close());
  await t.rejects(client.killCall('x\n\napi system rm', 'NORMAL_CLEARING'), { code: 'ESL_UNSAFE_VALUE' });
  await t.rejects(client.killCall('x', 'CAUSE; rm'), { code: 'ESL_UNSAFE_VALUE' });
  await t.rejects(client.broadcast('x', '${system(rm -rf /)}'), { code: 'ESL_UNSAFE_VALUE' });
  await t.rejects(client.api('status\n\napi shutdown'), { code: 'ESL_UNSAFE_VALUE' });
  t.throws(() => callUuid(''), { code: 'ESL_UNSAFE_VALUE' });
  t.same(fs.kills, []);
  t.notOk(fs.commands.some((c) => /rm|shutdown/.test(c.line)), 'none of it was sent');
  t.throws(() => void FreeSwitchInbound.connect({ host: '127.0.0.1', port, password: 'a\nb', timeoutMs: 100 }), { code: 'ESL_UNSAFE_VALUE' });
});

void t.test('timeouts: a FreeSWITCH that never replies, never asks for auth, or is not there', async (t) => {
  const { port } = await fake(t, { silent: true });
  // 2 s: enough for the connect and the auth round trip on a loaded machine; the kill then waits it out.
  const client = await FreeSwitchInbound.connect({ host: '127.0.0.1', port, password: 'ClueCon', timeoutMs: 2000 });
  const started = Date.now();
  await t.rejects(client.killCall('abc', 'NORMAL_CLEARING'), { code: 'ESL_TIMEOUT' });
  // Bounded: well under the test's own timeout (the 2 s itself is not asserted: a loaded machine may be slow).
  t.ok(Date.now() - started < 15_000, `bounded (${Date.now() - started} ms)`);
  await t.rejects(client.api('status'), { code: 'ESL_SOCKET_CLOSED' }, 'the connection is given up after a lost reply');

  const mute = net.createServer(() => undefined);
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => mute.close(() => r())));
  const mutePort = (mute.address() as net.AddressInfo).port;
  await t.rejects(FreeSwitchInbound.connect({ host: '127.0.0.1', port: mutePort, password: 'x', timeoutMs: 200 }), { code: 'ESL_TIMEOUT' });

  const closedPort = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  await t.rejects(FreeSwitchInbound.connect({ host: '127.0.0.1', port: closedPort, password: 'x', timeoutMs: 5000 }), { code: 'ECONNREFUSED' }, 'refused, not timed out');
});
