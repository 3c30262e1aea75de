/**
 * The value formats of the configuration schema (src/config/schema.ts) beyond convict's
 * built-ins: whole numbers that refuse "12abc", ports, hosts, proxy lists, paths, dial strings.
 */
import net from 'node:net';
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
  const fromOne = (max: number, what: string) => ({
    coerce: wholeNumber(max).coerce,
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) throw new Error(what);
    },
  });
  convict.addFormat({ name: 'count', ...wholeNumber(Number.MAX_SAFE_INTEGER) });
  // Timeouts, intervals, sizes: 0 would mean "never wait" or "nothing", never what anyone wants.
  convict.addFormat({ name: 'positive-count', ...fromOne(Number.MAX_SAFE_INTEGER, 'must be a whole number of at least 1 (0 is not allowed here)') });
  // Durations that become timers. Node.js sets a delay beyond 2^31 - 1 ms (24.8 days) to 1 ms, so
  // a typo of a few zeros would make a timeout fire at once or an interval spin. One setting is
  // at most 7 days; timers built from several (a bridge: ring + CALL_MAX_DURATION_S + margin;
  // click-to-call: 5 × CALL_DB_TIMEOUT_MS) go through timerDelay (src/timer-limit.ts).
  const week = 7 * 24 * 3600;
  const timerLimit = (unit: string, max: number): string =>
    `must be a whole number of ${unit}, at least 1 and at most ${max} (7 days): it becomes a timer, and Node.js fires a timer of more than 24.8 days at once`;
  convict.addFormat({ name: 'milliseconds', ...fromOne(week * 1000, timerLimit('milliseconds', week * 1000)) });
  convict.addFormat({ name: 'seconds', ...fromOne(week, timerLimit('seconds', week)) });
  convict.addFormat({ name: 'seconds-or-zero', ...wholeNumber(week) });
  // Caller memory's in-memory hours (src/calls/answered-callers.ts): each is a filter held in
  // memory, so a typo of a few digits must not ask for gigabytes. 31 days at most.
  convict.addFormat({ name: 'index-hours', ...wholeNumber(31 * 24) });
  // A Linux nice value a thread may take without privileges: 0 (the process's) to 19 (lowest).
  convict.addFormat({ name: 'nice', ...wholeNumber(19) });
  convict.addFormat({
    name: 'filter-bits',
    coerce: wholeNumber(0).coerce,
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1024 || value > 2 ** 27) throw new Error('must be a whole number of bits from 1024 to 134217728 (16 MiB an hour)');
    },
  });
  // A port this daemon listens on: 0 = the system picks a free one (documented on each key).
  convict.addFormat({ name: 'tcp-port', ...wholeNumber(65535) });
  // Each handle is one more descriptor the kernel wakes for every new connection.
  convict.addFormat({ name: 'accept-handles', ...fromOne(64, 'must be a whole number from 1 to 64 (handles on the listening socket)') });
  // A share of each turn of the event loop: past the 100 ms a bridged call's input may wait it means nothing.
  convict.addFormat({ name: 'turn-budget-ms', ...wholeNumber(100) });
  // A port this daemon connects to.
  convict.addFormat({ name: 'connect-port', ...fromOne(65535, 'must be a port from 1 to 65535') });
  // NODE_NAME goes into VARCHAR(64) columns (cdrs.node, live_calls.node, cron_runs.node): a longer
  // one made every cron run and every live-call publication fail on strict MariaDB.
  convict.addFormat({
    name: 'node-name',
    validate(value: unknown) {
      if (typeof value !== 'string') throw new Error('must be text');
      const chars = [...value];
      if (chars.length > 64) throw new Error('must be at most 64 characters (the node columns of cdrs, live_calls and cron_runs)');
      if (chars.some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) throw new Error('must not contain control characters (line breaks, tabs)');
    },
  });
  // FS_ESL_PASSWORD goes out as "auth <password>": a CR or LF would end that command early.
  // freeswitch/vars_hotline.xml ships the placeholder CHANGE_ME_hotline_esl_password, which
  // FreeSWITCH takes as the real password (mod_event_socket.c config() only replaces an empty
  // one) and which is public in this repository: refused here, so a daemon given it fails at
  // start-up. FreeSWITCH itself still serves it until vars_hotline.xml is changed
  // (freeswitch/README.md).
  convict.addFormat({
    name: 'esl-password',
    validate(value: unknown) {
      if (typeof value !== 'string') throw new Error('must be text');
      if (/[\r\n]/.test(value)) throw new Error('must not contain CR or LF');
      if (/CHANGE_ME/i.test(value)) {
        throw new Error('is still the placeholder from freeswitch/vars_hotline.xml: set hotline_esl_password there to a long random value (openssl rand -hex 24) and the same value here');
      }
    },
  });
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
    name: 'cluster-workers',
    // "auto" stays a string (one worker per core, resolved in loadSettings); digits become a number.
    coerce: (v: unknown) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : typeof v === 'string' ? v.trim() : v),
    validate(value: unknown) {
      if (value === 'auto') return;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > 256) {
        throw new Error('must be auto or a whole number from 0 to 256 (0 or auto = one worker per core, 1 = one process)');
      }
    },
  });
  convict.addFormat({
    name: 'local-path',
    validate(value: unknown) {
      if (typeof value !== 'string' || value.trim() === '' || value.includes('\0')) throw new Error('must be a folder path');
    },
  });
  convict.addFormat({
    name: 'optional-path',
    validate(value: unknown) {
      if (typeof value !== 'string' || value.includes('\0')) throw new Error('must be a file path or empty');
    },
  });
  convict.addFormat({
    name: 'proxy-list',
    validate(value: unknown) {
      const message = 'must be empty or comma-separated proxy IP addresses or CIDR ranges, e.g. 127.0.0.1,10.0.0.0/8,::1';
      if (typeof value !== 'string') throw new Error(message);
      for (const item of value.split(',').map((v) => v.trim())) {
        if (item === '' && value.trim() === '') continue;
        const [address = '', prefix, extra] = item.split('/');
        const family = net.isIP(address);
        const bits = family === 4 ? 32 : 128;
        if (family === 0 || extra !== undefined || (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits))) {
          throw new Error(`${message}; ${JSON.stringify(item.slice(0, 60))} is not one`);
        }
      }
    },
  });
  convict.addFormat({
    name: 'socket-address',
    validate(value: unknown) {
      // Goes into FreeSWITCH's originate command: a host (name or IPv4) and a port, nothing else.
      if (typeof value !== 'string' || (value !== '' && !/^[A-Za-z0-9.-]{1,253}:\d{1,5}$/.test(value))) {
        throw new Error('must be empty or host:port, e.g. 10.0.0.5:8084');
      }
    },
  });
  convict.addFormat({
    name: 'frame-bytes',
    coerce: (v: unknown) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
    validate(value: unknown) {
      // Below 64 KiB a real event (5-12 KB, CHANNEL_DATA with a long SDP more) could be refused.
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 65536 || value > 1073741824) {
        throw new Error('must be a whole number of bytes from 65536 (64 KiB) to 1073741824 (1 GiB)');
      }
    },
  });
  convict.addFormat({
    name: 'listen-host',
    validate(value: unknown) {
      // An IPv4 or IPv6 address as Node's net takes it (::1, not [::1]), or a host name.
      const hostName = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
      if (typeof value !== 'string' || (net.isIP(value) === 0 && !hostName.test(value))) {
        throw new Error('must be an IP address or host name (IPv6 without brackets, e.g. ::1)');
      }
    },
  });
}
