/**
 * The fake FreeSWITCH (test/peer) must answer like the real one. Each test replays the commands
 * a real controller sent in a capture against the peer, and compares what the peer sends back
 * with what real FreeSWITCH sent: replies, application completions (with Application-UUID,
 * Application-Response, DIALSTATUS), answer, bridge, hangup causes and disconnect notices — in
 * order. It also checks the peer's URL encoding against every value in the captures.
 */
import net from 'node:net';
import t from 'tap';
import { frameToEvent, type EslEvent } from '../../src/esl/event';
import { EslFramer } from '../../src/esl/parser';
import { fsUrlEncode, placeCall, type CallScript } from '../peer/fake-freeswitch';
import { captureNames, channelDataTemplate, readCapture, streamOf } from '../peer/fixtures';

function summarize(events: EslEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.contentType === 'command/reply') out.push(`reply:${e.getHeader('Reply-Text')}`);
    else if (e.contentType === 'text/disconnect-notice') out.push(`notice:${e.outer['Content-Disposition']}`);
    else if (e.name === 'CHANNEL_EXECUTE_COMPLETE') {
      out.push(`complete:${e.getHeader('Application')}:${e.getHeader('Application-Response')}:${e.variable('DIALSTATUS') ?? ''}`);
    } else if (e.name === 'CHANNEL_ANSWER') out.push('answer');
    else if (e.name === 'CHANNEL_BRIDGE') out.push('bridge');
    else if (e.name === 'CHANNEL_HANGUP') out.push(`hangup:${e.getHeader('Hangup-Cause')}`);
    else if (e.name === 'CHANNEL_HANGUP_COMPLETE') out.push(`hangup_complete:${e.getHeader('Hangup-Cause')}`);
  }
  // The linger notice goes out whenever the socket thread notices the hangup: its position
  // varies in real captures too, so compare it by presence, not by position.
  return out.filter((s) => s !== 'notice:linger');
}

function parseAll(stream: Buffer): EslEvent[] {
  const framer = new EslFramer();
  return framer.push(stream).map((f) => frameToEvent(f, framer).event);
}

/** Splits the controller's byte stream into commands as mod_event_socket reads them. */
function commandsOf(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < stream.length) {
    const end = stream.indexOf('\n\n', pos);
    if (end < 0) break;
    const head = stream.toString('utf8', pos, end);
    const length = Number(/^content-length: (\d+)$/im.exec(head)?.[1] ?? 0);
    out.push(stream.subarray(pos, end + 2 + length));
    pos = end + 2 + length;
  }
  return out;
}

/** Plays the captured controller against the peer; returns everything the peer sent. */
async function replay(name: string, script: Omit<CallScript, 'uuid'>): Promise<{ real: EslEvent[]; fake: EslEvent[] }> {
  const connection = readCapture(name).connections[0];
  const real = parseAll(streamOf(connection, 'FS->CTL'));
  const realUuid = real[0].getHeader('Unique-ID')!;
  const commands = commandsOf(streamOf(connection, 'CTL->FS'));
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const fake: EslEvent[] = [];
  const uuid = '11111111-2222-3333-4444-555555555555';
  const done = new Promise<void>((resolve) => {
    server.once('connection', (socket) => {
      const framer = new EslFramer();
      let waiter: ((e: EslEvent) => boolean) | null = null;
      let wake: (() => void) | null = null;
      let hungUp = false;
      let complete = false;
      socket.on('data', (chunk) => {
        for (const f of framer.push(chunk)) {
          const e = frameToEvent(f, framer).event;
          fake.push(e);
          if (e.name === 'CHANNEL_HANGUP') hungUp = true;
          if (e.name === 'CHANNEL_HANGUP_COMPLETE') complete = true;
          if (waiter && (waiter(e) || complete)) {
            waiter = null;
            wake?.();
          }
        }
      });
      const until = (pred: (e: EslEvent) => boolean): Promise<void> =>
        new Promise((r) => {
          waiter = pred;
          wake = r;
        });
      socket.on('close', () => {
        wake?.();
        resolve();
      });
      void (async () => {
        for (const raw of commands) {
          if (hungUp && !complete) await until(() => false);
          const text = raw.toString('utf8').replaceAll(realUuid, uuid);
          const eventUuid = /^Event-UUID: (.+)$/m.exec(text)?.[1];
          const replyCount = fake.filter((e) => e.contentType === 'command/reply').length;
          const replied = until((e) => e.contentType === 'command/reply' && fake.filter((x) => x.contentType === 'command/reply').length > replyCount);
          socket.write(text);
          await replied;
          if (eventUuid && !hungUp && /execute-app-name: /.test(text)) {
            const completed = (e: EslEvent): boolean => e.name === 'CHANNEL_EXECUTE_COMPLETE' && e.getHeader('Application-UUID') === eventUuid;
            if (!fake.some(completed)) {
              await until(completed);
            }
          }
        }
      })();
    });
  });
  await Promise.all([placeCall(port, { ...script, uuid }), done]);
  server.close();
  return { real, fake };
}

