/**
 * A real Prometheus (Debian's /usr/bin/prometheus) scrapes a running test daemon every second on
 * loopback, with grafana/prometheus/alerts.yml loaded: hotline_active_calls goes to 1 while a
 * call is up and back to 0 when it ends; every dashboard expression runs against the stored data
 * without error (after a call and some cron job runs); every alert rule evaluates with health "ok".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DEMO_CALL, runCronJobs, startLabelledDaemon } from './daemon-metrics';
import { ALERTS_FILE, dashboardExprs, dashboardFiles, loadDashboard, substitute, variableValues } from './promql';
import { freeLoopbackPort, requireTool, tempDir, waitFor } from './tools';
import { placeCall, type CallRecord } from '../peer/fake-freeswitch';

interface PromResponse<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}
type Vector = { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
type Rules = { groups: Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string; lastEvaluation?: string }> }> };

t.test('prometheus is installed', async (t) => {
  t.doesNotThrow(() => requireTool('prometheus'), 'prometheus runs (apt-get install prometheus)');
});

t.test('a real Prometheus scrapes a running daemon', async (t) => {
  const bin = requireTool('prometheus');
  const d = await startLabelledDaemon();
  t.teardown(() => d.stop());
  const dir = tempDir('hotline-prometheus-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

  const target = `127.0.0.1:${d.daemon.metricsPort}`;
  const port = await freeLoopbackPort();
  const base = `http://127.0.0.1:${port}`;
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: [ALERTS_FILE],
    scrape_configs: [{ job_name: 'hotline', metrics_path: '/metrics', static_configs: [{ targets: [target] }] }],
  };
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2)); // JSON is YAML

  const prom = spawn(bin, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prom.stderr?.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-4000)));
  t.teardown(() => stop(prom));
  const exited = new Promise<number | null>((resolve) => prom.once('exit', (code) => resolve(code)));
  const diagnose = (err: unknown): never => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\nprometheus log tail:\n${log}`);
  };

  await Promise.race([
    waitFor('Prometheus /-/ready', 20_000, async () => ((await fetch(`${base}/-/ready`)).status === 200 ? true : undefined)),
    exited.then((code) => diagnose(`prometheus exited (code ${String(code)}) before it was ready`)),
  ]).catch(diagnose);

  const query = async (expr: string): Promise<PromResponse<Vector>> => {
    const res = await fetch(`${base}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: expr }) });
    return (await res.json()) as PromResponse<Vector>;
  };
  const scalar = async (expr: string): Promise<number | undefined> => {
    const r = await query(expr);
    if (r.status !== 'success') throw new Error(`${expr}: ${r.error ?? r.status}`);
    const first = r.data.result[0];
    return first ? Number(first.value[1]) : undefined;
  };
  const activeCallsIs = (want: number) => async () => ((await scalar(`hotline_active_calls{job="hotline", instance="${target}"}`)) === want ? true : undefined);

  await waitFor('up{job="hotline"} == 1', 15_000, async () => ((await scalar(`up{job="hotline", instance="${target}"}`)) === 1 ? true : undefined)).catch(diagnose);
  t.pass(`Prometheus scrapes ${target}`);
  await waitFor('hotline_active_calls == 0 before the call', 10_000, activeCallsIs(0)).catch(diagnose);

  const call = placeCall(d.port, { ...DEMO_CALL, legs: { '13800000001': { result: 'answer', talkMs: 8000 } } });
  const settled = call.then(
    (record): { record: CallRecord } => ({ record }),
    (err: unknown): { err: unknown } => ({ err }),
  );
  await waitFor('hotline_active_calls == 1 while the call is up', 30_000, activeCallsIs(1)).catch(diagnose);
  t.pass('hotline_active_calls is 1 while the call talks');

  const outcome = await settled;
  if ('err' in outcome) throw outcome.err;
  t.equal(outcome.record.answered, true, 'the call was answered');
  await waitFor('hotline_active_calls back to 0 after the call', 30_000, activeCallsIs(0)).catch(diagnose);
  t.pass('hotline_active_calls is back to 0');
  t.equal(await scalar(`hotline_calls_started_total{job="hotline", instance="${target}", number_kind="hotline"}`), 1, 'the call is stored as started');
  const talk = await scalar(`hotline_talk_seconds_total{job="hotline", instance="${target}", number_kind="hotline"}`);
  t.ok(talk !== undefined && talk > 0, `its talk seconds are counted (${String(talk)})`);

  await runCronJobs(d);
  // The test daemon's node-cron schedule is off (test/helpers/daemon.ts): these are the only runs.
  const okRuns = async (job: string): Promise<number> => (await scalar(`sum(hotline_cron_runs_total{job="hotline", instance="${target}", cron_job="${job}", result="ok"})`)) ?? 0;
  await waitFor('the cron runs scraped', 15_000, async () => ((await okRuns('caps')) >= 1 && (await okRuns('notifications')) >= 1 ? true : undefined)).catch(diagnose);
  const sinceCaps = await scalar(`time() - max by (cron_job) (hotline_cron_last_success_timestamp_seconds{job="hotline", cron_job="caps"})`);
  t.ok(sinceCaps !== undefined && sinceCaps >= 0 && sinceCaps < 60, `caps last succeeded ${String(sinceCaps)} s ago`);

  t.test('every dashboard expression runs against the stored data', async (t) => {
    for (const file of dashboardFiles()) {
      const dash = loadDashboard(file);
      const values = variableValues(dash, { node: [target], tenant: ['1'], group: ['1'], datasource: ['hotline-prometheus'] });
      for (const e of dashboardExprs(file, dash)) {
        const expr = substitute(e.expr, { ...values, __range: '5m', __rate_interval: '15s' });
        const r = await query(expr);
        t.equal(r.status, 'success', `${e.where}${r.error ? `: ${r.error}` : ''}`);
      }
    }
  });

  t.test('every alert rule evaluates without error', async (t) => {
    const rules = await waitFor('every rule evaluated once', 15_000, async () => {
      const res = (await (await fetch(`${base}/api/v1/rules`)).json()) as PromResponse<Rules>;
      const all = res.data.groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((r) => r.health !== 'unknown') ? all : undefined;
    }).catch(diagnose);
    t.ok(rules.length >= 25, `Prometheus loaded the rules of alerts.yml (${rules.length})`);
    for (const r of rules) t.equal(r.health, 'ok', `${r.name}${r.lastError ? `: ${r.lastError}` : ''}`);
  });
});

/** SIGTERM, then SIGKILL after 10 s; resolves when the process has exited. */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
