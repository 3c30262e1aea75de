/**
 * The daemon's Prometheus metrics, on a private registry. Names carry the `hotline_` prefix and
 * base units; labels come only from small fixed sets (never phone numbers, UUIDs or tenant ids).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const OUTCOMES = ['answered', 'voicemail', 'busy', 'no_answer', 'blocked', 'capped', 'pin_failed', 'announced', 'abandoned', 'failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export class Metrics {
  readonly registry = new Registry();

  readonly callsStarted = new Counter({
    name: 'hotline_calls_started_total',
    help: 'Calls FreeSWITCH handed to this daemon (outbound socket accepted and channel data received).',
    labelNames: ['number_kind'] as const,
    registers: [this.registry],
  });

  readonly callsEnded = new Counter({
    name: 'hotline_calls_ended_total',
    help: 'Calls ended, by outcome (the CDR outcome) and access-number kind.',
    labelNames: ['outcome', 'number_kind'] as const,
    registers: [this.registry],
  });

  readonly activeCalls = new Gauge({
    name: 'hotline_active_calls',
    help: 'Calls this daemon is controlling right now.',
    registers: [this.registry],
  });

  readonly callSetupSeconds = new Histogram({
    name: 'hotline_call_setup_seconds',
    help: 'From the socket being accepted to the first leg being dialled.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly eslCommandSeconds = new Histogram({
    name: 'hotline_esl_command_duration_seconds',
    help: 'ESL command round trips (reply, and for applications their completion), by command and result.',
    labelNames: ['command', 'result'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });

  readonly eslConnections = new Counter({
    name: 'hotline_esl_connections_total',
    help: 'Outbound event-socket connections accepted from FreeSWITCH.',
    registers: [this.registry],
  });

  readonly eslErrors = new Counter({
    name: 'hotline_esl_errors_total',
    help: 'ESL problems by kind: timeout, command_failed, socket_closed, protocol, malformed_value, malformed_event, handshake, unsafe_value.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: 'hotline_config_reloads_total',
    help: 'Configuration snapshot loads from the database, by result (ok or error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly configRejectedRows = new Gauge({
    name: 'hotline_config_rejected_rows',
    help: 'Rows the current configuration snapshot skipped as invalid, by table.',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });

  /** When the configuration in force was loaded (set by ConfigStore). */
  configLoadedAt: Date | null = null;

  readonly configAgeSeconds = new Gauge({
    name: 'hotline_config_snapshot_age_seconds',
    help: 'Seconds since the configuration in force was loaded.',
    registers: [this.registry],
    collect: () => {
      if (this.configLoadedAt) this.configAgeSeconds.set((Date.now() - this.configLoadedAt.getTime()) / 1000);
    },
  });

  readonly cdrSpoolDepth = new Gauge({
    name: 'hotline_cdr_spool_depth',
    help: 'CDRs in the local spool not yet confirmed written to the database.',
    registers: [this.registry],
  });

  readonly cdrsWritten = new Counter({
    name: 'hotline_cdrs_written_total',
    help: 'CDRs written to the database (replays of already-written calls are not counted twice).',
    registers: [this.registry],
  });

  readonly cdrsQuarantined = new Counter({
    name: 'hotline_cdrs_quarantined_total',
    help: 'CDRs the database refused as data (kept in the spool quarantine file for a person to look at).',
    registers: [this.registry],
  });

  readonly dbQuerySeconds = new Histogram({
    name: 'hotline_db_query_duration_seconds',
    help: 'Database round trips by operation and result.',
    labelNames: ['operation', 'result'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly dbErrors = new Counter({
    name: 'hotline_db_errors_total',
    help: 'Failed database operations, by operation.',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Times one database operation into dbQuerySeconds/dbErrors. */
  async timeDb<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const end = this.dbQuerySeconds.startTimer({ operation });
    try {
      const result = await fn();
      end({ result: 'ok' });
      return result;
    } catch (err) {
      end({ result: 'error' });
      this.dbErrors.inc({ operation });
      throw err;
    }
  }
}
