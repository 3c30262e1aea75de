/**
 * Child process of quarantine-durable.test.ts (run under strace): a spool folder whose only
 * segment holds a line that cannot be a record; one flush quarantines it and deletes the segment.
 * The test reads, from the trace, whether the quarantined line was on disk before the delete.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CdrSpool } from '../../src/cdr/spool';
import { CdrWriter } from '../../src/cdr/writer';
import { createKnex } from '../../src/db/connect';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';

async function main(): Promise<void> {
  const dir = process.argv[2];
  const spoolDir = path.join(dir, 'spool');
  fs.mkdirSync(spoolDir);
  // What a crash in the middle of a write leaves: half a line, the only copy of what it says.
  fs.writeFileSync(path.join(spoolDir, 'segment-1-000000.jsonl'), '{"call_uuid":"torn-1","caller":"1390');
  const knex = createKnex(`sqlite:${path.join(dir, 'calls.db')}`);
  const spool = new CdrSpool(spoolDir);
  await spool.open();
  const writer = new CdrWriter(knex, spool, { flushIntervalMs: 60_000, retryIntervalMs: 60_000 }, createLogger('silent'), new Metrics());
  await writer.flush();
  fs.writeFileSync(path.join(dir, 'marker-after'), String(fs.readdirSync(spoolDir).filter((n) => n.startsWith('segment-')).length));
  process.kill(process.pid, 'SIGKILL');
}

void main();
