/**
 * A call's connection must die young: nothing of it may outlive the young generation's
 * collections once the call is over. When its counters were an object literal with a getter over
 * the framer, every connection, its socket and all the call held were kept by every scavenge and
 * promoted (bench/PROFILE.md, release 15): at 200 calls/s the scavenges, the daemon's main pauses,
 * copied about 1.8 KB more a call for it. Assumes V8's two generations (Node.js 20).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import t from 'tap';

function runChild(): Promise<{ oldGrownBytes: number; markerBytesAtLeast: number }> {
  const register = require.resolve('ts-node/register/transpile-only');
  return new Promise((resolve, reject) => {
    // tap's processinfo puts its loader into NODE_OPTIONS of every child: a plain environment (as test/helpers/strace.ts).
    execFile('sh', ['-c', 'unset NODE_OPTIONS; exec "$0" "$@"', process.execPath, '--expose-gc', '-r', register, path.join(__dirname, 'young-gc-child.ts')], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      cwd: path.join(__dirname, '..', '..'),
      timeout: 60_000,
    }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as { oldGrownBytes: number; markerBytesAtLeast: number })));
  });
}

t.test('connections dropped after use do not reach the old generation through two scavenges', async (t) => {
  const { oldGrownBytes, markerBytesAtLeast } = await runChild();
  // Kept, the markers alone would grow it by at least markerBytesAtLeast (12.2 MiB; with the literal it grew 31.6 MiB).
  t.ok(oldGrownBytes < markerBytesAtLeast / 4, `old generation grew ${(oldGrownBytes / 1048576).toFixed(2)} MB; the dropped connections' markers are at least ${(markerBytesAtLeast / 1048576).toFixed(1)} MB`);
});
