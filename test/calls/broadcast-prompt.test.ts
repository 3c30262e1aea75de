/**
 * The spend guard's warning and the live-call job's warning are prompts like any other: the file
 * comes from the one decision (systemPromptFile: the system prompt, or the tone when the file
 * check knows it is missing) and passes promptPath, which lets the tone through. The first
 * release checked the broadcast argument with mediaPath, which refuses the tone's commas: a
 * missing capped.wav made the warning throw instead of beeping.
 */
import net from 'node:net';
import t from 'tap';
import { MISSING_PROMPT_TONE, systemPromptFile } from '../../src/calls/prompt-player';
import { FreeSwitchInbound } from '../../src/billing/freeswitch-inbound';
import { EslCallChannel } from '../../src/esl/call-channel';
import { FakeInboundFreeSwitch } from '../peer/fake-inbound-freeswitch';

const UUID = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const CONNECT_REPLY = `Event-Name: CHANNEL_DATA\nUnique-ID: ${UUID}\nCaller-Caller-ID-Number: 13912345678\nCaller-Destination-Number: 4001012345\nContent-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n\n`;

t.test('systemPromptFile: the file, or the tone when it is known missing', async (t) => {
  const prompts = { system: (name: string) => ({ app: 'playback' as const, arg: `/sounds/${name}.wav` }) };
  t.equal(systemPromptFile(prompts, 'capped', null), '/sounds/capped.wav', 'not checked: the file');
  t.equal(systemPromptFile(prompts, 'capped', { knownMissing: () => false }), '/sounds/capped.wav');
  t.equal(systemPromptFile(prompts, 'capped', { knownMissing: (f) => f === '/sounds/capped.wav' }), MISSING_PROMPT_TONE);
});

t.test('a call\'s broadcast takes the tone (uuid_broadcast over the call\'s own socket)', async (t) => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  socket.on('error', () => undefined);
  const lines: string[] = [];
  let buf = '';
  let onLine: (() => void) | null = null;
  socket.on('data', (c) => {
    buf += c.toString();
    for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
      lines.push(buf.slice(0, end).split('\n')[0]);
      buf = buf.slice(end + 2);
      onLine?.();
    }
  });
  const next = (): Promise<string> => new Promise((resolve) => {
    const take = (): void => {
      if (lines.length === 0) return;
      onLine = null;
      resolve(lines.shift() ?? '');
    };
    onLine = take;
    take();
  });
  const opening = EslCallChannel.open(await accepted, { replyTimeoutMs: 1000, lingerS: 5 });
  t.equal(await next(), 'connect');
  socket.write(CONNECT_REPLY);
  const channel = await opening;
  t.teardown(() => {
    socket.destroy();
    channel.destroy();
    server.close();
  });
  const warned = channel.broadcast(MISSING_PROMPT_TONE);
  t.equal(await next(), `bgapi uuid_broadcast ${UUID} ${MISSING_PROMPT_TONE} both`);
  socket.write('Content-Type: command/reply\nReply-Text: +OK Job-UUID: 1b2c\n\n');
  await warned;
  await t.rejects(channel.broadcast('${system(id)}'), { code: 'ESL_UNSAFE_VALUE' }, 'anything else is still refused');
});

t.test('the live-call job\'s broadcast takes the tone (inbound event socket)', async (t) => {
  const fs = new FakeInboundFreeSwitch({ channels: ['abc-1'] });
  const port = await fs.listen();
  t.teardown(() => fs.close());
  const client = await FreeSwitchInbound.connect({ host: '127.0.0.1', port, password: 'ClueCon', timeoutMs: 2000 });
  t.teardown(() => client.close());
  t.equal(await client.broadcast('abc-1', MISSING_PROMPT_TONE), true);
  t.same(fs.broadcasts, [{ uuid: 'abc-1', file: MISSING_PROMPT_TONE, legs: 'both' }]);
  await t.rejects(client.broadcast('abc-1', 'a.wav,b.wav'), { code: 'ESL_UNSAFE_VALUE' });
});
