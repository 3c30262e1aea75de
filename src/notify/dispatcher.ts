/**
 * Delivers the `notifications` outbox: at least once, by whichever daemon gets to a row first.
 *
 * Claiming works on any number of daemons sharing the database without locks held across a send:
 * a due row (pending, next_attempt_at <= now) is claimed by a conditional UPDATE that bumps
 * `attempts` and moves `next_attempt_at` one lease ahead, WHERE attempts still has the value
 * this daemon read. Only one UPDATE can match (InnoDB re-reads the row under its lock; SQLite
 * has one writer), so only one daemon sends. The attempt number is the claim token: the result
 * is written back only WHERE attempts = the claimed value. A daemon that dies mid-send leaves
 * the row pending; the lease runs out and another daemon sends it again (at-least-once).
 *
 * After a failure the row waits backoffBaseMs × 2^(attempt-1) (capped) and is retried, until
 * NOTIFY_MAX_ATTEMPTS; then it is marked failed with last_error kept. Errors a retry cannot cure
 * (HTTP 4xx, an address the mail server refuses, no gateway configured) fail it at once.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Settings } from '../config';
import { toDbTimestamp } from '../db/connect';
import type { NotifyMetrics } from './metrics';
import type { MissedCallPayload, NotifyChannel } from './queue';
import { missedCallMail, PermanentError, SmsGateway, smsRequest, SmtpMailer } from './transports';

export interface DispatcherOptions {
  readonly knex: Knex;
  readonly notify: Settings['notify'];
  readonly log: Logger;
  readonly metrics?: NotifyMetrics;
  /** Rows read per round; a run goes on while rounds come back full (up to maxRounds). */
  readonly batchSize?: number;
  readonly maxRounds?: number;
  /** Deliveries in flight at once, per daemon. */
  readonly concurrency?: number;
  /** First retry after this long, doubling per attempt, at most backoffCapMs. */
  readonly backoffBaseMs?: number;
  readonly backoffCapMs?: number;
  /** How long a claim holds before another daemon may try the row; default timeoutMs + 60 s. */
  readonly leaseMs?: number;
  /** Clock for start()'s timer runs (runOnce takes its `now`). */
  readonly clock?: () => Date;
  /**
   * A run claims no new row after this long (elapsed time), so that a hanging gateway with a
   * long backlog cannot stretch one run past the next tick; the rest waits for the next run.
   * Default 45 s.
   */
  readonly maxRunMs?: number;
  /** Milliseconds elapsed, for maxRunMs (monotonic; tests give one they advance themselves). */
  readonly elapsedMs?: () => number;
}

export interface RunReport {
  /** Rows this daemon claimed (and attempted). */
  claimed: number;
  sent: number;
  /** Failed this time, retried later. */
  retried: number;
  /** Given up: out of attempts or a permanent error. */
  failed: number;
  /** Due rows another daemon claimed first (contention, not an error). */
  lost: number;
}

interface OutboxRow {
  id: number | string;
  channel: string;
  recipient: string;
  payload: string;
  attempts: number | string;
}

const LAST_ERROR_MAX = 1000;

