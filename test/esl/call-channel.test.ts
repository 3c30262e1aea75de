/**
 * EslCallChannel against a scripted FreeSWITCH that misbehaves on purpose: -ERR replies, no
 * reply, an application that never completes, hang-ups and closed sockets at awkward moments.
 * Assumption named: FreeSWITCH answers each command of a socket with one command/reply, in order.
 */
import net from 'node:net';
import t, { type Test } from 'tap';
import { until } from '../helpers/wait';
import { EslCallChannel, microseconds, type ChannelOptions } from '../../src/esl/call-channel';
import { CallHungUpError, EslCommandError, EslTimeoutError, SocketClosedError } from '../../src/esl/errors';

const UUID = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const CONNECT_REPLY = `Event-Name: CHANNEL_DATA\nUnique-ID: ${UUID}\nCaller-Caller-ID-Number: 13912345678\nCaller-Destination-Number: 4001012345\nContent-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n\n`;

function event(name: string, headers: Record<string, string> = {}, uuid = UUID): string {
  const body = Object.entries({ 'Event-Name': name, 'Unique-ID': uuid, ...headers }).map(([k, v]) => `${k}: ${encodeURIComponent(v)}\n`).join('') + '\n';
  return `Content-Length: ${Buffer.byteLength(body)}\nContent-Type: text/event-plain\n\n${body}`;
}

interface Fs {
  socket: net.Socket;
  /** Commands received so far (first line + headers). */
  received: string[];
  next(): Promise<string>;
}

/** Opens a channel whose FreeSWITCH side the test drives by hand. */
// Replies are bounded at 5 s by default: far beyond a loopback round trip, so a loaded machine's
// stall cannot time one out by chance. Tests of the bound itself pass their own.
async function setup(t: Test, replyTimeoutMs = 5000, afterConnectReply = '', appTimeoutMarginMs?: number, observe?: ChannelOptions['observe']): Promise<{ channel: EslCallChannel; fs: Fs }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const socket = net.connect(port, '127.0.0.1');
  const received: string[] = [];
  const waiters: Array<(c: string) => void> = [];
  let buf = '';
  socket.on('data', (c) => {
    buf += c.toString();
    for (;;) {
      const end = buf.indexOf('\n\n');
      if (end < 0) break;
      const head = buf.slice(0, end);
      const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 2 + len) break;
      const cmd = head + (len ? `\n\n${buf.slice(end + 2, end + 2 + len)}` : '');
      buf = buf.slice(end + 2 + len);
      received.push(cmd);
      const w = waiters.shift();
      if (w) w(cmd);
    }
  });
  socket.on('error', () => undefined);
  let seen = 0;
  const fs: Fs = {
    socket,
    received,
    next: () => (received.length > seen ? Promise.resolve(received[seen++]) : new Promise((r) => waiters.push((c) => { seen++; r(c); }))),
  };
  const sock = await accepted;
  const opening = EslCallChannel.open(sock, { replyTimeoutMs, lingerS: 5, appTimeoutMarginMs, observe });
  t.equal(await fs.next(), 'connect');
  socket.write(CONNECT_REPLY + afterConnectReply);
  const channel = await opening;
  t.teardown(() => {
    socket.destroy();
    channel.destroy();
    server.close();
  });
  return { channel, fs };
}

/** A channel whose observations (`<command> <result>`) the test reads. */
async function observed(t: Test, replyTimeoutMs: number): Promise<{ channel: EslCallChannel; fs: Fs; seen: string[] }> {
  const seen: string[] = [];
  const { channel, fs } = await setup(t, replyTimeoutMs, '', undefined, (command, _seconds, result) => seen.push(`${command} ${result}`));
  return { channel, fs, seen };
}

const ok = 'Content-Type: command/reply\nReply-Text: +OK\n\n';
const eventUuidOf = (cmd: string): string => /Event-UUID: (.+)/.exec(cmd)![1];

