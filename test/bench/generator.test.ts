/**
 * The benchmark's FreeSWITCH (src/warmup, also the daemon's start-up warm-up) must speak like the real one, or the benchmark
 * measures something else: its templates reproduce the captured bytes, and a scripted controller
 * sees replies in order, completions echoing its Event-UUID, nixed types no more, the hangup
 * sequence with and without linger, and JSON events after `event json`. The daemon's own framer
 * (src/esl/parser.ts) reads everything it sends. Nothing here is timed.
 */
import net from 'node:net';
import t from 'tap';
import { FsCall, type CallPlan } from '../../src/warmup/freeswitch-call';
import { loadTemplates } from '../../src/warmup/templates';
import { mergePhases, phaseSplit } from '../../src/warmup/load';
import { cdrTimes } from '../../src/calls/cdr-times';
import { frameToEvent, type EslEvent } from '../../src/esl/event';
import { EslFramer } from '../../src/esl/parser';
import { readCapture, streamOf } from '../peer/fixtures';

/** The captured call's slot values: rendering with them gives the capture back. */
const CAPTURED = {
  uuid: 'e562fd27-ea4c-4acc-8cb4-bc44c7088101',
  caller: '13912345678',
  cause: 'NORMAL_CLEARING',
  created: '1795296920571527',
  createdS: '1795296920',
  answered: '1795296925051438',
  answeredS: '1795296925',
  ended: '1795296927071445',
  endedS: '1795296927',
  duration: '7',
  billsec: '2',
};
const plan: CallPlan = { ringMs: 0, talkMs: 0, playbackMs: 0, maxLingerMs: 60_000, timeoutMs: 60_000, handshakeTimeoutMs: 60_000 };

t.test('templates give back the captured bytes', async (t) => {
  const tpl = loadTemplates('4001012340'); // the number dialled in the capture
  const captured = streamOf(readCapture('outbound-plain-hunt-busy-noanswer-answer.log').connections[0], 'FS->CTL').toString('latin1');
  const data = tpl.channelData.render(CAPTURED);
  t.ok(captured.startsWith(data), 'the CHANNEL_DATA reply to connect, byte for byte');
  t.ok(data.length > 6000, 'about 6 KB of channel headers');
  const body = `${tpl.event('plain', 'CHANNEL_EXECUTE', 'ringing').body.render(CAPTURED)}Application: set\nApplication-Data: continue_on_fail%3Dtrue\nApplication-UUID: 1034e701-7015-49ff-aeb6-b0735825fbf1\n\n`;
  t.ok(captured.includes(`Content-Length: ${body.length}\nContent-Type: text/event-plain\n\n${body}`), 'CHANNEL_EXECUTE with its Application headers, byte for byte');
  t.ok(captured.includes(`${tpl.event('plain', 'CHANNEL_HANGUP_COMPLETE', 'hangup').body.render(CAPTURED)}\n`), 'CHANNEL_HANGUP_COMPLETE');
  const other = tpl.event('plain', 'CHANNEL_PROGRESS_MEDIA', 'ringing').body.render(CAPTURED);
  t.match(other, /^Event-Name: CHANNEL_PROGRESS_MEDIA\n/, 'a type the captures lack is a captured event renamed');
  const tpl2 = loadTemplates('4001012345');
  t.notOk(tpl2.channelData.render(CAPTURED).includes('4001012340'), 'the dialled number is the one asked for');
  const times = { created: '1800000000123456', createdS: '1800000000', answered: '1800000002000001', answeredS: '1800000002', ended: '1800000009000002', endedS: '1800000009', duration: '9', billsec: '7' };
  const complete = tpl.event('plain', 'CHANNEL_HANGUP_COMPLETE', 'hangup').body.render({ ...CAPTURED, ...times });
  for (const [name, value] of [
    ['Caller-Channel-Created-Time', times.created],
    ['variable_start_uepoch', times.created],
    ['variable_start_epoch', times.createdS],
    ['Caller-Channel-Answered-Time', times.answered],
    ['variable_answer_epoch', times.answeredS],
    ['Caller-Channel-Hangup-Time', times.ended],
    ['variable_end_uepoch', times.ended],
    ['variable_end_epoch', times.endedS],
    ['variable_duration', times.duration],
    ['variable_billsec', times.billsec],
  ]) {
    t.match(complete, new RegExp(`\\n${name}: ${value}\\n`), `${name} is the call's`);
  }
  t.notOk(/1795296/.test(complete.replace(/\nEvent-Date-[A-Za-z-]+: [^\n]*/g, '')), 'no captured time left but the event dates');

  // A call hung up before anyone answered: FreeSWITCH sends 0 for the answer times.
  const unanswered = { ...CAPTURED, ...times, answered: '0', answeredS: '0', duration: '7', billsec: '0', ended: '1800000007000002', endedS: '1800000007' };
  const text = tpl.event('plain', 'CHANNEL_HANGUP_COMPLETE', 'hangup').body.render(unanswered);
  t.match(text, /\nCaller-Channel-Answered-Time: 0\n/);
  t.match(text, /\nvariable_answer_epoch: 0\n/);
  const header = (name: string): string | undefined => new RegExp(`\\n${name}: ([^\\n]*)\\n`).exec(text)?.[1];
  const at = (us: string): Date => new Date(Number(us) / 1000);
  const never = cdrTimes(header, { accepted: at(times.created), answered: null, hungUp: at(unanswered.ended), now: at(unanswered.ended) });
  t.same({ answered: never.answered, billsec: never.billsec, durationS: never.durationS, rejected: never.rejected }, { answered: null, billsec: 0, durationS: 7, rejected: [] }, 'no answer, nothing billed, nothing rejected');
});

