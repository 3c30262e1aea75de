/**
 * The inbound stand-in's `bgapi originate` (B6–B10 of test/peer/fake-inbound-freeswitch.ts)
 * against real FreeSWITCH (inbound-originate-to-socket.log, direction labels turned round by
 * readCapture), and the daemon's Originator against the stand-in: auth, the BACKGROUND_JOB
 * subscription, Job-UUIDs of our own, every result, a lost connection, a wrong password.
 */
import net from 'node:net';
import pino from 'pino';
import t, { type Test } from 'tap';
import { Originator, parseJobBody } from '../../src/clicktocall/originator';
import { originateCommand } from '../../src/clicktocall/leg';
import { frameToEvent, type EslEvent } from '../../src/esl/event';
import { EslFramer } from '../../src/esl/parser';
import { FakeInboundFreeSwitch, separateString } from '../peer/fake-inbound-freeswitch';
import { labelsSwapped, readCapture, readLabelled, streamOf } from '../peer/fixtures';

const CAPTURE = 'inbound-originate-to-socket.log';
const silent = pino({ level: 'silent' });

function parseAll(stream: Buffer): EslEvent[] {
  const framer = new EslFramer();
  return framer.push(stream).map((f) => frameToEvent(f, framer).event);
}

/** Replies, BACKGROUND_JOBs and notices: what the daemon's connection sees (it subscribes to nothing else). */
function summarize(events: EslEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.contentType === 'auth/request') out.push('auth/request');
    else if (e.contentType === 'command/reply') out.push(`reply:${(e.getHeader('Reply-Text') ?? '').replace(/[0-9a-f-]{36}/, '<job>')}`);
    else if (e.contentType === 'text/disconnect-notice') out.push('notice');
    else if (e.name === 'BACKGROUND_JOB') out.push(`job:${e.getHeader('Job-Command')}:${e.body.replace(/[0-9a-f-]{36}/, '<uuid>')}`);
  }
  return out;
}

async function fake(t: Test, options: ConstructorParameters<typeof FakeInboundFreeSwitch>[0] = {}): Promise<{ fs: FakeInboundFreeSwitch; port: number }> {
  const fs = new FakeInboundFreeSwitch(options);
  const port = await fs.listen();
  t.teardown(() => fs.close());
  return { fs, port };
}

const connection = readCapture(CAPTURE).connections[0];
const realEvents = parseAll(streamOf(connection, 'FS->CTL'));

t.test('the capture is read the right way round', async (t) => {
  t.ok(labelsSwapped(readLabelled(CAPTURE).connections[0]), 'its first chunk, FreeSWITCH\'s auth/request, is labelled CTL->FS');
  t.equal(connection[0].direction, 'FS->CTL', 'readCapture turns the labels round');
  t.match(streamOf(connection, 'CTL->FS').toString('utf8'), /^auth ClueCon\n\nevent plain BACKGROUND_JOB/);
  t.same(summarize(realEvents).filter((s) => s.startsWith('job:')), [
    'job:originate:+OK <uuid>\n', 'job:originate:-ERR USER_BUSY\n', 'job:originate:-ERR NO_ANSWER\n', 'job:originate:-ERR UNALLOCATED_NUMBER\n',
  ], 'answered, busy, no answer, unallocated');
});

