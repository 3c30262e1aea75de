/**
 * `npm run bench:burst`: BENCH_BURST_CALLS (5,000) outbound sockets opened at once against the
 * daemon, as when several FreeSWITCH nodes come back together, for each listen backlog in
 * BENCH_BURST_BACKLOGS (511 = Node's default, and the daemon's default ESL_LISTEN_BACKLOG).
 * A handshake is complete when the daemon's `connect` reached the generator; FreeSWITCH gives
 * up on a controller that has not sent it within 25 s (mod_event_socket.c). Each call then runs
 * the full flow; the daemon's own count of failed handshakes comes from its /metrics.
 */
import fs from 'node:fs';
import { envNumber, Generator, httpGet, machine, shortCall, startDaemon } from './lib';

const CALLS = envNumber('BENCH_BURST_CALLS', 5000);
const BACKLOGS = (process.env.BENCH_BURST_BACKLOGS ?? '511,default').split(',');

function sysctl(name: string): string {
  try {
    return fs.readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return '?';
  }
}

async function main(): Promise<void> {
  process.stdout.write(`machine: ${machine()}\n`);
  process.stdout.write(
    `kernel: net.core.somaxconn ${sysctl('net.core.somaxconn')} (listen() backlogs are capped to it), net.ipv4.tcp_max_syn_backlog ${sysctl('net.ipv4.tcp_max_syn_backlog')}, tcp_syncookies ${sysctl('net.ipv4.tcp_syncookies')}, tcp_abort_on_overflow ${sysctl('net.ipv4.tcp_abort_on_overflow')}\n\n`,
  );
  const gen = new Generator();
  try {
    for (const backlog of BACKLOGS) {
      const env = backlog === 'default' ? {} : { ESL_LISTEN_BACKLOG: backlog };
      const daemon = await startDaemon(`backlog ${backlog}`, { databaseUrl: 'sqlite:./bench.db', env });
      try {
        await gen.run(daemon.port, shortCall(), { mode: 'closed', calls: 200, concurrency: 20 });
        const r = await gen.run(daemon.port, shortCall(), { mode: 'burst', calls: CALLS });
        const metrics = await httpGet(daemon.metricsPort!, '/metrics');
        const daemonHandshakeErrors = Number(/^hotline_esl_errors_total\{kind="handshake"\} (\d+)/m.exec(metrics)?.[1] ?? NaN);
        process.stdout.write(
          [
            `backlog ${backlog === 'default' ? 'default (ESL_LISTEN_BACKLOG unset)' : backlog}: ${CALLS} connects at once`,
            `  handshakes completed ${r.handshakes}, failed ${CALLS - r.handshakes}; calls completed ${r.ok}, failed ${r.failed} ${r.failed ? JSON.stringify(r.errors) : ''}`,
            `  connect → daemon's \`connect\`: p50 ${r.handshakeMs.p50.toFixed(0)} ms, p99 ${r.handshakeMs.p99.toFixed(0)} ms, max ${r.handshakeMs.max.toFixed(0)} ms; whole burst ${r.seconds.toFixed(1)} s; daemon's failed handshakes ${daemonHandshakeErrors}`,
          ].join('\n') + '\n',
        );
      } finally {
        await daemon.stop();
        fs.rmSync(daemon.dir, { recursive: true, force: true });
      }
    }
  } finally {
    await gen.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:burst failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