t.test('connect: channel data decoded, commands matched to replies', async (t) => {
  const { channel, fs } = await setup(t);
  t.equal(channel.uuid, UUID);
  t.equal(channel.data['Reply-Text'], '+OK\n');
  const sub = channel.subscribe();
  t.equal(await fs.next(), 'myevents plain');
  t.equal(await fs.next(), 'linger 5');
  t.match(await fs.next(), /^nixevent CHANNEL_CREATE .*CHANNEL_EXECUTE /);
  fs.socket.write('Content-Type: command/reply\nReply-Text: +OK Events Enabled\n\n' + 'Content-Type: command/reply\nReply-Text: +OK will linger 5 seconds\n\n' + 'Content-Type: command/reply\nReply-Text: +OK events nixed\n\n');
  await sub;
});

t.test('subscribe: one waiter for its three replies, each taken in order, the first failure what the caller gets', async (t) => {
  const reply = (text: string): string => `Content-Type: command/reply\nReply-Text: ${text}\n\n`;
  const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => 'resolved', (e: unknown) => `${(e as Error).constructor.name}: ${(e as Error).message}`);

  await t.test('myevents refused, the rest taken: rejects with the myevents refusal, observed under its name; the channel goes on', async (t) => {
    const { channel, fs, seen } = await observed(t, 5000);
    const sub = channel.subscribe();
    for (let i = 0; i < 3; i++) await fs.next();
    fs.socket.write(reply('-ERR no keywords supplied') + reply('+OK will linger 5 seconds') + reply('-ERR no keywords supplied'));
    t.equal(await outcome(sub), 'EslCommandError: "myevents plain" failed: -ERR no keywords supplied');
    t.same(seen, ['connect ok', 'myevents error', 'nixevent error'], 'each refusal observed under its own command');
    const next = channel.command('api status');
    await fs.next();
    fs.socket.write('Content-Type: api/response\nContent-Length: 3\n\nUP\n');
    t.equal(await outcome(next), 'resolved', 'the next command gets its own reply, not one of the group\'s');
  });

  await t.test('no reply in time: rejects with the timeout of the first, naming it; the socket is given up', async (t) => {
    const { channel, fs, seen } = await observed(t, 100);
    const sub = channel.subscribe();
    for (let i = 0; i < 3; i++) await fs.next();
    t.equal(await outcome(sub), 'EslTimeoutError: no answer to "myevents plain" within 100 ms');
    t.same(seen, ['connect ok', 'myevents timeout'], 'one timeout, the first command\'s');
    await until('the socket closed', () => channel.closed);
  });

  await t.test('the first two taken, then the socket closes: rejects naming the third', async (t) => {
    const { channel, fs } = await setup(t);
    const sub = channel.subscribe();
    for (let i = 0; i < 3; i++) await fs.next();
    fs.socket.end(reply('+OK Events Enabled') + reply('+OK will linger 5 seconds'));
    t.match(await outcome(sub), /^SocketClosedError: "nixevent CHANNEL_CREATE .*" not completed: socket closed$/);
  });

  await t.test('a closed channel: rejects at once, nothing written', async (t) => {
    const { channel, fs } = await setup(t);
    fs.socket.destroy();
    await until('the socket closed', () => channel.closed);
    t.equal(await outcome(channel.subscribe()), 'SocketClosedError: "myevents plain" not completed: socket closed');
  });
});

t.test('-ERR reply rejects with EslCommandError', async (t) => {
  const { channel, fs } = await setup(t);
  const p = channel.command('nixevent BOGUS');
  await fs.next();
  fs.socket.write('Content-Type: command/reply\nReply-Text: -ERR no keywords supplied\n\n');
  await t.rejects(p, EslCommandError);
});

t.test('no reply: EslTimeoutError, the socket is given up, later commands fail fast', async (t) => {
  const { channel } = await setup(t, 100);
  await t.rejects(channel.command('myevents plain'), EslTimeoutError);
  await until('the socket closed', () => channel.closed);
  t.equal(channel.closed, true);
  await t.rejects(channel.answer(), SocketClosedError);
});

