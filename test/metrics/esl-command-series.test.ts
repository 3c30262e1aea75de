/**
 * Metrics.observeEslCommand keeps each (command, result) series of
 * hotline_esl_command_duration_seconds once instead of passing prom-client a labels object every
 * command: what /metrics shows must be what observe with labels showed, also after a reset.
 */
import t from 'tap';
import { Metrics } from '../../src/metrics';

async function sample(metrics: Metrics, series: string): Promise<number | undefined> {
  const text = await metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`hotline_esl_command_duration_seconds_${series} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

t.test('each observation lands in its own series, counted and summed, as observe with labels does', async (t) => {
  const kept = new Metrics();
  const reference = new Metrics();
  const observations: Array<[string, 'ok' | 'error' | 'timeout' | 'hangup', number]> = [
    ['bridge', 'ok', 0.5], ['bridge', 'ok', 2], ['bridge', 'hangup', 7], ['playback', 'timeout', 0.003], ['other', 'error', 0.0001], ['bridge', 'ok', 0.02],
  ];
  for (const [command, result, seconds] of observations) {
    kept.observeEslCommand(command, result, seconds);
    reference.eslCommandSeconds.observe({ command, result }, seconds);
  }
  const series = async (m: Metrics): Promise<string[]> => (await m.registry.metrics()).split('\n').filter((l) => l.startsWith('hotline_esl_command_duration_seconds'));
  t.same(await series(kept), await series(reference));
  t.equal(await sample(kept, 'count{command="bridge",result="ok"}'), 3);
  t.equal(await sample(kept, 'sum{command="bridge",result="ok"}'), 2.52);
  t.equal(await sample(kept, 'bucket{le="0.025",command="bridge",result="ok"}'), 1);
});

t.test('a series kept across a reset of the registry still counts', async (t) => {
  const metrics = new Metrics();
  metrics.observeEslCommand('answer', 'ok', 0.01);
  metrics.registry.resetMetrics();
  t.equal(await sample(metrics, 'count{command="answer",result="ok"}'), undefined, 'gone with the reset');
  metrics.observeEslCommand('answer', 'ok', 0.02);
  t.equal(await sample(metrics, 'count{command="answer",result="ok"}'), 1);
  t.equal(await sample(metrics, 'sum{command="answer",result="ok"}'), 0.02);
});
