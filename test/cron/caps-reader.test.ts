// The caps job on an SQLite file it cannot open a reader of its own for (the file renamed under
// the daemon, its permissions changed): the recount still runs, on knex's connection, and the
// refusal is logged once while it lasts, not every minute; the reader coming back is said once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { cronJobs } from '../../src/cron/index';
import type { LiveCallGuard } from '../../src/billing/live-guard';
import { loadSettings } from '../../src/config';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { dbTargets } from '../helpers/db';
import { addCdrs, addTenant, usage } from '../billing/helpers';

const sqlite = dbTargets().find((d) => d.name === 'sqlite');

void t.test('caps: a reader refused is logged once while it lasts; the recount runs on knex meanwhile', { skip: sqlite ? false : 'no SQLite target' }, async (t) => {
  const db = await sqlite!.create();
  t.teardown(() => db.destroy());
  // The recount's reader opens this path; knex's connection is the test database's.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-caps-reader-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const readerFile = path.join(dir, 'hotline.db');
  const settings = loadSettings({ env: {}, overrides: { database: { url: `sqlite:${readerFile}` }, log: { level: 'silent' } } });
  const lines: Array<{ level: number; msg: string; job?: string }> = [];
  const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  const jobs = cronJobs({ settings, knex: db.knex, log, metrics: new Metrics(), liveCalls: () => [] }, {} as LiveCallGuard);
  const caps = jobs.find((j) => j.name === 'caps')!;
  const tenant = await addTenant(db.knex, {});
  const at = new Date('2026-11-20T02:00:00.000Z'); // 10:00 in Shanghai: the CDR a second before is the same day
  await addCdrs(db.knex, [{ tenant_id: tenant, started_at: new Date(at.getTime() - 1000), cost: '0.1500' }]);
  // The run's logger, as the scheduler makes it (scheduler.ts jobLog).
  const run = async (): Promise<number | void> => caps.run({ tick: at, now: () => at, signal: new AbortController().signal, log: log.child({ job: 'caps', tick: at.toISOString() }), node: 'test-node' });

  const refused = (): typeof lines => lines.filter((l) => l.msg.startsWith("caps: the SQLite file cannot be opened for the recount's own reads"));
  t.equal(await run(), 2, 'the day and month rows written: the recount ran on knex\'s connection');
  t.equal(await run(), 0, 'a second run: nothing to correct');
  t.equal(await run(), 0);
  t.equal(refused().length, 1, 'three runs refused: one line');
  t.equal(refused()[0]?.level, 40, 'a warning');
  t.equal(refused()[0]?.job, 'caps', 'it names its job');

  // The file is there again (a link to the test's database; SQLite follows it to the file and its
  // WAL): the next run opens a reader.
  fs.symlinkSync(path.resolve(db.url.slice('sqlite:'.length)), readerFile);
  t.equal(await run(), 0);
  t.same(lines.filter((l) => /opened its own connection to the SQLite file again/.test(l.msg)).map((l) => l.msg), ['the caps recount opened its own connection to the SQLite file again']);
  t.ok((await usage(db.knex, tenant, 'day', '2026-11-20')) !== null, 'the day row stays');
});
