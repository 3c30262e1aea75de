/**
 * The warning's one decision (src/billing/warning.ts): mixed in with uuid_displace over an
 * event-locked prompt (M13), else uuid_broadcast; a displace FreeSWITCH refuses falls back to the
 * broadcast; other failures are the caller's. And the stand-in's M13: when the caller hears each.
 */
import t from 'tap';
import { sendWarning, warningWay, type WarningTransport } from '../../src/billing/warning';
import { displaceCommand } from '../../src/esl/channel';
import { EslCommandError, SocketClosedError } from '../../src/esl/errors';
import { ScriptedChannel } from '../peer/scripted-channel';

function transport(displaceFails: Error | null = null): WarningTransport & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    displace: (file) => {
      sent.push(`displace ${file}`);
      return displaceFails ? Promise.reject(displaceFails) : Promise.resolve();
    },
    broadcast: (file) => {
      sent.push(`broadcast ${file}`);
      return Promise.resolve();
    },
  };
}

t.test('the decision: displace over a locked prompt, broadcast otherwise', async (t) => {
  t.equal(warningWay(true), 'displace');
  t.equal(warningWay(false), 'broadcast');
  t.equal(displaceCommand('u-1', '/s/capped.wav'), 'uuid_displace u-1 start /s/capped.wav 0 mux');
  const locked = transport();
  t.equal(await sendWarning(locked, '/s/capped.wav', true), 'displace');
  t.same(locked.sent, ['displace /s/capped.wav']);
  const free = transport();
  t.equal(await sendWarning(free, '/s/capped.wav', false), 'broadcast');
  t.same(free.sent, ['broadcast /s/capped.wav']);
});

t.test('-ERR from uuid_displace: the broadcast still goes (late rather than never)', async (t) => {
  const refused = transport(new EslCommandError('api uuid_displace u-1', '-ERR Cannot displace session!'));
  t.equal(await sendWarning(refused, '/s/capped.wav', true), 'broadcast');
  t.same(refused.sent, ['displace /s/capped.wav', 'broadcast /s/capped.wav']);
  const gone = transport(new SocketClosedError('api'));
  await t.rejects(sendWarning(gone, '/s/capped.wav', true), SocketClosedError, 'a socket gone is not a refusal');
  t.same(gone.sent, ['displace /s/capped.wav']);
});

t.test('M13 on the stand-in: a displace is heard over a locked greeting at once; a broadcast only after it', async (t) => {
  const ch = new ScriptedChannel({ promptMs: { '/s/welcome.wav': 10_000, '/s/capped.wav': 3_000 } });
  await ch.answer();
  const greeting = ch.playback('/s/welcome.wav', 10_000, { eventLock: true });
  t.ok(ch.promptLocked, 'locked while the greeting is pending');
  ch.at(2000, () => {
    void sendWarning({ displace: (f) => ch.displace(f), broadcast: (f) => ch.broadcast(f) }, '/s/capped.wav', ch.promptLocked);
    void ch.broadcast('/s/capped.wav');
  });
  await greeting;
  await ch.setVariables({ x: 1 });
  t.notOk(ch.promptLocked);
  const heard = ch.model.heard.map((h) => ({ how: h.how, at: h.at, over: h.over }));
  t.equal(heard[0]?.how, 'displace');
  t.equal(heard[0]?.at, 2000, 'the displace at once, mixed into the greeting');
  t.equal(heard[0]?.over, 'playback');
  t.equal(heard[1]?.how, 'broadcast');
  t.ok((heard[1]?.at ?? 0) >= 10_000, `the broadcast at ${heard[1]?.at} ms: behind the whole greeting (M7)`);
});

/** The reply text FreeSWITCH refused with (EslCommandError), or '+OK'. */
async function refusal(p: Promise<void>): Promise<string> {
  try {
    await p;
    return '+OK';
  } catch (err) {
    if (err instanceof EslCommandError) return err.replyText;
    throw err;
  }
}

t.test('M13 on the stand-in: refusals FreeSWITCH gives', async (t) => {
  const ch = new ScriptedChannel({ promptMs: { '/s/capped.wav': 3_000 }, missingFiles: ['/s/gone.wav'] });
  t.equal(await refusal(ch.displace('/s/gone.wav')), '-ERR Cannot displace session!', 'a file that cannot be opened');
  t.ok(ch.model.hadEarlyMedia, 'a channel with no media yet is pre-answered first, even for a file it then refuses');
  await ch.answer();
  await ch.displace('/s/capped.wav');
  t.equal(await refusal(ch.displace('/s/capped.wav')), '-ERR Cannot displace session!', 'the same file still displacing');
  t.same(ch.model.heard, [], 'sent in park: nothing written, nothing heard yet');
  await ch.playback('/s/capped.wav', 3000);
  t.match(ch.model.heard, [{ how: 'displace', over: 'playback' }], 'heard once something writes audio');
  await ch.kill('NORMAL_CLEARING');
  t.equal(await refusal(ch.displace('/s/capped.wav')), '-ERR Cannot locate session!', 'a channel that is gone');
});
