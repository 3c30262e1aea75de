// README "Health": a daemon that drains (SIGTERM) keeps answering /healthz with its status (200 ok)
// while its calls go on, and says it drains (detail.draining). No timing race: the call talks for
// ten minutes and DRAIN_TIMEOUT_S keeps the drain open for ten seconds, far longer than one request.
import t from 'tap';
import { startCall } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';
import { until } from '../helpers/wait';

t.test('/healthz while draining: 200 ok, draining true, the call still counted', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { api: { enabled: false }, calls: { drainTimeoutS: 10 } });
  t.teardown(() => d.stop());
  const healthz = async (): Promise<{ code: number; body: { status: string; detail: { activeCalls: number; draining: boolean } } }> => {
    const res = await fetch(`http://127.0.0.1:${d.daemon.metricsPort}/healthz`);
    return { code: res.status, body: (await res.json()) as { status: string; detail: { activeCalls: number; draining: boolean } } };
  };
  t.match(await healthz(), { code: 200, body: { status: 'ok', detail: { draining: false } } }, 'before: not draining');
  const call = startCall(d.port, { caller: '13912345678', destination: '4001012345', legs: { '13800000001': { result: 'answer', talkMs: 600_000 } } });
  // Hunting, not just connected: a call the drain finds before it has started is handed back to
  // FreeSWITCH's fallback at once (README "Metrics", hotline_calls_released_total), so it would not be counted while draining.
  await until('the call hunting', () => call.live.bridges.length > 0);
  const stopping = d.daemon.stop();
  t.match(await healthz(), { code: 200, body: { status: 'ok', detail: { activeCalls: 1, draining: true } } }, 'draining: still 200 ok, says it drains, the call counted');
  await stopping;
  t.equal((await call.done).hangupCause, 'SYSTEM_SHUTDOWN', 'the call was cut at the end of the drain');
});
