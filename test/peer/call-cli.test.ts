// `npm run call` (test/peer/call-cli.ts) with no daemon listening said "hangup cause (none), legs:
// (none)" and exited 0, as if the daemon had taken the call and done nothing. The stand-in now keeps
// the socket's error when nothing came from the daemon, and the command fails with it.
import net from 'node:net';
import t from 'tap';
import { placeCall } from './fake-freeswitch';

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

t.test('a call to a port nothing listens on says why it never started', async (t) => {
  const record = await placeCall(await closedPort(), { caller: '13912345678', destination: '4001012345', legs: {} });
  t.match(record.connectError, /ECONNREFUSED/);
  t.equal(record.commands.length, 0);
});

t.test('a daemon that closes without a command is no connect error', async (t) => {
  const server = net.createServer((s) => s.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const record = await placeCall((server.address() as net.AddressInfo).port, { caller: '13912345678', destination: '4001012345', legs: {} });
  t.equal(record.connectError, null);
  t.equal(record.commands.length, 0);
});