t.test('hunt: busy, no answer (leg_timeout), answered then callee hangs up', async (t) => {
  const { real, fake } = await replay('outbound-plain-hunt-busy-noanswer-answer.log', {
    caller: '13912345678',
    destination: '4001012340',
    legs: { '13800000001': { result: 'busy' }, '13800000003': { result: 'no_answer' }, '13800000002': { result: 'answer', talkMs: 30 } },
  });
  t.same(summarize(fake), summarize(real));
  t.ok(fake.some((e) => e.outer['Content-Disposition'] === 'linger'), 'a linger notice was sent');
  t.equal(fake[0].getHeader('Reply-Text'), '+OK\n');
  t.equal(fake[0].getHeader('Control'), 'full');
});

t.test('caller cancels while the only leg rings', async (t) => {
  const { real, fake } = await replay('outbound-plain-caller-cancels-while-ringing.log', {
    caller: '13912345678',
    destination: '4001012340',
    defaultLeg: { result: 'answer', ringMs: 60_000 },
    callerHangsUpAfterMs: 150,
  });
  t.same(summarize(fake), summarize(real));
});

t.test('hangup UNALLOCATED_NUMBER before answer', async (t) => {
  const { real, fake } = await replay('outbound-plain-hangup-unallocated-before-answer.log', {
    caller: '13912345678',
    destination: '4001019999',
  });
  t.same(summarize(fake), summarize(real));
});

t.test('answer, missing prompt, no digits and wrong digits', async (t) => {
  const capture = readCapture('outbound-plain-missing-file-no-digits-record-silence.log').connections[0];
  const missing = '/nonexistent/missing.wav';
  t.ok(streamOf(capture, 'CTL->FS').includes(`content-length: ${missing.length}\n\n${missing}`), 'the capture played this missing file');
  const { real, fake } = await replay('outbound-plain-missing-file-no-digits-record-silence.log', {
    caller: '13912345678',
    destination: '4001012340',
    missingFiles: [missing],
    digits: ['', 'x'],
  });
  t.same(summarize(fake), summarize(real));
});

t.test('the peer URL-encodes exactly as FreeSWITCH does (every value of every plain capture)', async (t) => {
  let checked = 0;
  for (const name of captureNames().filter((n) => n.includes('plain'))) {
    const stream = streamOf(readCapture(name).connections[0], 'FS->CTL').toString('utf8');
    for (const line of stream.split('\n')) {
      const m = /^([A-Za-z0-9_-]+): (.*)$/.exec(line);
      if (!m || !m[2].includes('%')) continue;
      if (fsUrlEncode(decodeURIComponent(m[2])) !== m[2]) t.fail(`${name}: ${m[1]} encodes differently`);
      checked++;
    }
  }
  t.ok(checked > 500, `checked ${checked} encoded values`);
});

t.test('the peer connect reply has the real header names in the real order', async (t) => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => {
      let buf = Buffer.alloc(0);
      socket.on('data', (c) => {
        buf = Buffer.concat([buf, c]);
        if (buf.includes('\n\n')) {
          resolve(buf);
          socket.destroy();
        }
      });
      socket.write('connect\n\n');
    });
  });
  void placeCall(port, { caller: '13912345678', destination: '4001012340' });
  const reply = (await got).toString('utf8');
  server.close();
  const names = reply.split('\n').filter((l) => l.includes(': ')).map((l) => l.slice(0, l.indexOf(': ')));
  t.same(names, [...channelDataTemplate().map(([n]) => n), 'Content-Type', 'Reply-Text', 'Socket-Mode', 'Control']);
  t.match(reply, /Content-Type: command\/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n\n$/);
});
