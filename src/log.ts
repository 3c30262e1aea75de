/** JSON logs (pino): one line per event, a child logger per call carries its identifiers. */
import pino, { type Logger } from 'pino';

/**
 * Lines gathered before they are written (one write of libuv's thread pool for many lines, where
 * pino's own default makes one a line), and the longest a line waits when fewer come.
 */
export const LOG_BUFFER_BYTES = 4096;
export const LOG_FLUSH_MS = 100;

/** Logs to `destination`, or to stdout through `bufferedDestination`. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const stream = destination ?? bufferedDestination(1);
  return pino({ level, base: { service: 'hotline' }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}

/**
 * An open file descriptor written asynchronously in chunks of LOG_BUFFER_BYTES, at least every
 * LOG_FLUSH_MS, and flushed synchronously when the process exits (pino registers that for an
 * asynchronous destination), so a line logged just before process.exit() or an uncaught
 * exception is not lost. A process killed outright (SIGKILL, out of memory) loses at most the last
 * LOG_FLUSH_MS of lines. A descriptor, not a path: a path is opened asynchronously, and an exit
 * before it is open would lose the lines (sonic-boom: "not ready yet").
 */
export function bufferedDestination(fd: number, opts: { bufferBytes?: number; flushMs?: number } = {}): pino.DestinationStream {
  const stream = pino.destination({ dest: fd, minLength: opts.bufferBytes ?? LOG_BUFFER_BYTES, sync: false });
  let pending = false;
  let closed = false;
  const write = stream.write.bind(stream);
  stream.write = (line: string): boolean => {
    pending = true;
    return write(line);
  };
  const timer = setInterval(() => {
    if (!pending || closed) return;
    pending = false;
    stream.flush();
  }, opts.flushMs ?? LOG_FLUSH_MS);
  timer.unref();
  stream.on('close', () => {
    closed = true;
    clearInterval(timer);
  });
  return stream;
}

export type { Logger };
