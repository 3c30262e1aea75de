/**
 * The one configuration schema of the daemon. Every key is documented here, settable from a
 * JSON config file (CONFIG_FILE) and from its environment variable. Nothing outside src/config
 * reads process.env: the validated, frozen Settings object is passed down. The value formats
 * (format: 'count', 'listen-host' …) are in ./formats.ts.
 */

import { DEFERRED_INPUT_BUDGET_MS } from '../esl/deferred-input';

export { registerFormats } from './formats';

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
      format: 'positive-count',
      default: 10,
      env: 'DATABASE_POOL_MAX',
    },
    seedDemo: {
      doc: 'Seed a demo tenant into an empty database: auto (only for SQLite), always, never.',
      format: ['auto', 'always', 'never'],
      default: 'auto',
      env: 'SEED_DEMO',
    },
    migrationLockWaitS: {
      doc: "MySQL: the longest a database migration at start-up waits for a table's lock (the session's lock_wait_timeout; the server's default is a day). While an ALTER waits (behind a DBA's transaction left open on the table, say), every other statement on that table, from every daemon, waits behind it. After this the migration gives up, its queue goes on, the open transactions are logged, and it is tried again after a pause (twice this, doubling up to 60 s).",
      format: 'seconds',
      default: 5,
      env: 'DATABASE_MIGRATION_LOCK_WAIT_S',
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
      doc: 'TCP port of the outbound event socket (the port in the dialplan\'s socket application); 0 = any free port the system picks (tests).',
      format: 'tcp-port',
      default: 8084,
      env: 'ESL_LISTEN_PORT',
    },
    listenBacklog: {
      doc: 'Length of the listen queue of the outbound event socket: connections FreeSWITCH has opened that the daemon has not accepted yet. Several FreeSWITCH nodes can open thousands at once (a restart, a burst of calls); the kernel caps it at net.core.somaxconn (4096 by default on Linux 5.4 and later): raise both together.',
      format: 'positive-count',
      default: 4096,
      env: 'ESL_LISTEN_BACKLOG',
    },
    acceptHandles: {
      doc: 'Handles on the one outbound event socket that each accept a connection per turn of the event loop: libuv takes one connection per handle a turn, and a turn under load runs every call that has data, so with one handle new calls waited in the kernel\'s accept queue (at saturation connect to FreeSWITCH\'s connect reply p50 40 ms with 1, 17-20 ms with 16; bench/PROFILE.md release 11). The copies are made at start by a short-lived child process (the way node:cluster shares a listening socket); when idle each connection costs every other handle a failed accept (about 2 microseconds each). 1 = one handle, as before; at most 64.',
      format: 'accept-handles',
      default: 16,
      env: 'ESL_ACCEPT_HANDLES',
    },
    bridgedInputBudgetMs: {
      doc: 'Under load, the input of calls already bridged (a phone\'s answer, the hang-up, the bridge\'s completion, CHANNEL_HANGUP_COMPLETE and the CDR) runs behind the input of calls still being set up, for at most this much of each turn of the event loop; an event that has waited 100 ms runs regardless (README "Under load, callers in silence go first"; at saturation setup p50 0.39-0.52x with 1 ms, bench/PROFILE.md release 38). 0 = off: a bridged call\'s input runs as it arrives, with everyone else\'s (and the hotline_esl_deferred_input_* metrics stay at 0: HotlineDaemonSaturated cannot fire). At most 100.',
      format: 'turn-budget-ms',
      default: DEFERRED_INPUT_BUDGET_MS,
      env: 'ESL_BRIDGED_INPUT_BUDGET_MS',
    },
    replyTimeoutMs: {
      doc: 'How long FreeSWITCH may take to answer one command (its command/reply) before the call is treated as lost.',
      format: 'milliseconds',
      default: 5000,
      env: 'ESL_REPLY_TIMEOUT_MS',
    },
    appTimeoutMarginMs: {
      doc: 'Extra time allowed beyond an application\'s own expected duration (ring timeout, prompt length) before its completion is given up on.',
      format: 'milliseconds',
      default: 10000,
      env: 'ESL_APP_TIMEOUT_MARGIN_MS',
    },
    lingerS: {
      doc: 'Seconds FreeSWITCH keeps the socket open after hangup ("linger"), so CHANNEL_HANGUP_COMPLETE still arrives.',
      format: 'seconds',
      default: 10,
      env: 'ESL_LINGER_S',
    },
    maxFrameBytes: {
      doc: 'Largest message (header block or Content-Length) accepted on a call\'s outbound socket; a larger one is refused as soon as its header is read, the call\'s socket is dropped as a protocol error (ESL_FRAME_TOO_LARGE) and the call gets a failed CDR. Real events are 5-12 KB.',
      format: 'frame-bytes',
      default: 1048576,
      env: 'ESL_MAX_FRAME_BYTES',
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
      doc: 'Port of the Prometheus /metrics endpoint; 0 = any free port the system picks (tests).',
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
      format: 'seconds',
      default: 14400,
      env: 'CALL_MAX_DURATION_S',
    },
    drainTimeoutS: {
      doc: 'On SIGTERM, how long live calls may go on before the daemon hangs them up and exits.',
      format: 'seconds-or-zero',
      default: 30,
      env: 'DRAIN_TIMEOUT_S',
    },
    maxFailoverGroups: {
      doc: 'Most destination groups one call hunts through along failover_group_id links (loop guard).',
      format: 'positive-count',
      default: 10,
      env: 'MAX_FAILOVER_GROUPS',
    },
    warmUpCalls: {
      doc: 'Synthetic calls run through the call flow at start-up, before /metrics and the outbound event socket listen, so that the first real calls meet compiled code (src/warmup/warm-up.ts: captured FreeSWITCH traffic on a loopback port of its own, a tenant that exists only in memory, no database access; none of their CDRs, metrics or log lines reach the daemon\'s). 3000 take about 2 s on 2 vCPU, and the first 1000 real calls then cost 0.54-0.61 ms of CPU each instead of 0.79-0.82 ms (bench/PROFILE.md, release 25). 0 = none.',
      format: 'count',
      default: 3000,
      env: 'WARM_UP_CALLS',
    },
    warmUpMaxS: {
      doc: 'Bound on the start-up warm-up: after this long no warm-up call starts, one second later the calls still up are ended, and the warm-up\'s own server gets two seconds more to see them end; the daemon then goes on starting.',
      format: 'seconds',
      default: 10,
      env: 'WARM_UP_MAX_S',
    },
  },
  prompts: {
    systemDir: {
      doc: 'Directory, as FreeSWITCH sees it, holding the system prompts (not_in_service.wav, nobody_answered.wav …).',
      format: String,
      default: '/usr/share/freeswitch/sounds/hotline',
      env: 'PROMPTS_DIR',
    },
    sameFilesystem: {
      doc: 'Whether this daemon sees prompt files under the same paths as FreeSWITCH (same host or a shared mount): yes, no, or auto (yes when ESL_LISTEN_HOST is loopback, i.e. FreeSWITCH runs on this host). When it does, every system prompt and prompts.file is checked at start-up and after each configuration load; problems are logged, counted in hotline_prompt_files_missing by reason and listed by config:lint; only files that are not there (ENOENT) are replaced in calls by a system prompt or a tone (a file this daemon cannot read may still be readable by FreeSWITCH).',
      format: ['auto', 'yes', 'no'],
      default: 'auto',
      env: 'PROMPTS_SAME_FILESYSTEM',
    },
  },
  admission: {
    onDatabaseError: {
      doc: 'When the cap/balance check cannot reach the database: admit the call (counted later from its CDR) or refuse it (caller hears capped.wav).',
      format: ['admit', 'refuse'],
      default: 'admit',
      env: 'ADMISSION_ON_DB_ERROR',
    },
    queryTimeoutMs: {
      doc: 'Longest a call waits for the cap/balance, PIN-lockout, caller-memory or round-robin query before the on-error policy applies; also the bound of the money re-read just before a mid-call cut (late: the cut goes ahead).',
      format: 'milliseconds',
      default: 1000,
      env: 'CALL_DB_TIMEOUT_MS',
    },
  },
  callerMemory: {
    indexHours: {
      doc: 'Hours of answered callers kept in memory (src/calls/answered-callers.ts), so that a caller no phone answered within them rings without asking the database on the call\'s setup path (on MariaDB/MySQL a round trip, on SQLite a statement run on the loop); a tenant whose caller_memory_hours reach further back, and any lookup while the in-memory copy is not current, asks the database. 0 = always ask the database. The default covers the default 24-hour window with an hour to spare.',
      format: 'index-hours',
      default: 25,
      env: 'CALLER_MEMORY_INDEX_HOURS',
    },
    indexBitsPerHour: {
      doc: 'Size of each hour\'s Bloom filter of answered callers, in bits (memory: this × (CALLER_MEMORY_INDEX_HOURS + 1) / 8 bytes, the hour being filled included). About 1 % of first callers still ask the database while an hour holds a tenth as many answered callers as bits; more callers, more such lookups, never a wrong answer.',
      format: 'filter-bits',
      default: 2_097_152,
      env: 'CALLER_MEMORY_INDEX_BITS_PER_HOUR',
    },
    indexPollMs: {
      doc: 'How often the in-memory copy reads the new rows of cdrs (written by any daemon); it is trusted only while its last read is at most 3 × this + 1 s old.',
      format: 'milliseconds',
      default: 1000,
      env: 'CALLER_MEMORY_INDEX_POLL_MS',
    },
  },
  freeswitch: {
    inboundHost: {
      doc: 'FreeSWITCH inbound event socket (event_socket.conf.xml) the cron jobs use to warn and cut live calls.',
      format: 'listen-host',
      default: '127.0.0.1',
      env: 'FS_ESL_HOST',
    },
    inboundPort: {
      doc: 'Port of the FreeSWITCH inbound event socket.',
      format: 'connect-port',
      default: 8021,
      env: 'FS_ESL_PORT',
    },
    inboundPassword: {
      doc: 'Password of the FreeSWITCH inbound event socket (hotline_esl_password in freeswitch/vars_hotline.xml); empty = the daemon never cuts live calls itself. The CHANGE_ME placeholder shipped there is refused.',
      format: 'esl-password',
      default: '',
      env: 'FS_ESL_PASSWORD',
      sensitive: true,
    },
    inboundMaxFrameBytes: {
      doc: 'Largest message accepted on the inbound event socket (cron jobs, click-to-call), larger than a call\'s: api replies such as show channels can be big; a larger one drops that connection, which reconnects.',
      format: 'frame-bytes',
      default: 67108864,
      env: 'FS_ESL_MAX_FRAME_BYTES',
    },
  },
  cron: {
    enabled: {
      doc: 'Run the cron jobs (caps every minute, reports after midnight, housekeeping) in this daemon; each run happens once across all daemons sharing the database.',
      format: Boolean,
      default: true,
      env: 'CRON_ENABLED',
    },
  },
  reports: {
    dir: {
      doc: 'Directory the report CSV files (UTF-8 with BOM, for Excel) are written to.',
      format: String,
      default: './var/reports',
      env: 'REPORTS_DIR',
    },
  },
  retention: {
    recordingsDays: {
      doc: 'Recordings older than this many days are deleted (SPEC: kept 3 months).',
      format: 'count',
      default: 92,
      env: 'RETENTION_RECORDINGS_DAYS',
    },
    voicemailDays: {
      doc: 'Voicemail messages older than this many days are deleted.',
      format: 'count',
      default: 92,
      env: 'RETENTION_VOICEMAIL_DAYS',
    },
    cdrDays: {
      doc: 'CDRs older than this many days are deleted; 0 keeps them for ever.',
      format: 'count',
      default: 0,
      env: 'RETENTION_CDR_DAYS',
    },
  },
  recordings: {
    dir: {
      doc: 'Directory FreeSWITCH writes call recordings and voicemail to (as both FreeSWITCH and this daemon see it); files are named <dir>/<tenant>/<YYYY-MM-DD>/<call uuid>.wav.',
      format: String,
      default: '/var/lib/freeswitch/recordings/hotline',
      env: 'RECORDINGS_DIR',
    },
    stereo: {
      doc: 'Record the caller and the callee on separate channels (RECORD_STEREO).',
      format: Boolean,
      default: true,
      env: 'RECORD_STEREO',
    },
  },
  tts: {
    engine: {
      doc: 'How prompts given as tts_text become audio: espeak (rendered ahead of time to WAV with espeak-ng, cached by text hash) or freeswitch (FreeSWITCH\'s speak application with TTS_FREESWITCH_ENGINE).',
      format: ['espeak', 'freeswitch'],
      default: 'espeak',
      env: 'TTS_ENGINE',
    },
    cacheDir: {
      doc: 'Where rendered TTS prompts are cached (a directory FreeSWITCH can read under the same path).',
      format: String,
      default: './var/tts',
      env: 'TTS_CACHE_DIR',
    },
    voice: {
      doc: 'espeak-ng voice for TTS prompts (cmn = Mandarin).',
      format: String,
      default: 'cmn',
      env: 'TTS_VOICE',
    },
    freeswitchEngine: {
      doc: 'TTS engine and voice for FreeSWITCH\'s speak application, as "engine|voice" (e.g. "flite|kal").',
      format: String,
      default: 'flite|kal',
      env: 'TTS_FREESWITCH_ENGINE',
    },
  },
  notify: {
    smsGatewayUrl: {
      doc: 'HTTP SMS gateway for missed-call notifications: a JSON POST {to, caller, time, text}; empty = SMS notifications stay queued as failed.',
      format: String,
      default: '',
      env: 'SMS_GATEWAY_URL',
    },
    smtpUrl: {
      doc: 'SMTP server for missed-call e-mails, e.g. smtp://user:pass@mail.example.net:587; empty = no e-mail.',
      format: String,
      default: '',
      env: 'SMTP_URL',
      sensitive: true,
    },
    from: {
      doc: 'Sender address of missed-call e-mails.',
      format: String,
      default: 'hotline@localhost',
      env: 'NOTIFY_FROM',
    },
    maxAttempts: {
      doc: 'Delivery attempts per notification before it is marked failed.',
      format: 'positive-count',
      default: 6,
      env: 'NOTIFY_MAX_ATTEMPTS',
    },
    timeoutMs: {
      doc: 'Timeout of one delivery attempt (HTTP request or SMTP session).',
      format: 'milliseconds',
      default: 10000,
      env: 'NOTIFY_TIMEOUT_MS',
    },
  },
  api: {
    enabled: {
      doc: 'Run the click-to-call web API (POST /v1/click-to-call, GET /v1/widget.js) in this daemon.',
      format: Boolean,
      default: false,
      env: 'API_ENABLED',
    },
    host: {
      doc: 'Address the click-to-call web API listens on (put it behind the web server or load balancer that faces the Internet).',
      format: 'listen-host',
      default: '127.0.0.1',
      env: 'API_HOST',
    },
    port: {
      doc: 'Port of the click-to-call web API; 0 = any free port the system picks (tests).',
      format: 'tcp-port',
      default: 9470,
      env: 'API_PORT',
    },
    trustProxy: {
      doc: 'Reverse proxies (IP addresses or CIDR ranges, comma-separated) whose X-Forwarded-For names the client address that per-client limits count; empty = the TCP peer is the client.',
      format: 'proxy-list',
      default: '',
      env: 'API_TRUST_PROXY',
    },
    rateLimitPerMinute: {
      doc: 'Requests per minute one client address (an IPv4 address, or an IPv6 /64) may make to the API in this daemon (a cheap first line; the per-visitor, per-client and per-widget limits are counted in the database); 0 = no limit.',
      format: 'count',
      default: 120,
      env: 'API_RATE_LIMIT_PER_MINUTE',
    },
  },
  clickToCall: {
    maxPerClientMinute: {
      doc: 'Click-to-call requests one client address (an IPv4 address, or an IPv6 /64) may make per minute, across all daemons and widgets; 0 = no limit.',
      format: 'count',
      default: 3,
      env: 'CLICK_TO_CALL_MAX_PER_CLIENT_MINUTE',
    },
    maxPerClientDay: {
      doc: 'Click-to-call requests one client address (an IPv4 address, or an IPv6 /64) may make per UTC day, across all daemons and widgets; 0 = no limit.',
      format: 'count',
      default: 20,
      env: 'CLICK_TO_CALL_MAX_PER_CLIENT_DAY',
    },
    ringTimeoutS: {
      doc: 'How long the visitor\'s phone rings before the attempt ends as no answer (originate_timeout).',
      format: 'seconds',
      default: 30,
      env: 'CLICK_TO_CALL_RING_TIMEOUT_S',
    },
    connectTimeoutS: {
      doc: 'After the visitor answered, how long FreeSWITCH may take to hand the call to the outbound socket before the daemon looks for the leg; a leg that is gone without reaching a call session is recorded as failed, one FreeSWITCH still has is looked at again after as long.',
      format: 'seconds',
      default: 10,
      env: 'CLICK_TO_CALL_CONNECT_TIMEOUT_S',
    },
    socketAddress: {
      doc: 'host:port FreeSWITCH connects to with the answered visitor leg (&socket); empty = this daemon\'s ESL_LISTEN_HOST and port (127.0.0.1 when it listens on every address).',
      format: 'socket-address',
      default: '',
      env: 'CLICK_TO_CALL_SOCKET_ADDRESS',
    },
  },
  configCache: {
    pollIntervalMs: {
      doc: 'How often the daemon asks the database whether tenant configuration changed.',
      format: 'milliseconds',
      default: 2000,
      env: 'CONFIG_POLL_INTERVAL_MS',
    },
    fullReloadIntervalS: {
      doc: 'Reload the whole configuration at least this often even when no change was seen.',
      format: 'seconds',
      default: 300,
      env: 'CONFIG_FULL_RELOAD_INTERVAL_S',
    },
    startDatabaseWaitMs: {
      doc: 'With a configuration cache, how long a start waits for the database before it routes from the cache while the load (and the migrations) go on: a hung database server otherwise held the start for its 10 s connection timeout, every call meanwhile sent to the dialplan\'s fallback. Without a cache the start waits as long as the database takes.',
      format: 'milliseconds',
      default: 3000,
      env: 'CONFIG_START_DATABASE_WAIT_MS',
    },
    file: {
      doc: 'Local copy of the configuration rows in force, written after every load from the database (mode 0600: it holds PINs); a daemon that starts while the database is down routes from it. Empty = config-cache.json in CDR_SPOOL_DIR (the folder this daemon alone owns); a relative path is taken from the installation directory.',
      format: 'optional-path',
      default: '',
      env: 'CONFIG_CACHE_FILE',
    },
  },
  cdr: {
    spoolDir: {
      doc: 'Durable local spool for CDRs not yet in the database (replayed when it is back). One daemon owns it: a second daemon pointed at the same folder refuses to start (exit code 3). A relative path is taken from the installation directory (the folder holding package.json), not from the working directory.',
      format: 'local-path',
      default: 'var/spool/cdr',
      env: 'CDR_SPOOL_DIR',
    },
    flushIntervalMs: {
      doc: 'How often spooled CDRs are written to the database in one batch.',
      format: 'milliseconds',
      default: 200,
      env: 'CDR_FLUSH_INTERVAL_MS',
    },
    retryIntervalMs: {
      doc: 'After a database failure, how long to wait before the spool is replayed again.',
      format: 'milliseconds',
      default: 5000,
      env: 'CDR_RETRY_INTERVAL_MS',
    },
    writerThread: {
      doc: 'On an SQLite database file, CDR batches are written by a thread of their own with its own connection, so their statements and commits do not hold the event loop, and with it every call, while they run (false = on the main thread, as before). MariaDB batches always go from the main thread: the server does the work.',
      format: Boolean,
      default: true,
      env: 'CDR_WRITER_THREAD',
    },
    writerThreadNice: {
      doc: 'The nice value (Linux, 0 to 19) of the CDR writer thread (CDR_WRITER_THREAD): the higher, the more it leaves the CPU to the thread that serves calls. At the main thread\'s own priority on busy cores, the thread woken for a batch took the main thread\'s core, and the calls arriving meanwhile waited (README Performance, release 29). 0 = the process\'s own priority. Never set below the process\'s own nice value; on other systems the nice value is the whole process\'s, and this is ignored (a warning says so).',
      format: 'nice',
      default: 10,
      env: 'CDR_WRITER_THREAD_NICE',
    },
  },
  cluster: {
    workers: {
      doc: 'Processes that serve calls behind the one ESL listening port (node:cluster; the primary process forks them, restarts one that dies and serves /metrics and /healthz for all): 1 = a single process as before; 0 or auto = one per CPU core. Each worker spools CDRs into its own folder worker-<n> under CDR_SPOOL_DIR.',
      format: 'cluster-workers',
      default: 1 as number | string,
      env: 'CLUSTER_WORKERS',
    },
    scheduling: {
      doc: 'How connections reach the workers (CLUSTER_WORKERS > 1): round_robin = the primary accepts each one and hands it to the next worker (even spread; the primary does work per call); os = every worker accepts from the shared listening socket and the kernel picks (no hand-over; on 2 shared cores, 2 workers gave 0.99-1.16x the calls/s of one process with os and 0.71-0.80x with round_robin, README Performance; how evenly the kernel spreads them is not promised). Replaces the NODE_CLUSTER_SCHED_POLICY variable of Node.js, which is ignored.',
      format: ['round_robin', 'os'],
      default: 'round_robin',
      env: 'CLUSTER_SCHEDULING',
    },
    hangTimeoutS: {
      doc: 'A worker serving calls (CLUSTER_WORKERS > 1) that answers none of the primary\'s pings for this long is hung (its event loop blocked or the process stopped): the primary kills it (SIGKILL; the calls it held are cut, as they already were) and starts a replacement that replays its CDR spool, and the cron leases it held are handed back at once instead of when they expire. Pings go every quarter of this, at most every 5 s. Workers still starting are not watched (an SQLite migration runs on the event loop). 0 = never.',
      format: 'seconds-or-zero',
      default: 60,
      env: 'CLUSTER_WORKER_HANG_TIMEOUT_S',
    },
  },
  node: {
    name: {
      doc: 'Name of this daemon in CDRs (cdrs.node) and logs, at most 64 characters; empty = the host name.',
      format: 'node-name',
      default: '',
      env: 'NODE_NAME',
    },
  },
  log: {
    level: {
      doc: "Log level: fatal, error, warn, info, debug, trace. JSON lines on stdout (knex's own messages too, as `knex: …` lines, the same one at most once every 10 s with `alsoLeftOut`: knex prints them with console.log otherwise, \"Acquire connection error\" and its stack for every query while MySQL is away), gathered into writes of at most 4,096 bytes (PIPE_BUF: cluster workers sharing one stdout never tear each other's lines) and written at most 100 ms after they are logged (one write of libuv's thread pool for many lines: 0.91× the CPU a call, bench/PROFILE.md release 10); what is gathered is written when the process exits, so a process killed outright (SIGKILL, out of memory) loses at most the last 100 ms of lines.",
      format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      env: 'LOG_LEVEL',
    },
  },
};