t.test('replayed against the stand-in: the same replies, jobs, results and notice, in order', async (t) => {
  const socketServer = net.createServer();
  await new Promise<void>((r) => socketServer.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => socketServer.close(() => r())));
  const socketPort = (socketServer.address() as net.AddressInfo).port;
  // The answered visitor's leg comes to "127.0.0.1:8084" in the capture: here, to our listener.
  const connectReply = new Promise<EslEvent>((resolve) => {
    socketServer.once('connection', (s) => {
      const framer = new EslFramer();
      s.on('data', (c) => {
        for (const f of framer.push(c)) {
          resolve(frameToEvent(f, framer).event);
          s.destroy();
        }
      });
      s.write('connect\n\n');
    });
  });
  const { fs, port } = await fake(t, {
    timeScale: 0.01,
    visitors: { '13970000005': { result: 'answer' }, '13970000001': { result: 'busy' }, '13970000003': { result: 'no_answer' }, '13970000009': { result: 'unreachable' } },
  });
  const commands = streamOf(connection, 'CTL->FS').toString('utf8').split(/(?<=\n\n)/).filter((c) => c.trim() !== '');
  t.equal(commands.length, 7, 'auth, event, four originates, exit');
  const socket = net.connect(port, '127.0.0.1');
  const framer = new EslFramer();
  const got: EslEvent[] = [];
  let wake: (() => void) | null = null;
  socket.on('data', (chunk) => {
    for (const f of framer.push(chunk)) got.push(frameToEvent(f, framer).event);
    wake?.();
  });
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  const until = async (pred: () => boolean): Promise<void> => {
    while (!pred()) await new Promise<void>((r) => (wake = r));
  };
  await until(() => got.length >= 1);
  for (const command of commands) {
    const jobs = got.filter((e) => e.name === 'BACKGROUND_JOB').length;
    const replies = got.filter((e) => e.contentType === 'command/reply').length;
    socket.write(command.replace('127.0.0.1:8084', `127.0.0.1:${socketPort}`));
    await until(() => got.filter((e) => e.contentType === 'command/reply').length > replies);
    // The capture's controller waited for each originate's result before the next one.
    if (command.startsWith('bgapi')) await until(() => got.filter((e) => e.name === 'BACKGROUND_JOB').length > jobs);
  }
  await closed;
  t.same(summarize(got), summarize(realEvents));
  const realJobs = realEvents.filter((e) => e.name === 'BACKGROUND_JOB');
  const fakeJobs = got.filter((e) => e.name === 'BACKGROUND_JOB');
  for (const [i, e] of fakeJobs.entries()) {
    t.equal(e.getHeader('Job-Command-Arg')?.replace(String(socketPort), '8084'), realJobs[i].getHeader('Job-Command-Arg'), `job ${i + 1}: Job-Command-Arg as FreeSWITCH sent it`);
    const replyIndex = got.indexOf(e);
    t.ok(got.slice(0, replyIndex).some((r) => r.getHeader('Job-UUID') === e.getHeader('Job-UUID')), `job ${i + 1}: its Job-UUID is the one the bgapi reply gave`);
  }
  const reply = await connectReply;
  t.equal(reply.getHeader('Socket-Mode'), 'static', 'unquoted &socket(…): the socket application got only host:port (B9)');
  t.equal(reply.getHeader('Control'), 'single-channel');
  t.equal(reply.getHeader('variable_hotline_click_to_call'), 'widget-1');
  t.equal(fs.originates[0].appArgs, `127.0.0.1:${socketPort}`, 'what the socket application was given');
});

t.test('originate arguments are split as switch_separate_string does', async (t) => {
  t.same(separateString("{a=1}sofia/gw/139 '&socket(127.0.0.1:8084 async full)'"), ['{a=1}sofia/gw/139', '&socket(127.0.0.1:8084 async full)']);
  t.same(separateString('{a=1}sofia/gw/139 &socket(127.0.0.1:8084 async full)'), ['{a=1}sofia/gw/139', '&socket(127.0.0.1:8084', 'async', 'full)']);
  t.same(separateString("a  'b c'd  e"), ['a', 'b cd', 'e']);
});

t.test('the daemon\'s originate command: quoted &socket, every value checked', async (t) => {
  const base = {
    callUuid: '11111111-2222-4333-8444-555555555555', requestId: '0b6f4c1e-3f7a-4c55-9d0e-8a2b1c3d4e5f', widgetId: 3, accessNumber: '4001012345',
    visitor: '13912345678', callerIdNumber: '4001012345', clickedAt: new Date(1_800_000_000_000), ringTimeoutS: 30,
    dialTemplate: 'sofia/gateway/carrier/${number}', socketAddress: '127.0.0.1:8084',
  };
  t.equal(originateCommand(base),
    "originate {origination_uuid=11111111-2222-4333-8444-555555555555,origination_caller_id_number=4001012345,hotline_click_to_call=0b6f4c1e-3f7a-4c55-9d0e-8a2b1c3d4e5f,hotline_widget_id=3,hotline_access_number=4001012345,hotline_visitor=13912345678,hotline_clicked_at_ms=1800000000000,originate_timeout=30,ignore_early_media=true}sofia/gateway/carrier/13912345678 '&socket(127.0.0.1:8084 async full)'");
  t.throws(() => originateCommand({ ...base, visitor: '139,sofia/gateway/x/110' }), { code: 'ESL_UNSAFE_VALUE' });
  t.throws(() => originateCommand({ ...base, callerIdNumber: '400${system(id)}' }), { code: 'ESL_UNSAFE_VALUE' });
  t.throws(() => originateCommand({ ...base, socketAddress: "127.0.0.1:8084 async full)' &system(" }), /not host:port/);
});

t.test('BACKGROUND_JOB bodies', async (t) => {
  t.same(parseJobBody('+OK b28a810b-ff50-4372-b6d3-e90f681d3d9d\n'), { kind: 'answered', uuid: 'b28a810b-ff50-4372-b6d3-e90f681d3d9d' });
  t.same(parseJobBody('-ERR USER_BUSY\n'), { kind: 'failed', cause: 'USER_BUSY' });
  t.same(parseJobBody('-ERR RECOVERY_ON_TIMER_EXPIRE\n'), { kind: 'failed', cause: 'RECOVERY_ON_TIMER_EXPIRE' });
  t.same(parseJobBody('-USAGE: <call url> …\n'), { kind: 'failed', cause: 'NORMAL_TEMPORARY_FAILURE' }, 'anything else is a failure, never trusted text');
});