t.test('an application that never completes times out; the channel stays usable', async (t) => {
  const { channel, fs } = await setup(t);
  const p = channel.execute('playback', '/x.wav', 150);
  await fs.next();
  fs.socket.write(ok);
  await t.rejects(p, EslTimeoutError);
  const q = channel.execute('answer', '', 1000);
  const cmd = await fs.next();
  fs.socket.write(ok + event('CHANNEL_EXECUTE_COMPLETE', { Application: 'answer', 'Application-UUID': eventUuidOf(cmd) }));
  t.equal((await q).getHeader('Application'), 'answer');
});

t.test('ESL_APP_TIMEOUT_MARGIN_MS: a completion late by less than the margin is taken, the bound reported includes it', async (t) => {
  const { channel, fs } = await setup(t, 5000, '', 2000);
  const p = channel.execute('playback', '/x.wav', 50);
  const cmd = await fs.next();
  fs.socket.write(ok);
  await new Promise((r) => setTimeout(r, 200)); // past the application's own 50 ms, well within 50 + 2000
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'playback', 'Application-UUID': eventUuidOf(cmd) }));
  t.equal((await p).getHeader('Application'), 'playback');
  const q = channel.execute('playback', '/y.wav', 50);
  await fs.next();
  fs.socket.write(ok);
  const err = await q.then(() => null, (e: unknown) => e);
  t.type(err, EslTimeoutError, 'never completed: given up after 50 + 2000 ms');
  t.match((err as Error).message, /2050 ms/);
});

t.test('completions are matched by Application-UUID, not by order or by name', async (t) => {
  const { channel, fs } = await setup(t);
  const a = channel.execute('set', 'a=1', 1000);
  const ca = await fs.next();
  fs.socket.write(ok);
  // Another channel's completion with our Application-UUID, then ours with another: both ignored.
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'set', 'Application-UUID': eventUuidOf(ca) }, 'ffffffff-0000-0000-0000-000000000000'));
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'socket', 'Application-UUID': 'not-ours' }));
  // Ours comes after them on the same stream: `a` completing with ours (its Application-Response)
  // shows the foreign ones, read first, did not complete it. No sleep needed to prove a negative.
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'set', 'Application-UUID': eventUuidOf(ca), 'Application-Response': '_none_' }));
  t.equal((await a).getHeader('Application-Response'), '_none_', 'completed by its own completion, not by the foreign events before it');
});

t.test('hang-up: the running app completes, queued ones reject at HANGUP_COMPLETE, new ones at once', async (t) => {
  const { channel, fs } = await setup(t);
  const bridge = channel.execute('bridge', 'sofia/gateway/carrier/138', 5000);
  const cb = await fs.next();
  fs.socket.write(ok);
  const queued = channel.execute('playback', '/after.wav', 5000);
  await fs.next();
  fs.socket.write(ok);
  fs.socket.write(event('CHANNEL_HANGUP', { 'Hangup-Cause': 'ORIGINATOR_CANCEL' }));
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'bridge', 'Application-UUID': eventUuidOf(cb), variable_DIALSTATUS: 'CANCEL' }));
  t.equal((await bridge).variable('DIALSTATUS'), 'CANCEL', 'the running bridge still reports');
  await t.rejects(channel.answer(), CallHungUpError, 'nothing new is sent after the hangup');
  fs.socket.write(event('CHANNEL_HANGUP_COMPLETE', { 'Hangup-Cause': 'ORIGINATOR_CANCEL' }));
  await t.rejects(queued, CallHungUpError);
  t.equal(channel.hangupCause, 'ORIGINATOR_CANCEL');
  await channel.waitForEnd(1000);
  t.ok(channel.hangupComplete);
});

t.test('socket closed mid-application: SocketClosedError, waitForEnd returns', async (t) => {
  const { channel, fs } = await setup(t);
  const p = channel.execute('bridge', 'x', 5000);
  await fs.next();
  fs.socket.write(ok);
  fs.socket.destroy();
  await t.rejects(p, SocketClosedError);
  await channel.waitForEnd(5000);
  t.equal(channel.closed, true);
});

