// knex's own messages on the daemon's JSON log, not the console. Assumed of knex (checked here):
// without a `log` option it prints warnings with console.log, multi-line with stacks; a query
// while MySQL refuses connections makes it say "Acquire connection error" (a review counted 5,383
// such lines in 20 s of an outage, between the daemon's JSON lines on stdout).
import t from 'tap';
import { createKnex, knexLogTo } from '../../src/db/connect';

function capture(): { lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }>; log: Parameters<typeof knexLogTo>[0] } {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const at = (level: string) => (obj: object, msg: string): void => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, log: { warn: at('warn'), error: at('error'), debug: at('debug') } };
}

t.test('the same message at most once every 10 s, with how many were left out', async (t) => {
  const { lines, log } = capture();
  let now = 1_000_000;
  const k = knexLogTo(log, 10_000, () => now);
  const acquire = 'Acquire connection error: Error: connect ECONNREFUSED 127.0.0.1:1\n    at TCPConnectWrap.afterConnect';
  k.warn(acquire);
  now += 100;
  k.warn(acquire);
  k.warn(acquire);
  k.warn('Connection Error: true');
  now += 10_000;
  k.warn(acquire);
  k.error(new Error('boom'));
  t.same(lines.map((l) => [l.level, l.msg, l.obj.alsoLeftOut]), [
    ['warn', 'knex: Acquire connection error: Error: connect ECONNREFUSED 127.0.0.1:1', undefined],
    ['warn', 'knex: Connection Error: true', undefined],
    ['warn', 'knex: Acquire connection error: Error: connect ECONNREFUSED 127.0.0.1:1', 2],
    ['error', 'knex: Error: boom', undefined],
  ]);
  t.match(lines[0].obj.knex, /\n {4}at TCPConnectWrap/, 'the whole message, its stack too, in the line');
});

t.test('MySQL refusing connections: knex prints nothing on the console, the log has it', async (t) => {
  const { lines, log } = capture();
  const printed: unknown[] = [];
  const real = console.log;
  console.log = (...args: unknown[]) => void printed.push(args);
  t.teardown(() => {
    console.log = real;
  });
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  const knex = createKnex('mysql://root@127.0.0.1:1/test', { acquireTimeoutMs: 1500, knexLog: knexLogTo(log) });
  t.teardown(() => knex.destroy());
  for (let i = 0; i < 3; i++) await knex.raw('SELECT 1').then(() => t.fail('no server'), () => undefined);
  console.log = real;
  t.same(printed, [], 'nothing on the console');
  t.ok(lines.length >= 1 && lines.every((l) => l.msg.startsWith('knex: ')), `what knex said is on the log (${lines.map((l) => l.msg).join(' | ')})`);
});
