/**
 * The one configuration schema of the daemon. Every key is documented here, settable from a
 * JSON config file (CONFIG_FILE) and from its environment variable. Nothing outside src/config
 * reads process.env: the validated, frozen Settings object is passed down.
 */
import convict from 'convict';

/** Formats the schema uses beyond convict's built-ins. */
export function registerFormats(): void {
  // convict's own nat/port coerce with parseInt, so "12abc" would become 12 and "1e3" 1.
  const wholeNumber = (max: number) => ({
    coerce: (v: unknown) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
        throw new Error(`must be a whole number from 0 to ${max}`);
      }
    },
  });
  convict.addFormat({ name: 'count', ...wholeNumber(Number.MAX_SAFE_INTEGER) });
  convict.addFormat({ name: 'tcp-port', ...wholeNumber(65535) });
  convict.addFormat({
    name: 'database-url',
    validate(value: unknown) {
      if (typeof value !== 'string' || !/^(mysql|mariadb):\/\/.+|^sqlite:.+/.test(value)) {
        throw new Error('must be mysql://user:pass@host:port/db, mariadb://… or sqlite:<path>');
      }
    },
  });
  convict.addFormat({
    name: 'dial-string-template',
    validate(value: unknown) {
      if (typeof value !== 'string' || !value.includes('${number}')) {
        throw new Error('must contain the placeholder ${number}, e.g. sofia/gateway/carrier/${number}');
      }
      if (/[\r\n]/.test(value)) throw new Error('must not contain CR or LF');
      // Only the ${number} placeholder is ours; any other ${...} would be expanded by FreeSWITCH.
      if (value.replaceAll('${number}', '').includes('${')) {
        throw new Error('may contain no FreeSWITCH variable other than ${number}');
      }
    },
  });
  convict.addFormat({
    name: 'id-list',
    validate(value: unknown) {
      if (typeof value !== 'string' || !/^\s*(\d+\s*(,\s*\d+\s*)*)?$/.test(value)) throw new Error('must be comma-separated whole numbers, e.g. 12,34');
      if (value.split(',').filter((v) => v.trim() !== '').length > 50) throw new Error('lists at most 50 ids (label cardinality)');
    },
  });
  convict.addFormat({
    name: 'listen-host',
    validate(value: unknown) {
      if (typeof value !== 'string' || value.length === 0 || /\s/.test(value)) {
        throw new Error('must be an IP address or host name');
      }
    },
  });
}