t.test('kill is api uuid_kill on the call\'s own socket; +OK is killed, No such channel is gone', async (t) => {
  const { channel, fs } = await setup(t);
  const p = channel.kill('SYSTEM_SHUTDOWN');
  t.equal(await fs.next(), `api uuid_kill ${UUID} SYSTEM_SHUTDOWN`);
  fs.socket.write('Content-Type: api/response\nContent-Length: 4\n\n+OK\n');
  t.equal(await p, 'killed');
  const again = channel.kill('SYSTEM_SHUTDOWN');
  await fs.next();
  fs.socket.write('Content-Type: api/response\nContent-Length: 22\n\n-ERR No such channel!\n');
  t.equal(await again, 'gone', 'a channel that ended meanwhile');
});

t.test('api/response and command/reply are matched in ONE order (modesl keeps two queues)', async (t) => {
  const { channel, fs } = await setup(t);
  // In flight together: a sendmsg (command/reply), an api (api/response), a bgapi (command/reply).
  const exec = channel.execute('set', 'a=1', 1000);
  const kill = channel.kill('OUTGOING_CALL_BARRED');
  const warn = channel.broadcast('/sounds/capped.wav');
  const ce = await fs.next();
  t.match(ce, /^sendmsg /);
  t.match(await fs.next(), /^api uuid_kill /);
  t.equal(await fs.next(), `bgapi uuid_broadcast ${UUID} /sounds/capped.wav both`);
  // FreeSWITCH answers strictly in command order, whatever the kind (mod_event_socket.c).
  fs.socket.write(ok + 'Content-Type: api/response\nContent-Length: 4\n\n+OK\n' + 'Content-Type: command/reply\nReply-Text: +OK Job-UUID: 1b2c\n\n');
  t.equal(await kill, 'killed');
  await warn;
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'set', 'Application-UUID': eventUuidOf(ce) }));
  await exec;
});

t.test('claim: a variable multiset cannot carry is refused before anything is sent', async (t) => {
  const { channel, fs } = await setup(t);
  const before = fs.received.length;
  t.throws(() => channel.claim({ ringback: 'a b' }), /whitespace/);
  t.equal(channel.handled, false, 'not claimed');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(fs.received.length, before, 'nothing written: no myevents, no half claim');
});

t.test('an api -ERR other than a gone channel rejects with EslCommandError', async (t) => {
  const { channel, fs } = await setup(t);
  const p = channel.api('uuid_bogus x');
  await fs.next();
  fs.socket.write('Content-Type: api/response\nContent-Length: 33\n\n-ERR uuid_bogus Command not found!\n');
  await t.rejects(p, EslCommandError);
});

t.test('claim: subscribe and set hotline_handled=true (and the flow\'s variables) in one burst; release unsets it and closes without a hangup', async (t) => {
  const { channel, fs } = await setup(t);
  const claimed = channel.claim({ continue_on_fail: 'true' });
  t.equal(await fs.next(), 'myevents plain');
  t.equal(await fs.next(), 'linger 5');
  t.match(await fs.next(), /^nixevent /);
  const set = await fs.next();
  t.match(set, /^sendmsg [0-9a-f-]+\ncall-command: execute\nexecute-app-name: multiset\n.*\n\nhotline_handled=true continue_on_fail=true$/s, 'hotline_handled=true first, before anything else, in one application');
  fs.socket.write(ok + ok + ok + ok);
  await claimed;
  t.equal(channel.handled, true);
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'multiset', 'Application-UUID': eventUuidOf(set) }));
  const released = channel.release();
  const unset = await fs.next();
  t.match(unset, /execute-app-name: unset\n.*\n\nhotline_handled$/s);
  fs.socket.write(ok + event('CHANNEL_EXECUTE_COMPLETE', { Application: 'unset', 'Application-UUID': eventUuidOf(unset) }));
  await released;
  await new Promise<void>((r) => fs.socket.once('end', () => r()));
  t.notOk(fs.received.some((c) => /call-command: hangup|execute-app-name: hangup/.test(c)), 'never hung up');
});

