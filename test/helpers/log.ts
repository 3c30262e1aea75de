/**
 * A pino logger that keeps every line it writes, parsed, for a test to read: what the daemon or a
 * step logged, with its fields.
 */
import { Writable } from 'node:stream';
import pino from 'pino';

export function capturingLogger(level: pino.LevelWithSilent = 'info'): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino(
    { level },
    new Writable({
      write: (chunk: Buffer, _enc, done) => {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { log, lines };
}
