// The real daemon (src/main.ts) started on MariaDB with a migration pending while a DBA's client
// holds a transaction open on the table it alters, and no cached configuration to route from:
// it stays starting (no listener), logs who holds the table, tries again after its pause, and
// serves once the transaction has ended; a SIGTERM while it waits is a clean stop (exit 0).
// Assumed of MariaDB (test/db/migration-lock-wait.test.ts shows it): the ALTER waits for the
// table's metadata lock while the transaction is open.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Knex } from 'knex';
import { LAST_MIGRATION as LAST, dbaHoldsTenants } from '../helpers/migration-lock';
import { until } from '../helpers/wait';
import { startDaemonProcess, type DaemonProcess } from './spawn';

async function setUp(t: Test): Promise<{ dba: Knex.Transaction; dbaThread: number; start: () => DaemonProcess }> {
  const { db, trx: dba, thread: dbaThread } = await dbaHoldsTenants(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-migration-wait-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const start = (): DaemonProcess => {
    const d = startDaemonProcess({
      DATABASE_URL: db.url, SEED_DEMO: 'always', DATABASE_MIGRATION_LOCK_WAIT_S: '1',
      CDR_SPOOL_DIR: path.join(dir, 'spool'), TTS_CACHE_DIR: path.join(dir, 'tts'), REPORTS_DIR: path.join(dir, 'reports'),
    });
    t.teardown(() => d.child.kill('SIGKILL'));
    return d;
  };
  return { dba, dbaThread, start };
}

const WAITED = `"msg":"database migration ${LAST} gave up after waiting 1 s for a table's lock`;

t.test('no cache: the daemon waits for the transaction to end, naming it, then serves', async (t) => {
  const { dba, dbaThread, start } = await setUp(t);
  const d = start();
  await until('the first lock wait logged', () => d.stdout().includes(WAITED), 120_000);
  const line = d.stdout().split('\n').find((l) => l.includes(WAITED))!;
  const logged = JSON.parse(line) as { level: number; holders: Array<{ threadId: number }>; retryInS: number };
  t.equal(logged.level, 40, 'a warning');
  t.ok(logged.holders.some((h) => h.threadId === dbaThread), `the DBA's thread ${dbaThread} named`);
  t.equal(logged.retryInS, 2, 'tried again in twice the wait');
  await until('a second attempt', () => d.stdout().split('\n').filter((l) => l.includes(WAITED)).length >= 2, 60_000);
  t.notMatch(d.stdout(), /outbound event socket listening|metrics listening/, 'still starting: no call taken');
  t.equal(d.child.exitCode, null, 'not exited');
  await dba.commit();
  await d.listening;
  t.match(d.stdout(), new RegExp(`"migrations":\\["${LAST}"\\],"msg":"database migrated"`), 'then migrated');
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0);
});

t.test('no cache: a SIGTERM while it waits for the table stops it cleanly (exit 0)', async (t) => {
  const { start } = await setUp(t);
  const d = start();
  await until('the first lock wait logged', () => d.stdout().includes(WAITED), 120_000);
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0, 'exit 0');
  t.match(d.stdout(), /"msg":"stopped before the configuration was loaded: neither \/metrics nor the outbound socket opened"/);
  t.notMatch(d.stdout(), /start-up failed/);
  t.equal(d.stderr().trim(), '', 'nothing on stderr');
});