t.test('release of a call never claimed: subscribes, runs `unset hotline_handled`, and closes only after its completion', async (t) => {
  // Assumed of FreeSWITCH (mod_event_socket.c socket_function / listener_run, switch_ivr_park):
  // the park starts after `connect` and sets CF_CONTROLLED, which the listener clears when the
  // socket ends; a completion comes from inside the park. A close before the park started would
  // leave the caller parked in silence instead of reaching the dialplan's fallback.
  const { channel, fs } = await setup(t);
  let ended = false;
  const end = new Promise<string>((r) => fs.socket.once('end', () => r('(socket closed)')));
  void end.then(() => (ended = true));
  const released = channel.release();
  const first = await Promise.race([fs.next(), end]);
  t.equal(first, 'myevents plain', 'subscribes first: the completion must reach the socket');
  if (first !== 'myevents plain') return;
  t.equal(await fs.next(), 'linger 5');
  t.match(await fs.next(), /^nixevent /);
  fs.socket.write(ok + ok + ok);
  const unset = await fs.next();
  t.match(unset, /execute-app-name: unset\n.*\n\nhotline_handled$/s, 'an application, run by the park loop');
  fs.socket.write(ok);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(ended, false, 'not closed before the completion: the park may not have started');
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'unset', 'Application-UUID': eventUuidOf(unset) }));
  await released;
  await end;
  t.notOk(fs.received.some((c) => /call-command: hangup|execute-app-name: hangup/.test(c)), 'never hung up');
  t.equal(channel.handled, false);
});

t.test('release when FreeSWITCH never completes the unset: closed after the reply timeout anyway', async (t) => {
  const { channel, fs } = await setup(t, 300);
  const started = Date.now();
  const end = new Promise<string>((r) => fs.socket.once('end', () => r('(socket closed)')));
  const released = channel.release();
  const first = await Promise.race([fs.next(), end]);
  t.equal(first, 'myevents plain');
  if (first !== 'myevents plain') return;
  for (let i = 0; i < 2; i++) await fs.next();
  fs.socket.write(ok + ok + ok);
  await fs.next();
  fs.socket.write(ok);
  await released;
  await end;
  t.ok(Date.now() - started < 5000, `bounded by the reply timeout (300 ms here): closed after ${Date.now() - started} ms`);
});

t.test('handshake: a peer that never sends channel data is refused in bounded time', async (t) => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  peer.on('error', () => undefined);
  const sock = await accepted;
  await t.rejects(EslCallChannel.open(sock, { replyTimeoutMs: 100, lingerS: 5 }), EslTimeoutError);
  peer.destroy();
  server.close();
});

t.test('events of other channels (Unique-ID `*` or another call) are ignored, whatever they say', async (t) => {
  const { channel, fs } = await setup(t);
  const bridge = channel.execute('bridge', 'sofia/gateway/carrier/138', 5000);
  const cb = await fs.next();
  fs.socket.write(ok);
  const answered = new Promise<void>((resolve) => channel.onAnswer(resolve));
  for (const uuid of ['*', 'ffffffff-0000-0000-0000-000000000000', '']) {
    fs.socket.write(event('CHANNEL_HANGUP', { 'Hangup-Cause': 'NORMAL_CLEARING' }, uuid));
    fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'bridge', 'Application-UUID': eventUuidOf(cb) }, uuid));
    fs.socket.write(event('CHANNEL_HANGUP_COMPLETE', { 'Hangup-Cause': 'NORMAL_CLEARING' }, uuid));
  }
  // Our own event after them: by the time it is seen, the foreign ones were read.
  fs.socket.write(event('CHANNEL_ANSWER', { 'Caller-Channel-Answered-Time': '1700000000000000' }));
  await answered;
  t.equal(channel.foreignEvents, 9, 'nine foreign events counted');
  t.equal(channel.hungUp, false, 'a foreign CHANNEL_HANGUP does not end this call');
  t.equal(channel.hangupComplete, null);
  t.equal(channel.answeredAtUs, 1700000000000000);
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'bridge', 'Application-UUID': eventUuidOf(cb), variable_DIALSTATUS: 'SUCCESS' }));
  t.equal((await bridge).variable('DIALSTATUS'), 'SUCCESS', 'the bridge completes with its own event only');
});

