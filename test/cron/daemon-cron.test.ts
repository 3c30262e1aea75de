// The cron jobs inside a real daemon (SQLite and MariaDB): started with it, their metrics on
// /metrics, the live-call guard fed by CallServer.liveCalls() and cutting through the inbound
// event socket configured in FS_ESL_*, stopped before the CDR writer.
import http from 'node:http';
import t from 'tap';
import type { LiveCall } from '../../src/billing/live-calls';
import { parseMoney } from '../../src/domain/money';
import { startTestDaemon } from '../helpers/daemon';
import { dbTargets } from '../helpers/db';
import { FakeInboundFreeSwitch } from '../peer/fake-inbound-freeswitch';

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    }).on('error', reject);
  });
}

for (const target of dbTargets()) {
  void t.test(target.name, async (t) => {
    const db = await target.create({ migrate: false });
    t.teardown(() => db.destroy());
    const fs = new FakeInboundFreeSwitch({ password: 'hotline-secret', channels: ['call-out-of-money'] });
    const port = await fs.listen();
    t.teardown(() => fs.close());
    const d = await startTestDaemon(db.url, { freeswitch: { inboundPort: port, inboundPassword: 'hotline-secret' } });
    let stopped = false;
    t.teardown(async () => {
      if (!stopped) await d.stop();
    });
    const cron = d.daemon.cron;
    t.ok(cron, 'cron started (CRON_ENABLED defaults to true)');
    t.same(cron!.scheduler.jobs.map((j) => `${j.name} ${j.schedule} ${j.scope}`), [
      'caps * * * * * cluster',
      'live_calls 30 * * * * * node',
      'reports */15 * * * * cluster',
      'retention 17 * * * * cluster',
      'notifications */20 * * * * * cluster',
    ]);
    const fresh = await get(d.daemon.metricsPort, '/metrics');
    for (const job of cron!.scheduler.jobs) {
      for (const result of ['ok', 'error']) {
        t.match(fresh, new RegExp(`^hotline_cron_runs_total\\{cron_job="${job.name}",result="${result}"\\} 0$`, 'm'), `${job.name} ${result} runs exported at 0 before any run`);
      }
    }

    // A prepaid tenant with a call that has used up its balance, as CallServer.liveCalls() will list it.
    const inserted: number[] = await d.knex('tenants').insert({ name: '欠费公司', status: 'active', timezone: 'Asia/Shanghai', balance: '0.1000' });
    const tenant = inserted[0];
    const live: LiveCall[] = [
      { uuid: 'call-out-of-money', tenantId: Number(tenant), startedAt: new Date(Date.now() - 70_000), answeredAt: new Date(Date.now() - 65_000), callType: 'mobile', rate: { perMinute: parseMoney('0.15'), incrementS: 60, connectFee: parseMoney('0') } },
    ];
    (d.daemon.calls as unknown as { liveCalls: () => LiveCall[] }).liveCalls = () => live;

    const tick = new Date();
    const guard = await cron!.scheduler.runTick('live_calls', tick);
    t.match(guard, { ran: true, ok: true });
    t.same(fs.kills, [{ uuid: 'call-out-of-money', cause: 'OUTGOING_CALL_BARRED' }], 'cut through FS_ESL_HOST:FS_ESL_PORT with FS_ESL_PASSWORD');
    t.equal(fs.broadcasts[0]?.file, '/sounds/hotline/capped.wav', 'warned with the system prompt from PROMPTS_DIR');
    t.equal((await d.knex('live_calls').where({ node: 'test-node' })).length, 1, 'published as this node');

    const caps = await cron!.scheduler.runTick('caps', tick);
    t.match(caps, { ran: true, ok: true });
    t.same(await d.knex('capped_tenants').where({ tenant_id: tenant }).select('reason'), [{ reason: 'balance' }], 'capped: out of balance with the live call');

    const metrics = await get(d.daemon.metricsPort, '/metrics');
    t.match(metrics, /hotline_cron_runs_total\{cron_job="live_calls",result="ok"\} [1-9]\d*$/m);
    t.match(metrics, /hotline_cron_runs_total\{cron_job="caps",result="ok"\} [1-9]\d*$/m);
    t.match(metrics, /hotline_cron_run_duration_seconds_bucket\{le="[^"]+",cron_job="caps"\}/);
    t.match(metrics, /hotline_cron_last_success_timestamp_seconds\{cron_job="caps"\} \d+/);
    t.match(metrics, /hotline_capped_tenants 1/);
    const runs: Array<Record<string, unknown>> = await d.knex('cron_runs').orderBy('id').select('job', 'node', 'status');
    t.same(runs, [{ job: 'live_calls', node: 'test-node', status: 'ok' }, { job: 'caps', node: 'test-node', status: 'ok' }]);

    stopped = true;
    await d.stop();
    t.same(await cron!.scheduler.runTick('caps', new Date(Date.now() + 60_000)), { ran: false, reason: 'stopped' }, 'stopped with the daemon');
  });
}
