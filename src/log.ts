/** JSON logs (pino): one line per event, a child logger per call carries its identifiers. */
import pino, { type Logger } from 'pino';

/**
 * Lines gathered before they are written, and the longest a line waits when fewer come. Pino's own
 * default writes every line through libuv's thread pool (bench/PROFILE.md, release 10). A chunk is
 * at most PIPE_BUF (4,096 bytes on Linux) unless one line is longer: a write that size to a pipe
 * is atomic, so the lines of cluster workers sharing one stdout never tear each other.
 */
export const LOG_CHUNK_BYTES = 4096;
export const LOG_FLUSH_MS = 100;

/** Logs to `destination`, or to stdout through `gatheredLines`. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'hotline' }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? gatheredLines(1));
}

export interface GatheredLines extends pino.DestinationStream {
  /** Hands what is gathered to the file descriptor's writer (asynchronously). */
  flush(): void;
  /** Writes what is left and closes the writer (tests; the daemon's stdout lives as long as it does). */
  end(): Promise<void>;
}

/**
 * Destinations whose gathered lines are written when the process ends. Registered when this
 * module loads, so before pino's own handlers for the writers (on-exit-leak-free, registered with
 * the first writer): the lines reach a writer before pino flushes it on 'exit', or ends it on
 * 'beforeExit'.
 */
const open = new Set<{ flush(): void; flushSync(): void }>();
process.on('beforeExit', () => {
  for (const d of open) d.flush();
});
process.on('exit', () => {
  for (const d of open) d.flushSync();
});

/**
 * An open file descriptor's log lines, gathered into chunks of at most LOG_CHUNK_BYTES and handed
 * to an asynchronous writer (sonic-boom, one chunk a write, `maxWrite` so it never joins two) when
 * a chunk is full or LOG_FLUSH_MS after its first line. At exit (process.exit(), an uncaught
 * exception) what is gathered is written synchronously, so no line logged before it is lost; a
 * process killed outright (SIGKILL, out of memory) loses at most the last LOG_FLUSH_MS of lines. A
 * descriptor, not a path: a path is opened asynchronously, and an exit before it is open would
 * lose the lines (sonic-boom: "not ready yet").
 */
export function gatheredLines(fd: number, opts: { chunkBytes?: number; flushMs?: number } = {}): GatheredLines {
  const chunkBytes = opts.chunkBytes ?? LOG_CHUNK_BYTES;
  const flushMs = opts.flushMs ?? LOG_FLUSH_MS;
  const out = pino.destination({ dest: fd, sync: false, minLength: 0, maxWrite: chunkBytes });
  let lines: string[] = [];
  let bytes = 0;
  let timer: NodeJS.Timeout | null = null;
  let ended = false;
  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (lines.length === 0) return;
    const chunk = lines.join('');
    lines = [];
    bytes = 0;
    out.write(chunk);
  };
  const exit = {
    flush,
    flushSync: (): void => {
      try {
        flush();
        out.flushSync();
      } catch {
        // stdout already gone (a closed pipe): nothing left to write to, and no reason to fail the exit.
      }
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
        flush();
        open.delete(exit);
        out.once('close', () => resolve());
        out.end();
      }),
  };
}

export type { Logger };