t.test('pipelined opening: a failed opening command fails the commands written behind it, not later ones', async (t) => {
  const { channel, fs } = await setup(t);
  const claimed = channel.claim();
  const greeting = channel.execute('playback', '/welcome.wav', 5000);
  t.equal(await fs.next(), 'myevents plain');
  t.equal(await fs.next(), 'linger 5');
  await fs.next(); // nixevent
  await fs.next(); // set hotline_handled
  await fs.next(); // the greeting, written before any reply came
  fs.socket.write('Content-Type: command/reply\nReply-Text: +OK Events Enabled\n\n' + 'Content-Type: command/reply\nReply-Text: -ERR command not found\n\n' + ok + ok + ok);
  await t.rejects(claimed, EslCommandError);
  await t.rejects(greeting, { code: 'ESL_COMMAND_FAILED', command: 'linger 5' }, 'the greeting fails with the opening\'s error');
  const after = channel.command('myevents plain');
  await fs.next();
  fs.socket.write(ok);
  t.ok(await after, 'a command written after the opening settled is answered normally');
});

t.test('the peer ends the socket before linger took effect: the caller hung up', async (t) => {
  const { channel, fs } = await setup(t);
  const hungUp = new Promise<void>((resolve) => channel.onHangupEvent(resolve));
  fs.socket.end();
  await hungUp;
  t.equal(channel.hungUp, true);
});

/** FreeSWITCH's disconnect notice, as in daemon-ivr-key-typed-during-invalid-prompt.log. */
const notice = (session: string): string =>
  `Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${session}\nContent-Disposition: linger\nChannel-Name: sofia/acc/13930009003@127.0.0.1:5070\nLinger-Time: 10\nContent-Length: 0\n\n`;

t.test('the disconnect notice is seen, also in the same read as the connect reply; another session\'s is not', async (t) => {
  const early = await setup(t, 5000, notice(UUID));
  t.equal(early.channel.disconnectNoticed, true, 'a notice that came with the connect reply (the caller hung up at once)');
  const { channel, fs } = await setup(t);
  t.equal(channel.disconnectNoticed, false);
  // Another session's notice, then a reply: once the reply is read, so was the notice before it.
  const p = channel.command('nixevent DTMF');
  await fs.next();
  fs.socket.write(notice('11111111-2222-3333-4444-555555555555') + ok);
  await p;
  t.equal(channel.disconnectNoticed, false, 'another session\'s notice is not this call\'s');
  fs.socket.write(notice(UUID));
  await until('the notice is read', () => channel.disconnectNoticed);
  t.equal(channel.disconnectNoticed, true);
});

t.test('FreeSWITCH µs stamps: only plain integers of at most 17 digits are times (any such is a valid Date)', async (t) => {
  t.equal(microseconds('1764643200000000'), 1764643200000000);
  for (const bad of [undefined, '', '0', '-5', '12abc', '1e20', '99999999999999999999', '999999999999999999', '99999999999999999']) t.equal(microseconds(bad), null, String(bad));
  const biggest = microseconds(String(Number.MAX_SAFE_INTEGER));
  t.ok(biggest !== null && !Number.isNaN(new Date(biggest / 1000).getTime()), 'the largest accepted stamp is a valid Date');
});

