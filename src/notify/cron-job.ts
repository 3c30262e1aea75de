/**
 * The dispatcher as a job for the daemon's cron scheduler (src/cron/scheduler.ts). Every 20 s so
 * that a missed call's message leaves within a minute. Scope 'cluster': one daemon per tick is
 * enough; the per-row claim would keep several daemons from sending a row twice anyway.
 */
import type { CronJob } from '../cron/scheduler';
import type { NotificationDispatcher } from './dispatcher';

export function notificationsCronJob(dispatcher: NotificationDispatcher, schedule = '*/20 * * * * *'): CronJob {
  return {
    name: 'notifications',
    schedule,
    scope: 'cluster',
    async run(ctx) {
      const report = await dispatcher.runOnce(ctx.now(), { signal: ctx.signal });
      return report.sent + report.retried + report.failed;
    },
    refresh: () => dispatcher.refreshBacklog(),
  };
}