export const schema = {
  database: {
    url: {
      doc: 'Where tenant configuration lives and CDRs go: mysql://user:pass@host:3306/db or sqlite:./var/calls.db (embedded default).',
      format: 'database-url',
      default: 'sqlite:./var/calls.db',
      env: 'DATABASE_URL',
    },
    poolMax: {
      doc: 'Largest number of pooled MySQL connections.',
      format: 'count',
      default: 10,
      env: 'DATABASE_POOL_MAX',
    },
    seedDemo: {
      doc: 'Seed a demo tenant into an empty database: auto (only for SQLite), always, never.',
      format: ['auto', 'always', 'never'],
      default: 'auto',
      env: 'SEED_DEMO',
    },
  },
  esl: {
    listenHost: {
      doc: 'Address the outbound event socket listens on. FreeSWITCH runs "socket host:port async full": with "full" a connected peer can run any API command, so keep this on loopback or behind a firewall.',
      format: 'listen-host',
      default: '127.0.0.1',
      env: 'ESL_LISTEN_HOST',
    },
    listenPort: {
      doc: 'TCP port of the outbound event socket (the port in the dialplan\'s socket application).',
      format: 'tcp-port',
      default: 8084,
      env: 'ESL_LISTEN_PORT',
    },
    replyTimeoutMs: {
      doc: 'How long FreeSWITCH may take to answer one command (its command/reply) before the call is treated as lost.',
      format: 'count',
      default: 5000,
      env: 'ESL_REPLY_TIMEOUT_MS',
    },
    appTimeoutMarginMs: {
      doc: 'Extra time allowed beyond an application\'s own expected duration (ring timeout, prompt length) before its completion is given up on.',
      format: 'count',
      default: 10000,
      env: 'ESL_APP_TIMEOUT_MARGIN_MS',
    },
    lingerS: {
      doc: 'Seconds FreeSWITCH keeps the socket open after hangup ("linger"), so CHANNEL_HANGUP_COMPLETE still arrives.',
      format: 'count',
      default: 10,
      env: 'ESL_LINGER_S',
    },
  },
  metrics: {
    host: {
      doc: 'Address the Prometheus /metrics endpoint listens on.',
      format: 'listen-host',
      default: '127.0.0.1',
      env: 'METRICS_HOST',
    },
    port: {
      doc: 'Port of the Prometheus /metrics endpoint.',
      format: 'tcp-port',
      default: 9464,
      env: 'METRICS_PORT',
    },
    tenantIds: {
      doc: 'Comma-separated tenant ids (at most 50) whose calls and groups get their own label values in the tenant drill-down metrics; every other tenant is counted as "other".',
      format: 'id-list',
      default: '',
      env: 'METRICS_TENANT_IDS',
    },
  },
  dial: {
    stringTemplate: {
      doc: 'FreeSWITCH dial string for outgoing legs; ${number} is replaced by the validated destination number.',
      format: 'dial-string-template',
      default: 'sofia/gateway/carrier/${number}',
      env: 'DIAL_STRING_TEMPLATE',
    },
  },
  calls: {
    maxDurationS: {
      doc: 'Longest call the daemon will wait for (bridged talk time included) before it gives up on the call.',
      format: 'count',
      default: 14400,
      env: 'CALL_MAX_DURATION_S',
    },
    drainTimeoutS: {
      doc: 'On SIGTERM, how long live calls may go on before the daemon hangs them up and exits.',
      format: 'count',
      default: 30,
      env: 'DRAIN_TIMEOUT_S',
    },
    maxFailoverGroups: {
      doc: 'Most destination groups one call hunts through along failover_group_id links (loop guard).',
      format: 'count',
      default: 10,
      env: 'MAX_FAILOVER_GROUPS',
    },
  },
  prompts: {
    systemDir: {
      doc: 'Directory, as FreeSWITCH sees it, holding the system prompts (not_in_service.wav, nobody_answered.wav …).',
      format: String,
      default: '/usr/share/freeswitch/sounds/hotline',
      env: 'PROMPTS_DIR',
    },
  },
  configCache: {
    pollIntervalMs: {
      doc: 'How often the daemon asks the database whether tenant configuration changed.',
      format: 'count',
      default: 2000,
      env: 'CONFIG_POLL_INTERVAL_MS',
    },
    fullReloadIntervalS: {
      doc: 'Reload the whole configuration at least this often even when no change was seen.',
      format: 'count',
      default: 300,
      env: 'CONFIG_FULL_RELOAD_INTERVAL_S',
    },
  },
  cdr: {
    spoolDir: {
      doc: 'Durable local spool for CDRs not yet in the database (replayed when it is back).',
      format: String,
      default: './var/spool/cdr',
      env: 'CDR_SPOOL_DIR',
    },
    flushIntervalMs: {
      doc: 'How often spooled CDRs are written to the database in one batch.',
      format: 'count',
      default: 200,
      env: 'CDR_FLUSH_INTERVAL_MS',
    },
    retryIntervalMs: {
      doc: 'After a database failure, how long to wait before the spool is replayed again.',
      format: 'count',
      default: 5000,
      env: 'CDR_RETRY_INTERVAL_MS',
    },
  },
  node: {
    name: {
      doc: 'Name of this daemon in CDRs (cdrs.node) and logs; empty = the host name.',
      format: String,
      default: '',
      env: 'NODE_NAME',
    },
  },
  log: {
    level: {
      doc: 'Log level: fatal, error, warn, info, debug, trace.',
      format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      env: 'LOG_LEVEL',
    },
  },
};