t.test('an application written behind an event-locked one waits in its queue: the locked one\'s bound counts into its own', async (t) => {
  const { channel, fs } = await setup(t);
  // A greeting bounded at 5 s written with event-lock, then an instant multiset (its own bound
  // 300 ms). The greeting's bound is far from the 500 ms it runs, so a slow machine cannot time it out.
  const greeting = channel.execute('playback', '/greeting.wav', 5000, true);
  const greetingCmd = await fs.next();
  t.match(greetingCmd, /\nevent-lock: true/, 'the lock travels as FreeSWITCH reads it');
  fs.socket.write(ok);
  const set = channel.execute('multiset', 'ringback=/r.wav', 300);
  const setCmd = await fs.next();
  t.notMatch(setCmd, /event-lock/);
  fs.socket.write(ok);
  t.equal(channel.pendingApplications, 2);
  // FreeSWITCH holds the multiset until the greeting ends, 500 ms on: past the multiset's own 300 ms.
  await new Promise((r) => setTimeout(r, 500));
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'playback', 'Application-UUID': eventUuidOf(greetingCmd) }));
  fs.socket.write(event('CHANNEL_EXECUTE_COMPLETE', { Application: 'multiset', 'Application-UUID': eventUuidOf(setCmd) }));
  t.equal((await greeting).getHeader('Application'), 'playback');
  t.equal((await set).getHeader('Application'), 'multiset', 'not given up on after its own 300 ms');
  t.equal(channel.pendingApplications, 0);
  // With nothing locked pending, the next one has its own bound only.
  const started = Date.now();
  const alone = channel.execute('multiset', 'a=1', 100);
  await fs.next();
  fs.socket.write(ok);
  const err = await alone.then(() => null, (e: unknown) => e);
  t.type(err, EslTimeoutError);
  t.ok(Date.now() - started < 4000, 'given up on after its own bound, not the greeting\'s');
});

t.test('observations: what each outcome of a command and an application is recorded as (hotline_esl_command_duration_seconds)', async (t) => {
  const seen: string[] = [];
  const observe: ChannelOptions['observe'] = (command, seconds, result) => {
    if (!(seconds >= 0)) t.fail(`${command}: ${seconds} s`);
    seen.push(`${command} ${result}`);
  };
  const { channel, fs } = await setup(t, 5000, '', undefined, observe);
  t.same(seen, ['connect ok']);
  const reply = (text: string): string => `Content-Type: command/reply\nReply-Text: ${text}\n\n`;
  const settled = (p: Promise<unknown>): Promise<string> => p.then(() => 'resolved', (e: unknown) => (e as Error).constructor.name);

  const plain = channel.command('myevents plain');
  await fs.next();
  fs.socket.write(reply('+OK Events Enabled'));
  t.equal(await settled(plain), 'resolved');
  const api = channel.api('status');
  await fs.next();
  fs.socket.write('Content-Type: api/response\nContent-Length: 3\n\nUP\n');
  t.equal(await settled(api), 'resolved');
  const refused = channel.command('nixevent BOGUS');
  await fs.next();
  fs.socket.write(reply('-ERR no keywords supplied'));
  t.equal(await settled(refused), 'EslCommandError');

  const answer = channel.execute('answer', '', 1000);
  const answerCmd = await fs.next();
  fs.socket.write(ok + event('CHANNEL_EXECUTE_COMPLETE', { Application: 'answer', 'Application-UUID': eventUuidOf(answerCmd) }));
  t.equal(await settled(answer), 'resolved');
  const notRun = channel.execute('playback', '/x.wav', 1000);
  await fs.next();
  fs.socket.write(reply('-ERR invalid session id'));
  t.equal(await settled(notRun), 'EslCommandError');
  t.equal(channel.pendingApplications, 0, 'a refused application is not left pending');
  const slow = channel.execute('playback', '/y.wav', 50);
  await fs.next();
  fs.socket.write(ok);
  t.equal(await settled(slow), 'EslTimeoutError');
  const bridge = channel.execute('bridge', 'user/1000', 5000);
  await fs.next();
  fs.socket.write(ok + event('CHANNEL_HANGUP_COMPLETE', { 'Hangup-Cause': 'NORMAL_CLEARING' }));
  t.equal(await settled(bridge), 'CallHungUpError');

  t.same(seen, ['connect ok', 'status ok', 'nixevent error', 'answer ok', 'sendmsg error', 'playback timeout', 'bridge hangup']);
});

