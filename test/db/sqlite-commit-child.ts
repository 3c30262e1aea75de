/**
 * Child process of sqlite-durable.test.ts (run under strace): migrates a fresh SQLite file, then
 * writes one CDR batch between two marker files, then dies by SIGKILL, so that no close-time
 * checkpoint can sync the WAL for it. The test reads which syncs happened between the markers,
 * and on which thread (the file `pid`: the main thread's id).
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeCdrs } from '../../src/cdr/batch';
import { createKnex } from '../../src/db/connect';
import { migrateLatest } from '../../src/db/migrate';
import { seedDemoIfEmpty } from '../../src/db/demo-seed';

async function main(): Promise<void> {
  const dir = process.argv[2];
  const knex = createKnex(`sqlite:${path.join(dir, 'calls.db')}`);
  await migrateLatest(knex);
  await seedDemoIfEmpty(knex);
  fs.writeFileSync(path.join(dir, 'pid'), String(process.pid)); // the main thread's id, as strace -f prints it
  fs.writeFileSync(path.join(dir, 'marker-before'), '');
  const written = await writeCdrs(knex, [
    { call_uuid: 'durable-1', tenant_id: 1, access_number: '4001012345', caller: '13912345678', started_at: '2026-12-03 10:00:00.000', ended_at: '2026-12-03 10:01:00.000', duration_s: 60, billsec: 0, outcome: 'no_answer', node: 'test', admitted: 1, cost: '0.0000' } as never,
  ]);
  fs.writeFileSync(path.join(dir, 'marker-after'), String(written));
  process.kill(process.pid, 'SIGKILL');
}

void main();