function sendmsg(uuid: string, app: string, arg: string, id: string): string {
  return `sendmsg ${uuid}\ncall-command: execute\nexecute-app-name: ${app}\nEvent-UUID: ${id}\ncontent-type: text/plain\ncontent-length: ${arg.length}\n\n${arg}`;
}

function summary(events: EslEvent[]): string[] {
  return events.map((e) => {
    if (e.contentType === 'command/reply') return e.getHeader('Event-Name') === 'CHANNEL_DATA' ? 'channel-data' : `reply:${e.getHeader('Reply-Text')}`;
    if (e.contentType === 'text/disconnect-notice') return `notice:${e.outer['Content-Disposition']}`;
    const app = e.getHeader('Application');
    return app ? `${e.name}:${app}:${e.getHeader('Application-UUID')}` : e.name;
  });
}

t.test('a whole call: set + bridge pipelined, hangup_after_bridge, linger notice last', async (t) => {
  const seen: EslEvent[] = [];
  const server = net.createServer((socket) => {
    const framer = new EslFramer();
    socket.write('connect\n\n');
    socket.on('data', (chunk: Buffer) => {
      for (const frame of framer.push(chunk)) {
        const { event } = frameToEvent(frame, framer);
        seen.push(event);
        if (event.getHeader('Event-Name') === 'CHANNEL_DATA') {
          const id = event.getHeader('Unique-ID') ?? '';
          socket.write(
            `myevents plain\n\nlinger 5\n\nnixevent CHANNEL_EXECUTE\n\n${sendmsg(id, 'set', 'hangup_after_bridge=true', 'id-set')}${sendmsg(id, 'bridge', '{leg_timeout=15}sofia/gateway/carrier/13800000001', 'id-bridge')}`,
          );
        }
        if (event.contentType === 'text/disconnect-notice' && event.outer['Content-Disposition'] === 'linger') socket.end();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => controllerClosed());
  });
  let controllerClosed!: () => void;
  const closed = new Promise<void>((r) => (controllerClosed = r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const call = new FsCall((server.address() as net.AddressInfo).port, loadTemplates('4001012345'), plan);
  const r = await call.result;
  await closed;
  server.close();
  t.equal(r.ok, true, 'the call was bridged and ended');
  t.ok(r.setupMs >= 0, 'setup latency measured at the bridge command');
  // The phases of the call, from the connect: `connect` came, then the commands the channel data
  // brought (myevents …), the bridge among them, and the close last.
  t.ok(r.handshakeMs >= 0 && r.firstCommandMs >= r.handshakeMs && r.setupMs >= r.firstCommandMs && r.lifeMs >= r.setupMs, 'handshake ≤ first command ≤ setup ≤ life', { r });
  t.same(summary(seen), [
    'channel-data',
    'reply:+OK Events Enabled',
    'reply:+OK will linger 5 seconds',
    'reply:+OK events nixed',
    'reply:+OK',
    'reply:+OK',
    'CHANNEL_EXECUTE_COMPLETE:set:id-set',
    'CHANNEL_ANSWER',
    'CHANNEL_BRIDGE',
    'CHANNEL_UNBRIDGE',
    'CHANNEL_HANGUP',
    'CHANNEL_EXECUTE_COMPLETE:bridge:id-bridge',
    'CHANNEL_UNPARK',
    `CHANNEL_EXECUTE_COMPLETE:socket:${seen.find((e) => e.getHeader('Application') === 'socket')?.getHeader('Application-UUID')}`,
    'CHANNEL_STATE',
    'CHANNEL_STATE',
    'CHANNEL_HANGUP_COMPLETE',
    'notice:linger',
    'notice:disconnect',
  ], 'the order of the captured hunt: no CHANNEL_EXECUTE after nixevent');
  const bridge = seen.find((e) => e.getHeader('Application-UUID') === 'id-bridge')!;
  t.equal(bridge.variable('DIALSTATUS'), 'SUCCESS', 'the bridge completion says it was answered');
  const complete = seen.find((e) => e.name === 'CHANNEL_HANGUP_COMPLETE')!;
  t.equal(complete.getHeader('Hangup-Cause'), 'NORMAL_CLEARING');
  // FreeSWITCH stamps the call's own times: a controller checking them against its clock takes them all.
  const now = new Date();
  const times = cdrTimes((name) => complete.getHeader(name), { accepted: new Date(now.getTime() - 5000), answered: null, hungUp: now, now });
  t.same(times.rejected, [], 'the daemon takes every time and counter as sent');
  t.ok(times.answered !== null, 'answered');
  t.equal(r.counters.commands, 6, 'connect, myevents, linger, nixevent, set, bridge');
  t.equal(r.counters.events, 11, 'events sent');
  t.equal(r.counters.eventsSubscribed, 13, 'the two CHANNEL_EXECUTE events were nixed');
});

t.test('event json (as modesl subscribes) makes every event JSON; no linger: disconnect after the hangup', async (t) => {
  const seen: EslEvent[] = [];
  const server = net.createServer((socket) => {
    const framer = new EslFramer();
    socket.write('connect\n\n');
    socket.on('data', (chunk: Buffer) => {
      for (const frame of framer.push(chunk)) {
        const { event, malformed } = frameToEvent(frame, framer);
        t.notOk(malformed, 'every frame parses');
        seen.push(event);
        if (event.getHeader('Event-Name') === 'CHANNEL_DATA') {
          const id = event.getHeader('Unique-ID') ?? '';
          socket.write(`event json BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE\n\nmyevents\n\n${sendmsg(id, 'set', 'hangup_after_bridge=true', 'j-set')}${sendmsg(id, 'bridge', 'sofia/gateway/carrier/13800000001', 'j-bridge')}`);
        }
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => controllerClosed());
  });
  let controllerClosed!: () => void;
  const closed = new Promise<void>((r) => (controllerClosed = r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const call = new FsCall((server.address() as net.AddressInfo).port, loadTemplates('4001012345'), plan);
  const r = await call.result;
  await closed;
  server.close();
  t.equal(r.ok, true);
  const events = seen.filter((e) => e.contentType.startsWith('text/event'));
  t.ok(events.length > 0 && events.every((e) => e.contentType === 'text/event-json'), 'JSON events');
  t.same(summary(seen).slice(-4), ['CHANNEL_UNBRIDGE', 'CHANNEL_HANGUP', 'CHANNEL_EXECUTE_COMPLETE:bridge:j-bridge', 'notice:disconnect'], 'without linger the socket goes right after the hangup');
  t.notOk(seen.some((e) => e.name === 'CHANNEL_HANGUP_COMPLETE'), 'CHANNEL_HANGUP_COMPLETE never arrives without linger');
});

t.test('phaseSplit: medians of each phase, and of each call\'s life after its own bridge', async (t) => {
  // Three calls: the medians are the middle call's, and "after the bridge" is per call (8, 25, 2).
  const split = phaseSplit([10, 20, 30], { handshake: [1, 5, 9], firstCommand: [4, 8, 12], life: [18, 45, 32] });
  t.same(split, { handshakeP50: 5, firstCommandP50: 8, setupP50: 20, lifeP50: 32, afterBridgeP50: 8 });
  t.same(mergePhases([{ handshake: [1], firstCommand: [2], life: [3] }, { handshake: [4, 5], firstCommand: [6, 7], life: [8, 9] }]), { handshake: [1, 4, 5], firstCommand: [2, 6, 7], life: [3, 8, 9] }, 'rounds merged in order, call by call');
  t.ok(Number.isNaN(phaseSplit([], { handshake: [], firstCommand: [], life: [] }).setupP50), 'no call completed: no median');
});
