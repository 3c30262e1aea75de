/**
 * Metrics of the missed-call notification outbox, registered on the registry it is given (the
 * daemon's private one): how many wait, and what each delivery attempt came to.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { NOTIFY_CHANNELS } from './queue';

/** sent: delivered; retry: failed, tried again later; failed: given up (or cannot be sent). */
export const SEND_RESULTS = ['sent', 'retry', 'failed'] as const;
export type SendResult = (typeof SEND_RESULTS)[number];

export interface NotifyMetrics {
  /** Notifications still pending (due or waiting for a retry), set after every dispatcher run. */
  readonly backlog: Gauge;
  readonly sent: Counter<'channel' | 'result'>;
}

export function createNotifyMetrics(registry: Registry): NotifyMetrics {
  const backlog = new Gauge({
    name: 'hotline_notifications_backlog',
    help: 'Missed-call notifications not yet delivered nor given up (status pending), as counted after the last dispatcher run.',
    registers: [registry],
  });
  const sent = new Counter({
    name: 'hotline_notifications_sent_total',
    help: 'Missed-call notification delivery attempts by channel (sms, email) and result (sent; retry: failed, tried again later; failed: given up).',
    labelNames: ['channel', 'result'] as const,
    registers: [registry],
  });
  // Known label sets start at 0 so that increase() sees the first failure after a start.
  for (const channel of NOTIFY_CHANNELS) for (const result of SEND_RESULTS) sent.inc({ channel, result }, 0);
  return { backlog, sent };
}
