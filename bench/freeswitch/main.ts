/**
 * The load generator as a process of its own (so its CPU is its own): `fork()`ed by the bench
 * commands, told over IPC what to run, answers with a LoadResult. While a run goes on it reports
 * its progress every 250 ms (the memory bench samples the daemon at the plateau).
 */
import type { CallPlan } from '../../src/warmup/freeswitch-call';
import { LoadDriver, type LoadResult, type LoadSpec } from '../../src/warmup/load';
import { loadTemplates, type Templates } from '../../src/warmup/templates';

export interface GeneratorRequest {
  port: number;
  host?: string;
  destination: string;
  plan: CallPlan;
  spec: LoadSpec;
}

export type GeneratorMessage =
  | { type: 'progress'; started: number; inFlight: number; handshakes: number }
  | { type: 'result'; result: LoadResult }
  | { type: 'error'; message: string };

const templates = new Map<string, Templates>();

function send(message: GeneratorMessage): void {
  process.send?.(message);
}

process.on('message', (request: GeneratorRequest) => {
  void (async () => {
    try {
      let t = templates.get(request.destination);
      if (!t) {
        t = loadTemplates(request.destination);
        templates.set(request.destination, t);
      }
      const driver = new LoadDriver(request.port, t, request.plan, request.host);
      const timer = setInterval(() => send({ type: 'progress', ...driver.progress() }), 250);
      const result = await driver.run(request.spec);
      clearInterval(timer);
      send({ type: 'result', result });
    } catch (err) {
      send({ type: 'error', message: (err as Error).stack ?? String(err) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
