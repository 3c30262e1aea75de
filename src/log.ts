/** JSON logs (pino): one line per event, a child logger per call carries its identifiers. */
import pino, { type Logger } from 'pino';

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'hotline' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

export type { Logger };
