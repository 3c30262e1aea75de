/**
 * What the stand-in assumes about `event-lock` on a sendmsg (test/peer/channel-model.ts M7),
 * driven by a controller written here in raw ESL, so nothing of the daemon is involved.
 *
 * FreeSWITCH: switch_ivr_parse_event sets CF_EVENT_LOCK before it runs the application of a
 * message with `event-lock: true` and clears it after; while it is set,
 * switch_core_session_dequeue_private_event hands out nothing, so the playback's own frame loop
 * (switch_ivr_play_file, which parses the queue every frame) runs nothing nested, and what was
 * queued behind starts when the playback ends. Without the lock the playback runs the queued
 * bridge NESTED: the phones ring over the prompt. The capture daemon-spend-cut-during-warning-
 * broadcast shows the lock for uuid_broadcast's playback (the hangup queued behind it waited
 * 6 s); the daemon's greeting in front of a hunt relies on the same flag (Call.startGreeting).
 */
import net from 'node:net';
import t from 'tap';
import { placeCall, switchTrue, type CallRecord } from '../peer/fake-freeswitch';

const GREETING = '/sounds/greeting.wav';

function sendmsg(app: string, arg: string, id: string, extra = ''): string {
  return `sendmsg\ncall-command: execute\nexecute-app-name: ${app}\nexecute-app-arg: ${arg}\nEvent-UUID: ${id}\n${extra}\n`;
}

/** One call into a controller that writes a playback and, in the same write, a bridge behind it. */
async function greetingThenBridge(lock: string | null): Promise<CallRecord> {
  const server = net.createServer((socket) => {
    let greeted = false;
    socket.on('data', () => {
      if (greeted) return;
      greeted = true;
      socket.write(
        sendmsg('playback', GREETING, 'greeting-1', lock === null ? '' : `event-lock: ${lock}\n`) +
          sendmsg('bridge', 'sofia/gateway/carrier/13800000001', 'bridge-1') +
          sendmsg('hangup', 'NORMAL_CLEARING', 'hangup-1'),
      );
    });
    socket.on('error', () => undefined);
    socket.write('connect\n\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as net.AddressInfo).port;
    // 0.1: the 3 s greeting takes 300 ms, far longer than the controller's one write.
    return await placeCall(port, {
      caller: '13912345678', destination: '4001012345', timeScale: 0.1,
      promptMs: { [GREETING]: 3000 }, legs: { '13800000001': { result: 'answer', ringMs: 1000, talkMs: 1000 } },
    });
  } finally {
    server.close();
  }
}

function timing(c: CallRecord, app: string): { startedAtFs: number; endedAtFs: number } {
  const found = c.apps.find((a) => a.app === app);
  if (!found) throw new Error(`${app} never ran: ${JSON.stringify(c.apps)}`);
  return found;
}

t.test('event-lock: a bridge queued behind the playback starts when it ends', async (t) => {
  const c = await greetingThenBridge('true');
  const greeting = timing(c, 'playback');
  const bridge = timing(c, 'bridge');
  t.equal(greeting.endedAtFs - greeting.startedAtFs >= 2900, true, 'the greeting played its 3 s');
  t.ok(bridge.startedAtFs >= greeting.endedAtFs, `bridge started at ${bridge.startedAtFs}, after the greeting ended at ${greeting.endedAtFs}`);
  t.same(c.bridges.map((b) => b.number), ['13800000001']);
});

t.test('without event-lock the same bridge runs nested, during the playback', async (t) => {
  const c = await greetingThenBridge(null);
  const greeting = timing(c, 'playback');
  const bridge = timing(c, 'bridge');
  // Within the greeting's first 2 s (locked, it starts after 2.9 s): 500 FreeSWITCH ms were 50 ms
  // of real time at this scale, which a loaded machine's stall could use up.
  t.ok(bridge.startedAtFs < greeting.startedAtFs + 2000, `bridge started at ${bridge.startedAtFs}, within the greeting that started at ${greeting.startedAtFs}`);
});

t.test('event-lock is read as FreeSWITCH\'s switch_true reads it', async (t) => {
  for (const yes of ['true', 'TRUE', 'yes', 'on', 't', 'enabled', 'active', 'allow', '1', '2', '1.5']) t.equal(switchTrue(yes), true, yes);
  for (const no of [undefined, '', 'false', 'no', '0', '.5', 'enable', 'truee', '1x']) t.equal(switchTrue(no), false, String(no));
  const c = await greetingThenBridge('yes');
  t.ok(timing(c, 'bridge').startedAtFs >= timing(c, 'playback').endedAtFs, '"yes" locks as "true" does');
});
