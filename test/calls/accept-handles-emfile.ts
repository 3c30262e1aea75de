/**
 * Run by test/calls/accept-handles.test.ts in a process of its own (it uses up every descriptor):
 * asks for copies of a listening socket when the helper cannot even be spawned (EMFILE), and
 * prints what copyListeningHandle answered. A SIGTERM it gets is printed too: a kill() of a child
 * that never had a process id would be kill(0), this whole process group.
 */
import fs from 'node:fs';
import net from 'node:net';
import { copyListeningHandle } from '../../src/calls/accept-handles';

process.on('SIGTERM', () => process.stdout.write('SIGTERM\n'));

async function main(): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1' }, () => resolve()));
  const held: number[] = [];
  try {
    for (;;) held.push(fs.openSync('/dev/null', 'r'));
  } catch {
    // every descriptor taken
  }
  const answer = await copyListeningHandle(server, 4, { timeoutMs: 10_000 }).then(
    (copies) => `copies ${copies.length}`,
    (err: unknown) => `error ${(err as { code?: string }).code ?? String(err)}`,
  );
  for (const fd of held) fs.closeSync(fd);
  process.stdout.write(`${answer}\n`);
  // Long enough for a stray signal to arrive and be printed.
  await new Promise((r) => setTimeout(r, 300));
  server.close();
}

void main();
