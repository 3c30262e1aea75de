/**
 * ConnectionStats must count what the call read, whenever it read it. Event headers are decoded
 * on first read (LazyHeaders), and the CDR reads the hang-up event after the socket has closed;
 * a count copied only when data arrived missed every bad value decoded later, so
 * hotline_esl_errors_total{kind="malformed_value"} under-counted.
 */
import net from 'node:net';
import t from 'tap';
import { until } from '../helpers/wait';
import { EslConnection } from '../../src/esl/connection';
import type { EslEvent } from '../../src/esl/event';

t.test('a bad value decoded after the socket closed is still counted', async (t) => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const conn = new EslConnection(await accepted);
  const events: EslEvent[] = [];
  conn.handlers = { event: (e) => events.push(e) };
  const body = 'Event-Name: CHANNEL_HANGUP_COMPLETE\nUnique-ID: u-1\nvariable_sip_user_agent: %ZZbroken\nvariable_billsec: 3\n\n';
  peer.end(`Content-Length: ${Buffer.byteLength(body)}\nContent-Type: text/event-plain\n\n${body}`);
  const closed = new Promise<void>((r) => conn.socket.once('close', () => r()));
  conn.socket.resume();
  await until('the event arrives', () => events.length === 1);
  await closed;
  t.equal(conn.stats.malformedValues, 0, 'nothing decoded yet, nothing counted');
  const [hangup] = events;
  t.equal(hangup?.getHeader('variable_billsec'), '3', 'a good value reads as sent');
  t.equal(conn.stats.malformedValues, 0, 'a good value is not counted');
  t.equal(hangup?.getHeader('variable_sip_user_agent'), '%ZZbroken', 'a bad value is kept as sent');
  t.equal(conn.stats.malformedValues, 1, 'the bad value read after the close is counted');
});
