/**
 * The outbound stand-in presenting an originated click-to-call leg (A9–A11 of
 * test/peer/fake-freeswitch.ts) against real FreeSWITCH: the commands the first release's daemon
 * sent in outbound-originated-leg-to-socket.log, replayed against the stand-in, get the replies,
 * events and notice real FreeSWITCH sent, in order; its CHANNEL_DATA carries what the capture's
 * does; and the leg is recognised from that channel data by its variable, not its numbers.
 */
import net from 'node:net';
import t from 'tap';
import { recognizeClickToCall } from '../../src/clicktocall/leg';
import { frameToEvent, type EslEvent } from '../../src/esl/event';
import { EslFramer } from '../../src/esl/parser';
import { placeCall, type CallScript } from '../peer/fake-freeswitch';
import { commandsOf, readCapture, streamOf } from '../peer/fixtures';

const CAPTURE = 'outbound-originated-leg-to-socket.log';

function parseAll(stream: Buffer): EslEvent[] {
  const framer = new EslFramer();
  return framer.push(stream).map((f) => frameToEvent(f, framer).event);
}

function summarize(events: EslEvent[]): string[] {
  return events.map((e) => {
    if (e.contentType === 'command/reply') return `reply:${e.getHeader('Reply-Text')}:${e.getHeader('Socket-Mode') ?? ''}:${e.getHeader('Control') ?? ''}`;
    if (e.contentType === 'text/disconnect-notice') return `notice:${e.outer['Content-Disposition']}`;
    if (e.name === 'CHANNEL_EXECUTE_COMPLETE' || e.name === 'CHANNEL_EXECUTE') return `${e.name}:${e.getHeader('Application')}:${e.getHeader('Application-Response') ?? ''}`;
    return `${e.name}:${e.getHeader('Hangup-Cause') ?? ''}`;
  });
}

const connection = readCapture(CAPTURE).connections[0];
const real = parseAll(streamOf(connection, 'FS->CTL'));
const realData = real[0].headers;

const visitorScript: CallScript = {
  caller: '13970000005',
  destination: '13970000005',
  uuid: 'b28a810b-ff50-4372-b6d3-e90f681d3d9d',
  socketMode: { async: false, full: false },
  originated: { callerIdNumber: '4007070001', variables: { hotline_click_to_call: 'widget-1', originate_timeout: '6', ignore_early_media: 'true' } },
};

async function replayAgainstStandIn(): Promise<EslEvent[]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const got: EslEvent[] = [];
  const commands = commandsOf(streamOf(connection, 'CTL->FS'));
  const session = new Promise<void>((resolve) => {
    server.once('connection', (socket) => {
      const framer = new EslFramer();
      let replies = 0;
      let wake: (() => void) | null = null;
      socket.on('data', (chunk) => {
        for (const f of framer.push(chunk)) {
          const e = frameToEvent(f, framer).event;
          got.push(e);
          if (e.contentType === 'command/reply') replies++;
          wake?.();
        }
      });
      socket.on('close', () => resolve());
      void (async () => {
        for (const command of commands) {
          const want = replies + 1;
          socket.write(command);
          while (replies < want && !socket.destroyed) await new Promise<void>((r) => (wake = r));
        }
      })();
    });
  });
  await Promise.all([placeCall(port, visitorScript), session]);
  server.close();
  return got;
}

t.test('the capture: what the first release did with this leg', async (t) => {
  t.equal(realData['Call-Direction'], 'outbound');
  t.equal(realData['Answer-State'], 'answered');
  t.equal(realData['Caller-Caller-ID-Number'], '13970000005', 'the visitor as caller…');
  t.equal(realData['Caller-Destination-Number'], '13970000005', '…and as destination');
  t.equal(realData['Caller-Orig-Caller-ID-Number'], '4007070001', 'the access number only as the origination caller ID');
  t.equal(realData['Socket-Mode'], 'static', 'unquoted &socket(host:port async full) lost its flags');
  t.equal(realData.Control, 'single-channel');
  t.match(summarize(real), ['reply:+OK\n:static:single-channel', 'reply:+OK Events Enabled::', 'reply:-ERR command not found::', 'reply:-ERR command not found::']);
});

t.test('replayed against the stand-in: the same replies, events and notice, in order', async (t) => {
  const fake = await replayAgainstStandIn();
  t.same(summarize(fake), summarize(real));
  const data = fake[0].headers;
  for (const name of ['Call-Direction', 'Answer-State', 'Channel-Call-State', 'Caller-Caller-ID-Number', 'Caller-Destination-Number', 'Caller-Orig-Caller-ID-Number', 'Caller-Callee-ID-Number', 'Caller-ANI', 'variable_origination_caller_id_number', 'variable_hotline_click_to_call', 'variable_originate_timeout', 'Unique-ID']) {
    t.equal(data[name], realData[name], `${name} as FreeSWITCH sent it`);
  }
  t.ok(Number(data['Caller-Channel-Answered-Time']) > Number(data['Caller-Channel-Created-Time']), 'answered before the socket was opened');
});

t.test('recognised by its channel variable: the capture carries the marker but not the rest', async (t) => {
  const r = recognizeClickToCall(realData);
  t.equal(r.kind, 'malformed', 'hotline_click_to_call=widget-1 (a hand-made originate) is no request of ours');
  t.equal(recognizeClickToCall({ ...realData, variable_hotline_click_to_call: undefined as unknown as string }).kind, 'none');
  const ours = recognizeClickToCall({
    ...realData,
    variable_hotline_click_to_call: '0b6f4c1e-3f7a-4c55-9d0e-8a2b1c3d4e5f',
    variable_hotline_widget_id: '7',
    variable_hotline_access_number: '4007070001',
    variable_hotline_visitor: '13970000005',
    variable_hotline_clicked_at_ms: '1796188470900',
  });
  t.same(ours, {
    kind: 'click_to_call',
    leg: {
      requestId: '0b6f4c1e-3f7a-4c55-9d0e-8a2b1c3d4e5f',
      widgetId: 7,
      accessNumber: '4007070001',
      visitor: '13970000005',
      clickedAt: new Date(1796188470900),
      visitorAnsweredAt: new Date(1796188471032.404),
      visitorRingS: 0,
    },
  }, 'access number, widget, request id, visitor, ring time (answered − created: 20 ms)');
  for (const [name, value] of [['variable_hotline_widget_id', 'x'], ['variable_hotline_access_number', '400${x}'], ['variable_hotline_visitor', ''], ['variable_hotline_clicked_at_ms', 'soon']]) {
    t.equal(recognizeClickToCall({ ...realData, variable_hotline_click_to_call: '0b6f4c1e-3f7a-4c55-9d0e-8a2b1c3d4e5f', variable_hotline_widget_id: '7', variable_hotline_access_number: '4007070001', variable_hotline_visitor: '13970000005', variable_hotline_clicked_at_ms: '1', [name]: value }).kind, 'malformed', `${name}=${JSON.stringify(value)} is refused`);
  }
});