t.test('Originator: auth, BACKGROUND_JOB subscription, one result per plan, Job-UUIDs of our own', async (t) => {
  const { fs, port } = await fake(t, {
    password: 's3cret',
    timeScale: 0.01,
    visitors: { '13900000001': { result: 'busy' }, '13900000002': { result: 'no_answer' }, '13900000003': { result: 'unreachable' }, '13900000004': { result: 'timer_expire' }, '13900000005': { result: 'answer', ringMs: 5 } },
  });
  const states: boolean[] = [];
  const o = new Originator({ host: '127.0.0.1', port, password: 's3cret', timeoutMs: 2000, log: silent, onState: (up) => states.push(up) });
  o.start();
  t.teardown(() => o.stop());
  await o.waitReady(2000);
  t.same(states, [true]);
  const cmd = (n: string): string => `originate {origination_uuid=0000000${n.slice(-1)}-0000-4000-8000-000000000000,originate_timeout=2}sofia/gateway/carrier/${n} '&socket(127.0.0.1:1 async full)'`;
  const jobs = await Promise.all(['13900000001', '13900000002', '13900000003', '13900000004', '13900000005'].map((n) => o.bgapi(cmd(n), 5000)));
  const results = await Promise.all(jobs.map((j) => j.result));
  t.same(results, [
    { kind: 'failed', cause: 'USER_BUSY' },
    { kind: 'failed', cause: 'NO_ANSWER' },
    { kind: 'failed', cause: 'UNALLOCATED_NUMBER' },
    { kind: 'failed', cause: 'RECOVERY_ON_TIMER_EXPIRE' },
    { kind: 'answered', uuid: '00000005-0000-4000-8000-000000000000' },
  ]);
  t.same(fs.originates.map((r) => r.jobUuid).sort(), jobs.map((j) => j.jobUuid).sort(), 'FreeSWITCH used our Job-UUIDs');
  const sent = fs.received[0].toString('utf8');
  t.match(sent, /^auth s3cret\n\nevent plain BACKGROUND_JOB\n\nbgapi originate /, 'auth, then only BACKGROUND_JOB, then the originates');
  t.match(sent, /\nJob-UUID: [0-9a-f-]{36}\n\n/);
  await t.rejects(o.bgapi('originate x\n\napi system', 1000), { code: 'ESL_UNSAFE_VALUE' }, 'CR/LF never reaches the socket');
});

t.test('Originator: a dropped connection loses its pending jobs, then reconnects', async (t) => {
  const { fs, port } = await fake(t, { timeScale: 1, visitors: { '13900000002': { result: 'no_answer' } } });
  const o = new Originator({ host: '127.0.0.1', port, password: 'ClueCon', timeoutMs: 2000, reconnectMinMs: 20, log: silent });
  o.start();
  t.teardown(() => o.stop());
  await o.waitReady(2000);
  const job = await o.bgapi("originate {originate_timeout=60}sofia/gateway/carrier/13900000002 '&socket(127.0.0.1:1 async full)'", 60_000);
  await fs.close();
  t.same(await job.result, { kind: 'lost' }, 'its BACKGROUND_JOB could only come on the lost connection');
  t.notOk(o.ready);
  await t.rejects(o.bgapi('originate x', 1000), { code: 'ESL_SOCKET_CLOSED' }, 'not connected: refused at once');
  const again = new FakeInboundFreeSwitch({});
  const server = again as unknown as { server: net.Server };
  await new Promise<void>((r) => server.server.listen(port, '127.0.0.1', r));
  t.teardown(() => again.close());
  await o.waitReady(5000);
  t.ok(o.ready, 'reconnected by itself');
});

t.test('Originator: wrong password and a silent FreeSWITCH never become ready; no reply times out', async (t) => {
  const { port } = await fake(t);
  const o = new Originator({ host: '127.0.0.1', port, password: 'wrong', timeoutMs: 300, reconnectMinMs: 50, log: silent });
  o.start();
  t.teardown(() => o.stop());
  await t.rejects(o.waitReady(400), { code: 'ESL_TIMEOUT' });
  const silentFs = await fake(t, { silent: true });
  const o2 = new Originator({ host: '127.0.0.1', port: silentFs.port, password: 'ClueCon', timeoutMs: 300, log: silent });
  o2.start();
  t.teardown(() => o2.stop());
  await o2.waitReady(2000);
  await t.rejects(o2.bgapi('originate x', 1000), { code: 'ESL_TIMEOUT' }, 'no +OK Job-UUID: timeout, and the connection is dropped');
  t.notOk(o2.ready);
});
