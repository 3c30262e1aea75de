/**
 * Child process of bridge-with-greeting.test.ts: places one call into the daemon at argv[2] from
 * caller argv[3] through the FreeSWITCH stand-in, in a process of its own (so the stand-in reads
 * its socket while the daemon works, as FreeSWITCH does), and prints the applications it received
 * with the read of its socket each came in, as JSON.
 */
import { placeCall } from '../peer/fake-freeswitch';

async function main(): Promise<void> {
  const record = await placeCall(Number(process.argv[2]), {
    caller: process.argv[3],
    destination: '4001012345',
    legs: { '13800000001': { result: 'answer', talkMs: 20 } },
  });
  if (record.connectError !== null) throw new Error(record.connectError);
  const apps = record.commands.filter((c) => c.headers['call-command'] === 'execute').map((c) => ({ app: c.headers['execute-app-name'], read: c.read }));
  process.stdout.write(JSON.stringify({ uuid: record.uuid, apps }));
}

main().catch((err: unknown) => {
  process.stderr.write(String((err as Error).stack));
  process.exit(1);
});
