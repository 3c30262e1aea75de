/**
 * `npm run call -- --to 4001012345 --from 13912345678 [--answer 13800000001] [--busy N] [--port 8084]`
 * Places one call into a running daemon through the fake FreeSWITCH and prints what the daemon
 * asked FreeSWITCH to do. Handy to try the daemon without a FreeSWITCH.
 */
import { placeCall, type LegPlan } from './fake-freeswitch';

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function all(name: string): string[] {
  return process.argv.flatMap((a, i) => (a === `--${name}` && process.argv[i + 1] ? [process.argv[i + 1]] : []));
}

async function main(): Promise<void> {
  const legs: Record<string, LegPlan> = {};
  for (const n of all('answer')) legs[n] = { result: 'answer', talkMs: 2000 };
  for (const n of all('busy')) legs[n] = { result: 'busy' };
  const record = await placeCall(Number(arg('port', '8084')), {
    caller: arg('from', '13912345678')!,
    destination: arg('to', '4001012345')!,
    legs,
    defaultLeg: { result: 'no_answer' },
    timeScale: 0.1,
  });
  if (record.connectError !== null) throw new Error(record.connectError);
  for (const c of record.commands) {
    const app = c.headers['execute-app-name'];
    process.stdout.write(app ? `  execute ${app} ${c.body}\n` : `  ${c.line}\n`);
  }
  process.stdout.write(`call ${record.uuid}: hangup cause ${record.hangupCause ?? '(none)'}, legs: ${record.bridges.map((b) => `${b.number}=${b.result}`).join(', ') || '(none)'}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`call failed: ${(err as Error).message} (is the daemon running? npm start)\n`);
  process.exit(1);
});