t.test('observations: an application whose sendmsg gets no reply is recorded as the sendmsg timing out', async (t) => {
  const { channel, seen } = await observed(t, 100);
  const run = channel.execute('playback', '/x.wav', 5000);
  await t.rejects(run, EslTimeoutError);
  await until('the socket closed', () => channel.closed);
  t.same(seen, ['connect ok', 'sendmsg timeout']);
  t.equal(channel.pendingApplications, 0);
});

t.test('Event-UUIDs: shaped as version 4 UUIDs, a new one for every application', async (t) => {
  const { channel, fs } = await setup(t);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const run = channel.execute('multiset', `a=${i}`, 1000);
    const cmd = await fs.next();
    ids.push(eventUuidOf(cmd));
    fs.socket.write(ok + event('CHANNEL_EXECUTE_COMPLETE', { Application: 'multiset', 'Application-UUID': eventUuidOf(cmd) }));
    await run;
  }
  for (const id of ids) t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.equal(new Set(ids).size, 3);
});

t.test('a sendmsg that crosses the hang-up: the reply decides what the caller gets, as when the application waited for its reply first', async (t) => {
  const err = (text: string): string => `Content-Type: command/reply\nReply-Text: ${text}\n\n`;
  const hangupComplete = event('CHANNEL_HANGUP_COMPLETE', { 'Hangup-Cause': 'NORMAL_CLEARING' });
  const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => 'resolved', (e: unknown) => (e as Error).constructor.name);

  await t.test('CHANNEL_HANGUP_COMPLETE, then -ERR invalid session id', async (t) => {
    const { channel, fs, seen } = await observed(t, 5000);
    const play = channel.execute('playback', '/x.wav', 5000);
    await fs.next();
    fs.socket.write(hangupComplete + err('-ERR invalid session id [x]'));
    t.equal(await outcome(play), 'EslCommandError');
    t.same(seen, ['connect ok', 'sendmsg error']);
    t.equal(channel.pendingApplications, 0);
  });

  await t.test('CHANNEL_HANGUP_COMPLETE, then no reply at all', async (t) => {
    const { channel, fs, seen } = await observed(t, 150);
    const play = channel.execute('playback', '/x.wav', 5000);
    await fs.next();
    fs.socket.write(hangupComplete);
    t.equal(await outcome(play), 'EslTimeoutError');
    t.same(seen, ['connect ok', 'sendmsg timeout']);
  });

  await t.test('CHANNEL_HANGUP_COMPLETE, then +OK: the hang-up', async (t) => {
    const { channel, fs, seen } = await observed(t, 5000);
    const play = channel.execute('playback', '/x.wav', 5000);
    await fs.next();
    fs.socket.write(hangupComplete);
    await until('the hang-up was read', () => channel.hangupComplete !== null);
    fs.socket.write(ok);
    t.equal(await outcome(play), 'CallHungUpError');
    t.same(seen, ['connect ok', 'playback hangup']);
  });

  await t.test('hangup() written as the caller hangs up: the refusal is the caller\'s to see', async (t) => {
    const { channel, fs } = await setup(t);
    const hangup = channel.hangup('NORMAL_CLEARING');
    await fs.next();
    fs.socket.write(hangupComplete + err('-ERR invalid session id [x]'));
    t.equal(await outcome(hangup), 'EslCommandError');
  });

  await t.test('the application\'s own bound passes before a -ERR reply', async (t) => {
    const { channel, fs, seen } = await observed(t, 5000);
    const play = channel.execute('playback', '/x.wav', 30);
    await fs.next();
    await until('the bound passed', () => seen.length === 2);
    fs.socket.write(err('-ERR invalid session id [x]'));
    t.equal(await outcome(play), 'EslCommandError');
    t.same(seen, ['connect ok', 'playback timeout', 'sendmsg error']);
  });
});
