/** JSON logs (pino): one line per event, a child logger per call carries its identifiers. */
import fs from 'node:fs';
import pino, { type Logger } from 'pino';

/**
 * Lines gathered before they are written, and the longest a line waits when fewer come. Pino's own
 * default writes every line through libuv's thread pool (bench/PROFILE.md, release 10). A chunk is
 * at most PIPE_BUF (4,096 bytes on Linux) unless one line is longer: a write that size to a pipe
 * is atomic, so the lines of cluster workers sharing one stdout never tear each other.
 */
export const LOG_CHUNK_BYTES = 4096;
export const LOG_FLUSH_MS = 100;
/** How long a chunk waits after stdout said EAGAIN (a full non-blocking pipe) before it is tried again. */
const EAGAIN_RETRY_MS = 20;

let stdout: GatheredLines | null = null;

/** Logs to `destination`, or to stdout through one `gatheredLines` a process (none for 'silent'). */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const stream = destination ?? (level === 'silent' ? { write: () => undefined } : (stdout ??= gatheredLines(1)));
  return pino({ level, base: { service: 'hotline' }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}

export interface GatheredLines extends pino.DestinationStream {
  /** Hands what is gathered to the writer (asynchronously). */
  flush(): void;
  /** Writes what is left, then closes the descriptor (tests; the daemon's stdout lives as long as it does). */
  end(): Promise<void>;
}

/** Destinations whose lines are written when the process ends ('beforeExit': asynchronously; 'exit': at once). */
const open = new Set<{ flush(): void; flushSync(): void }>();
process.on('beforeExit', () => {
  for (const d of open) d.flush();
});
process.on('exit', flushLogsSync);

/** Writes every gathered line now: at exit, and before the process ends by a signal (src/main.ts). */
export function flushLogsSync(): void {
  for (const d of open) d.flushSync();
}

/**
 * An open file descriptor's log lines, gathered into chunks of at most LOG_CHUNK_BYTES of whole
 * lines; a chunk is written (fs.write, one at a time, in order) when it is full or LOG_FLUSH_MS
 * after its first line. A full non-blocking pipe (EAGAIN) is tried again shortly; any other error
 * (a closed pipe, a full disk) stops the logging, never the daemon. When the process exits
 * (process.exit(), an uncaught exception) what has not been handed to a write yet is written
 * synchronously, a few tries at most, so no line logged before it is lost and a broken stdout
 * cannot hold the exit; a chunk already handed to fs.write is still written, after those lines:
 * the thread pool finishes its queued work before the process ends (libuv's shutdown; proven in
 * test/daemon/log-buffer.test.ts). A process killed outright (SIGKILL, out of memory) loses at
 * most the last LOG_FLUSH_MS of lines.
 */
export function gatheredLines(fd: number, opts: { chunkBytes?: number; flushMs?: number } = {}): GatheredLines {
  const chunkBytes = opts.chunkBytes ?? LOG_CHUNK_BYTES;
  const flushMs = opts.flushMs ?? LOG_FLUSH_MS;
  let lines: string[] = [];
  let bytes = 0;
  let timer: NodeJS.Timeout | null = null;
  /** Chunks not yet handed to a write, in order. */
  const queue: Buffer[] = [];
  let writing = false;
  let broken = false;
  let ended = false;
  let drained: (() => void) | null = null;

  const writeNext = (): void => {
    if (writing) return;
    const chunk = broken ? undefined : queue.shift();
    if (chunk === undefined) {
      drained?.();
      return;
    }
    writing = true;
    fs.write(fd, chunk, 0, chunk.length, null, (err, written) => {
      writing = false;
      if (err) {
        if (err.code === 'EAGAIN') {
          queue.unshift(chunk);
          setTimeout(writeNext, EAGAIN_RETRY_MS).unref();
          return;
        }
        broken = true;
        queue.length = 0;
      } else if (written < chunk.length) {
        queue.unshift(chunk.subarray(written));
      }
      writeNext();
    });
  };
  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (lines.length === 0) return;
    queue.push(Buffer.from(lines.join('')));
    lines = [];
    bytes = 0;
    writeNext();
  };
  const exit = {
    flush,
    flushSync: (): void => {
      if (timer) clearTimeout(timer);
      if (lines.length > 0) queue.push(Buffer.from(lines.join('')));
      lines = [];
      for (let chunk = queue.shift(), tries = 0; chunk !== undefined && !broken; ) {
        try {
          const written = fs.writeSync(fd, chunk);
          chunk = written < chunk.length ? chunk.subarray(written) : queue.shift();
        } catch (err) {
          // A full pipe: a few short waits, then give up; anything else: nothing left to write to.
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++tries > 5) broken = true;
          else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EAGAIN_RETRY_MS);
        }
      }
      queue.length = 0;
    },
  };
  open.add(exit);
  return {
    write(line: string): void {
      if (ended) return;
      const size = Buffer.byteLength(line);
      if (bytes > 0 && bytes + size > chunkBytes) flush();
      lines.push(line);
      bytes += size;
      if (bytes >= chunkBytes) flush();
      else timer ??= setTimeout(flush, flushMs).unref();
    },
    flush,
    end: () =>
      new Promise<void>((resolve) => {
        if (ended) return resolve();
        ended = true;
        open.delete(exit);
        drained = () => {
          drained = null;
          fs.close(fd, () => resolve());
        };
        flush();
        writeNext();
      }),
  };
}

export type { Logger };
