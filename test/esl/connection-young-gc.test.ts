/**
 * A call's connection must die young: nothing of it may outlive the young generation's
 * collections once the call is over. When its counters were an object literal with a getter over
 * the framer, every connection, its socket and all the call held were kept by every scavenge and
 * promoted (bench/PROFILE.md, release 15): at 200 calls/s the scavenges, the daemon's main pauses,
 * copied about 1.8 KB more a call for it. Assumes V8's two generations (Node.js 20).
 */
import path from 'node:path';
import t from 'tap';
import { runTsChild } from '../helpers/ts-child';

t.test('connections dropped after use do not reach the old generation through two scavenges', async (t) => {
  const { oldGrownBytes, markerBytesAtLeast } = await runTsChild<{ oldGrownBytes: number; markerBytesAtLeast: number }>(path.join(__dirname, 'young-gc-child.ts'), [], ['--expose-gc']);
  // Kept, the markers alone would grow it by at least markerBytesAtLeast (12.2 MiB; with the literal it grew 31.6 MiB).
  t.ok(oldGrownBytes < markerBytesAtLeast / 4, `old generation grew ${(oldGrownBytes / 1048576).toFixed(2)} MB; the dropped connections' markers are at least ${(markerBytesAtLeast / 1048576).toFixed(1)} MB`);
});
