/**
 * esl.listenBacklog reaches listen(): the kernel reports a listening socket's backlog as the
 * Send-Q column of `ss -l` (iproute2; .ci/run installs it), capped at net.core.somaxconn. How many
 * connects a backlog survives is measured by `npm run bench:burst`, not here.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import t from 'tap';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

/** The backlog of the TCP socket listening on 127.0.0.1:port, as the kernel holds it. */
function listenBacklog(port: number): number {
  const ss = spawnSync('ss', ['-H', '-l', '-t', '-n', `sport = :${port}`], { encoding: 'utf8', timeout: 10_000 });
  if (ss.error || ss.status !== 0) {
    throw new Error(`ss does not run (${ss.error?.message ?? `exit ${String(ss.status)}`}): apt-get install iproute2 (.ci/run installs it)`);
  }
  const fields = ss.stdout.trim().split(/\s+/);
  return Number(fields[2]); // State Recv-Q Send-Q Local Peer
}

const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));

t.test('the ESL listener is opened with esl.listenBacklog', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl(), { esl: { listenBacklog: 123 } });
  t.teardown(() => d.stop());
  t.equal(listenBacklog(d.port), Math.min(123, somaxconn), 'the configured backlog, not Node\'s 511');
});

t.test('the default asks for 4096, which the kernel caps at somaxconn', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  t.equal(d.settings.esl.listenBacklog, 4096);
  t.equal(listenBacklog(d.port), Math.min(4096, somaxconn));
});
