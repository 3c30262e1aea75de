/**
 * On SQLite the first bridge of a hunt reaches FreeSWITCH in the same write as the greeting it
 * follows: caller memory is answered within the turn of the event loop it is asked in
 * (better-sqlite3 is synchronous), so the greeting's commands wait for it to the end of that turn
 * (CallChannel.sendAtEndOfTurn) and FreeSWITCH reads both at once: one round trip fewer before the
 * phones ring. FreeSWITCH still plays the greeting first: the playback is event-locked, and an
 * application queued behind it starts when it ends (test/esl/event-lock.test.ts).
 *
 * A real daemon on SQLite; the FreeSWITCH stand-in runs in a process of its own
 * (place-call-child.ts), reading its socket while the daemon works, as FreeSWITCH does: in the
 * daemon's process it would only read between the daemon's turns and see two writes of one turn
 * as one read.
 */
import path from 'node:path';
import t from 'tap';
import { startTestDaemon, tempSqliteUrl, type TestDaemon } from '../helpers/daemon';
import { runTsChild } from '../helpers/ts-child';

interface Placed {
  uuid: string;
  apps: Array<{ app: string; read: number }>;
}

function placeInChild(d: TestDaemon, caller: string): Promise<Placed> {
  return runTsChild<Placed>(path.join(__dirname, 'place-call-child.ts'), [String(d.port), caller]);
}

t.test('SQLite: greeting and first bridge in one read of FreeSWITCH\'s socket, greeting first', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  for (const [memoryHours, callers] of [[24, ['13912345601', '13912345602', '13912345603']], [0, ['13912345604']]] as const) {
    await d.knex('tenants').update({ caller_memory_hours: memoryHours });
    await d.daemon.store.poll();
    for (const caller of callers) {
      const placed = await placeInChild(d, caller);
      const playback = placed.apps.find((a) => a.app === 'playback');
      const bridge = placed.apps.find((a) => a.app === 'bridge');
      t.ok(playback && bridge, `caller memory ${memoryHours} h: a greeting and a bridge`, { apps: placed.apps });
      t.equal(bridge?.read, playback?.read, `caller memory ${memoryHours} h: the bridge came in the greeting's read`);
      t.ok(placed.apps.indexOf(playback!) < placed.apps.indexOf(bridge!), 'written in that order');
      t.match(await d.cdr(placed.uuid), { outcome: 'answered', answered_by: '13800000001' });
    }
  }
});
