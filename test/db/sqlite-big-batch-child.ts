/**
 * Child process of sqlite-durable.test.ts (run under strace): migrates a fresh SQLite file, then
 * writes one CDR batch of the writer's size (2,000 rows, DEFAULT_BATCH_ROWS) between two marker
 * files. The test reads which files the batch opened.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeCdrs } from '../../src/cdr/batch';
import type { CdrRecord } from '../../src/cdr/record';
import { createKnex } from '../../src/db/connect';
import { migrateLatest } from '../../src/db/migrate';
import { seedDemoIfEmpty } from '../../src/db/demo-seed';

async function main(): Promise<void> {
  const dir = process.argv[2];
  const knex = createKnex(`sqlite:${path.join(dir, 'calls.db')}`);
  await migrateLatest(knex);
  await seedDemoIfEmpty(knex);
  const records = Array.from({ length: 2000 }, (_, i) => ({
    call_uuid: `big-batch-${String(i).padStart(4, '0')}`, tenant_id: 1, access_number: '4001012345', caller: `139${String(10_000_000 + i)}`,
    started_at: '2026-12-03 10:00:00.000', answered_at: '2026-12-03 10:00:05.000', ended_at: '2026-12-03 10:01:00.000',
    duration_s: 60, billsec: 55, outcome: 'answered', node: 'test', admitted: 1, cost: '0.1000', caller_region: '北京',
  }) as unknown as CdrRecord);
  fs.writeFileSync(path.join(dir, 'marker-before'), '');
  const written = await writeCdrs(knex, records);
  fs.writeFileSync(path.join(dir, 'marker-after'), String(written));
  await knex.destroy();
}

void main();
