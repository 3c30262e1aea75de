/**
 * The CDR writer's thread (batch-runner.ts ThreadRunner): one connection of its own to the SQLite
 * database file, one batch at a time, each answered with its result or its error. It decides
 * nothing: halving, quarantine and the spool stay with the writer on the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createKnex } from '../db/connect';
import { writeCdrBatch } from './batch';
import { toThreadError, type BatchReply, type BatchRequest, type ThreadData, type ThreadReady } from './batch-runner';
import { lowerThisThreadPriority } from './thread-priority';

const port = parentPort;
if (!port) throw new Error('batch-thread.ts runs as a worker thread (batch-runner.ts)');
const data = workerData as ThreadData;
// First, before the connection: everything this thread does yields to the calls' thread.
const priority = lowerThisThreadPriority(data.nice, data.platform);
const knex = createKnex(data.databaseUrl);
// Up once its connection is open (knex opens one at the first statement), so the first batch
// finds it made. A database that cannot be opened ends the thread by an uncaught exception (its
// 'error' event fails what it holds): a plain Error, thrown outside the promise, whatever the
// process's --unhandled-rejections mode; the database's own error class would reach the runner
// as its code alone, without its message. From here on each batch has its bound (batch-runner.ts);
// the thread's start has its own.
knex.raw('select 1').then(
  () => port.postMessage({ ready: true, priority } satisfies ThreadReady),
  (err: unknown) => {
    const e = toThreadError(err);
    setImmediate(() => {
      throw new Error(`cannot open the database: ${e.code ? `${e.code}: ` : ''}${e.message}`);
    });
  },
);

port.on('message', (message: BatchRequest | { close: true }) => {
  if ('close' in message) {
    void knex.destroy().finally(() => port.close());
    return;
  }
  const tenants = message.tenants === null ? undefined : new Map(message.tenants);
  const now = new Date(message.now);
  writeCdrBatch(knex, message.records, tenants && (() => tenants), () => now).then(
    (result) => port.postMessage({ id: message.id, ok: true, result } satisfies BatchReply),
    (err: unknown) => port.postMessage({ id: message.id, ok: false, error: toThreadError(err) } satisfies BatchReply),
  );
});