export class NotificationDispatcher {
  private readonly knex: Knex;
  private readonly settings: Settings['notify'];
  private readonly log: Logger;
  private readonly sms: SmsGateway | null;
  private readonly smsProblem: string | null;
  private mailer: SmtpMailer | null = null;
  private running: Promise<RunReport> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly options: DispatcherOptions) {
    this.knex = options.knex;
    this.settings = options.notify;
    this.log = options.log;
    let sms: SmsGateway | null = null;
    let problem: string | null = null;
    if (this.settings.smsGatewayUrl === '') {
      problem = 'no SMS gateway configured (SMS_GATEWAY_URL is empty)';
    } else {
      try {
        sms = new SmsGateway(this.settings.smsGatewayUrl, this.settings.timeoutMs);
      } catch (err) {
        problem = `SMS_GATEWAY_URL unusable: ${(err as Error).message}`;
      }
    }
    this.sms = sms;
    this.smsProblem = problem;
  }

  /**
   * Delivers every due notification (status pending, next_attempt_at <= now) this daemon can
   * claim. Safe to run on several daemons at once; a second call while one runs joins it.
   * Rejects only when the database cannot be read; delivery errors are recorded in the rows.
   * `signal` (the cron job's): once aborted, no new row is claimed; deliveries under way finish.
   */
  runOnce(now: Date, opts: { signal?: AbortSignal } = {}): Promise<RunReport> {
    this.running ??= this.run(now, opts.signal).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Standalone schedule (when no cron job runs it): runOnce every intervalMs, errors logged. */
  start(intervalMs: number): void {
    this.stopped = false;
    const tick = (): void => {
      this.timer = setTimeout(() => {
        this.runOnce(this.options.clock?.() ?? new Date())
          .catch((err: unknown) => this.log.warn({ err }, 'notification dispatch failed; retried at the next run'))
          .finally(() => {
            if (!this.stopped) tick();
          });
      }, intervalMs);
      this.timer.unref();
    };
    tick();
  }

  /** Stops the timer, waits for a run in progress, closes the SMTP transport. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
    this.mailer?.close();
    this.mailer = null;
  }

  private async run(now: Date, signal: AbortSignal | undefined): Promise<RunReport> {
    const report: RunReport = { claimed: 0, sent: 0, retried: 0, failed: 0, lost: 0 };
    const batchSize = this.options.batchSize ?? 100;
    const maxRounds = this.options.maxRounds ?? 10;
    // Elapsed time, not the scheduling clock: `now` may be a tick time or a test's future.
    const elapsed = this.options.elapsedMs ?? (() => performance.now());
    const deadline = elapsed() + (this.options.maxRunMs ?? 45_000);
    const mayClaim = (): boolean => !signal?.aborted && elapsed() < deadline && !this.stopped;
    try {
      for (let round = 0; round < maxRounds && mayClaim(); round++) {
        const due: OutboxRow[] = await this.knex('notifications')
          .where('status', 'pending')
          .andWhere('next_attempt_at', '<=', toDbTimestamp(now))
          .orderBy('next_attempt_at')
          .orderBy('id')
          .limit(batchSize)
          .select('id', 'channel', 'recipient', 'payload', 'attempts');
        if (due.length === 0) break;
        const before = report.claimed;
        await eachLimited(due, this.options.concurrency ?? 4, (row) => (mayClaim() ? this.process(row, now, report) : Promise.resolve()));
        // A short round means the queue is drained; a round where every row went to other
        // daemons would only read the same rows again.
        if (due.length < batchSize || report.claimed === before) break;
      }
    } finally {
      await this.refreshBacklog();
    }
    if (report.claimed > 0) this.log.info({ ...report }, 'missed-call notifications dispatched');
    return report;
  }

  private async process(row: OutboxRow, now: Date, report: RunReport): Promise<void> {
    const attempts = Number(row.attempts);
    const attempt = attempts + 1;
    const lease = this.options.leaseMs ?? this.settings.timeoutMs + 60_000;
    const claimed = await this.knex('notifications')
      .where({ id: row.id, status: 'pending', attempts })
      .andWhere('next_attempt_at', '<=', toDbTimestamp(now))
      .update({ attempts: attempt, next_attempt_at: toDbTimestamp(new Date(now.getTime() + lease)) });
    if (claimed !== 1) {
      report.lost++; // another daemon got it
      return;
    }
    report.claimed++;
    const channel = row.channel as NotifyChannel;
    try {
      await this.deliver(channel, row.recipient, row.payload);
    } catch (err) {
      await this.recordFailure(row, channel, attempt, err as Error, now, report);
      return;
    }
    await this.knex('notifications')
      .where({ id: row.id, attempts: attempt, status: 'pending' })
      .update({ status: 'sent', sent_at: toDbTimestamp(now), last_error: null });
    report.sent++;
    this.options.metrics?.sent.inc({ channel: metricChannel(channel), result: 'sent' });
  }

  private async recordFailure(row: OutboxRow, channel: NotifyChannel, attempt: number, err: Error, now: Date, report: RunReport): Promise<void> {
    const maxAttempts = Math.max(1, this.settings.maxAttempts);
    const giveUp = err instanceof PermanentError || attempt >= maxAttempts;
    const lastError = `attempt ${attempt}: ${err.message}`.slice(0, LAST_ERROR_MAX);
    const update: Record<string, unknown> = { last_error: lastError };
    if (giveUp) update.status = 'failed';
    else update.next_attempt_at = toDbTimestamp(new Date(now.getTime() + this.backoffMs(attempt)));
    await this.knex('notifications').where({ id: row.id, attempts: attempt, status: 'pending' }).update(update);
    if (giveUp) report.failed++;
    else report.retried++;
    this.options.metrics?.sent.inc({ channel: metricChannel(channel), result: giveUp ? 'failed' : 'retry' });
    // The recipient is the tenant's own contact, not a caller's number: fine in a log line.
    this.log.warn(
      { notification_id: row.id, channel, attempt, max_attempts: maxAttempts, gave_up: giveUp, err: err.message },
      giveUp ? 'missed-call notification failed; giving up' : 'missed-call notification failed; will retry',
    );
  }

  /** Delay before the attempt after `attempt` (1-based): base × 2^(attempt-1), capped. */
  backoffMs(attempt: number): number {
    const base = this.options.backoffBaseMs ?? 60_000;
    const cap = this.options.backoffCapMs ?? 60 * 60_000;
    return Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  }

  private async deliver(channel: NotifyChannel, recipient: string, rawPayload: string): Promise<void> {
    let payload: MissedCallPayload;
    try {
      payload = JSON.parse(rawPayload) as MissedCallPayload;
      if (typeof payload.text !== 'string') throw new Error('no text');
    } catch (err) {
      throw new PermanentError(`payload is not the JSON of a missed call: ${(err as Error).message}`);
    }
    if (channel === 'sms') {
      if (!this.sms) throw new PermanentError(this.smsProblem ?? 'no SMS gateway');
      await this.sms.send(smsRequest(recipient, payload));
    } else if (channel === 'email') {
      if (this.settings.smtpUrl === '') throw new PermanentError('no SMTP server configured (SMTP_URL is empty)');
      this.mailer ??= new SmtpMailer(this.settings.smtpUrl, this.settings.from, this.settings.timeoutMs);
      await this.mailer.send(missedCallMail(recipient, payload));
    } else {
      throw new PermanentError(`unknown channel ${JSON.stringify(String(channel).slice(0, 20))}`);
    }
  }

  /**
   * Sets hotline_notifications_backlog from the table: after every run of this daemon, and (as the
   * job's refresh hook) when another daemon ran the tick and when the scheduler starts, so a
   * restarted daemon that has not won a tick yet does not show an empty outbox.
   */
  async refreshBacklog(): Promise<void> {
    const gauge = this.options.metrics?.backlog;
    if (!gauge) return;
    try {
      const [row] = await this.knex('notifications').where('status', 'pending').count<Array<{ n: number | string }>>({ n: '*' });
      gauge.set(Number(row?.n ?? 0));
    } catch {
      // The database is away: keep the last value rather than report an empty outbox.
    }
  }
}

/** Label values stay within the fixed set even if a DBA wrote something else into `channel`. */
function metricChannel(channel: string): NotifyChannel {
  return channel === 'email' ? 'email' : 'sms';
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
