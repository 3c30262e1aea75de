// Settings: defaults, every environment variable honoured, bad values refused with a ConfigError
// naming the key and the reason, a JSON config file under the environment, and a frozen result.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError, describeSettings, INSTALL_DIR, loadSettings, type Settings } from '../../src/config';
import { schema } from '../../src/config/schema';

interface SchemaEntry {
  doc: string;
  env: string;
  default: unknown;
  format: unknown;
}

/** The schema entry behind a dotted key ("esl.listenPort"). */
function entry(key: string): SchemaEntry {
  let node: unknown = schema;
  for (const part of key.split('.')) node = (node as Record<string, unknown>)[part];
  return node as SchemaEntry;
}

/** The value of a dotted key in the settings object. */
function get(settings: Settings, key: string): unknown {
  let node: unknown = settings;
  for (const part of key.split('.')) node = (node as Record<string, unknown>)[part];
  return node;
}

/**
 * A valid value, different from the default, for one key: [text for the environment, value expected
 * in Settings].
 */
function validAlternative(key: string): [string, unknown] {
  const e = entry(key);
  if (Array.isArray(e.format)) {
    const other = (e.format as string[]).find((v) => v !== e.default);
    if (!other) throw new Error(`no alternative for ${key}`);
    return [other, other];
  }
  switch (e.format) {
    case 'count':
    case 'positive-count':
    case 'milliseconds':
    case 'seconds':
    case 'seconds-or-zero':
    case 'connect-port':
    case 'tcp-port':
    case 'frame-bytes':
    case 'accept-handles':
    case 'turn-budget-ms':
    case 'index-hours':
    case 'nice':
    case 'filter-bits': {
      const n = (e.default as number) + 7;
      return [String(n), n];
    }
    case 'database-url':
      return ['mysql://hotline:secret@db.example.net:3307/calls', 'mysql://hotline:secret@db.example.net:3307/calls'];
    case 'dial-string-template':
      return ['sofia/gateway/other_carrier/0086${number}', 'sofia/gateway/other_carrier/0086${number}'];
    case 'listen-host':
      return ['0.0.0.0', '0.0.0.0'];
    case 'id-list':
      return ['12, 34', [12, 34]];
    case 'proxy-list':
      return ['127.0.0.1,10.0.0.0/8', '127.0.0.1,10.0.0.0/8'];
    case 'socket-address':
      return ['10.0.0.5:8084', '10.0.0.5:8084'];
    case 'cluster-workers':
      return ['3', 3];
    case 'node-name':
      return ['fs-b', 'fs-b'];
    case 'esl-password':
      return ['9f2c41d07b6e8a35c1d4e7f0a2b8c6d3', '9f2c41d07b6e8a35c1d4e7f0a2b8c6d3'];
    case String:
    case 'local-path':
    case 'optional-path':
      return [`/srv/hotline-test/${key}`, `/srv/hotline-test/${key}`];
    case Boolean:
      return [e.default ? 'false' : 'true', !e.default];
    default:
      throw new Error(`test does not know format ${String(e.format)} of ${key}: extend validAlternative()`);
  }
}

function tempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeJson(t: Test, value: unknown, name = 'hotline.json'): string {
  const file = path.join(tempDir(t), name);
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return file;
}

/** Runs loadSettings expecting a ConfigError; returns its message ('' when nothing was thrown). */
function refusal(options: Parameters<typeof loadSettings>[0]): { error: unknown; message: string } {
  try {
    loadSettings(options);
  } catch (error) {
    return { error, message: (error as Error).message };
  }
  return { error: null, message: '' };
}

t.test('defaults with an empty environment', async (t) => {
  const s = loadSettings({ env: {} });
  t.equal(s.database.url, 'sqlite:./var/calls.db');
  t.equal(s.esl.listenHost, '127.0.0.1');
  t.equal(s.esl.listenPort, 8084);
  t.equal(s.metrics.port, 9464);
  t.equal(s.dial.stringTemplate, 'sofia/gateway/carrier/${number}');
  t.equal(s.log.level, 'info');
  t.equal(s.database.seedDemo, 'auto');
  // Every documented default is what loadSettings returns (node.name aside: empty means host name).
  for (const row of describeSettings()) {
    if (row.key === 'node.name') continue;
    if (row.key === 'metrics.tenantIds') {
      t.same(get(s, row.key), [], 'metrics.tenantIds: the empty list parses to no ids');
      continue;
    }
    if (row.key === 'cdr.spoolDir') {
      t.equal(s.cdr.spoolDir, path.join(INSTALL_DIR, 'var', 'spool', 'cdr'), 'cdr.spoolDir: the documented default, in the installation directory');
      continue;
    }
    if (row.key === 'configCache.file') {
      t.equal(s.configCache.file, path.join(INSTALL_DIR, 'var', 'spool', 'cdr', 'config-cache.json'), 'configCache.file: empty = config-cache.json in the spool folder');
      continue;
    }
    t.same(get(s, row.key), JSON.parse(row.default) as unknown, `default of ${row.key} is the documented one`);
  }
});

t.test('the process environment is not read when env is given', async (t) => {
  const saved = process.env.ESL_LISTEN_PORT;
  process.env.ESL_LISTEN_PORT = '1234';
  t.teardown(() => {
    if (saved === undefined) delete process.env.ESL_LISTEN_PORT;
    else process.env.ESL_LISTEN_PORT = saved;
  });
  t.equal(loadSettings({ env: {} }).esl.listenPort, 8084, 'explicit env wins over process.env');
  t.equal(loadSettings({}).esl.listenPort, 1234, 'without env, process.env is read');
});

t.test('describeSettings documents every key with a distinct environment variable', async (t) => {
  const rows = describeSettings();
  t.ok(rows.length >= 20, `${rows.length} keys documented`);
  const envs = rows.map((r) => r.env);
  t.equal(new Set(envs).size, envs.length, 'environment variable names are unique');
  for (const row of rows) {
    t.match(row.env, /^[A-Z][A-Z0-9_]+$/, `${row.key} has an environment variable`);
    t.ok(row.doc.length > 10, `${row.key} is documented`);
  }
});

t.test('every environment variable of the schema is honoured', async (t) => {
  const rows = describeSettings();
  const all: Record<string, string> = {};
  for (const row of rows) {
    const [text, expected] = validAlternative(row.key);
    all[row.env] = text;
    const s = loadSettings({ env: { [row.env]: text } });
    t.same(get(s, row.key), expected, `${row.env}=${text} sets ${row.key}`);
    t.not(JSON.stringify(get(s, row.key)), row.default, `${row.key} differs from its default`);
  }
  const s = loadSettings({ env: all });
  for (const row of rows) t.same(get(s, row.key), validAlternative(row.key)[1], `${row.env} honoured with all set at once`);
});

t.test('invalid values are refused with a ConfigError naming the key and the reason', async (t) => {
  const cases: Array<[env: Record<string, string>, key: RegExp, reason: RegExp]> = [
    [{ DATABASE_URL: 'postgres://x' }, /database\.url/, /mysql:\/\/|sqlite:/],
    [{ DATABASE_URL: 'sqlite:' }, /database\.url/, /sqlite:<path>/],
    [{ DATABASE_URL: '' }, /database\.url/, /must be/],
    [{ ESL_LISTEN_PORT: '70000' }, /esl\.listenPort/, /from 0 to 65535/],
    [{ ESL_LISTEN_PORT: 'abc' }, /esl\.listenPort/, /from 0 to 65535/],
    [{ ESL_LISTEN_PORT: '-1' }, /esl\.listenPort/, /from 0 to 65535/],
    [{ ESL_LISTEN_BACKLOG: 'lots' }, /esl\.listenBacklog/, /whole number/],
    [{ ESL_LISTEN_BACKLOG: '-5' }, /esl\.listenBacklog/, /whole number/],
    [{ ESL_MAX_FRAME_BYTES: '1024' }, /esl\.maxFrameBytes/, /whole number of bytes from 65536 \(64 KiB\) to 1073741824/],
    [{ ESL_MAX_FRAME_BYTES: '1MB' }, /esl\.maxFrameBytes/, /whole number of bytes/],
    [{ FS_ESL_MAX_FRAME_BYTES: '2000000000' }, /freeswitch\.inboundMaxFrameBytes/, /to 1073741824/],
    [{ METRICS_PORT: '65536' }, /metrics\.port/, /from 0 to 65535/],
    [{ ESL_LISTEN_HOST: 'local host' }, /esl\.listenHost/, /IP address or host name/],
    [{ DIAL_STRING_TEMPLATE: 'sofia/gateway/carrier/' }, /dial\.stringTemplate/, /\$\{number\}/],
    [{ DIAL_STRING_TEMPLATE: 'sofia/gateway/carrier/$number' }, /dial\.stringTemplate/, /placeholder \$\{number\}/],
    [{ DIAL_STRING_TEMPLATE: 'sofia/gateway/${gw}/${number}' }, /dial\.stringTemplate/, /no FreeSWITCH variable other than/],
    [{ DIAL_STRING_TEMPLATE: '{origination_caller_id_number=${caller}}sofia/gateway/carrier/${number}' }, /dial\.stringTemplate/, /other than/],
    [{ DIAL_STRING_TEMPLATE: 'sofia/gateway/carrier/${number}\r\nbgapi system reboot' }, /dial\.stringTemplate/, /CR or LF/],
    [{ DIAL_STRING_TEMPLATE: 'sofia/gateway/carrier/${number}\n' }, /dial\.stringTemplate/, /CR or LF/],
    [{ DIAL_STRING_TEMPLATE: 'sofia/gateway/carrier/${number}\r' }, /dial\.stringTemplate/, /CR or LF/],
    [{ LOG_LEVEL: 'loud' }, /log\.level/, /possible values/],
    [{ NODE_NAME: 'n'.repeat(65) }, /node\.name/, /at most 64 characters/],
    [{ NODE_NAME: 'fs-a\nfs-b' }, /node\.name/, /control characters/],
    [{ SEED_DEMO: 'yes' }, /database\.seedDemo/, /possible values/],
    [{ DATABASE_POOL_MAX: '-3' }, /database\.poolMax/, /positive integer|natural|must be/],
    [{ CDR_FLUSH_INTERVAL_MS: 'soon' }, /cdr\.flushIntervalMs/, /positive integer|must be/],
    [{ CDR_SPOOL_DIR: '' }, /cdr\.spoolDir/, /must be a folder path/],
    [{ CDR_SPOOL_DIR: '  ' }, /cdr\.spoolDir/, /must be a folder path/],
    [{ API_PORT: '99999' }, /api\.port/, /from 0 to 65535/],
    [{ API_TRUST_PROXY: 'proxy.example.net' }, /api\.trustProxy/, /IP addresses or CIDR/],
    [{ CLICK_TO_CALL_SOCKET_ADDRESS: '127.0.0.1:8084 async full)\nbgapi system x' }, /clickToCall\.socketAddress/, /host:port/],
    [{ CLICK_TO_CALL_SOCKET_ADDRESS: '127.0.0.1' }, /clickToCall\.socketAddress/, /host:port/],
    // Review of the first release: hosts, ports, zero timeouts, proxies.
    [{ ESL_LISTEN_HOST: '[::1]' }, /esl\.listenHost/, /IPv6 without brackets/],
    [{ ESL_LISTEN_HOST: '127.0.0.1:8084' }, /esl\.listenHost/, /IP address or host name/],
    [{ API_HOST: 'bad_host!' }, /api\.host/, /IP address or host name/],
    [{ FS_ESL_PORT: '0' }, /freeswitch\.inboundPort/, /from 1 to 65535/],
    [{ FS_ESL_PORT: '65536' }, /freeswitch\.inboundPort/, /from 1 to 65535/],
    [{ ESL_LISTEN_BACKLOG: '0' }, /esl\.listenBacklog/, /at least 1/],
    [{ ESL_ACCEPT_HANDLES: '0' }, /esl\.acceptHandles/, /from 1 to 64/],
    [{ ESL_ACCEPT_HANDLES: '65' }, /esl\.acceptHandles/, /from 1 to 64/],
    [{ ESL_ACCEPT_HANDLES: 'many' }, /esl\.acceptHandles/, /whole number/],
    [{ ESL_BRIDGED_INPUT_BUDGET_MS: '101' }, /esl\.bridgedInputBudgetMs/, /from 0 to 100/],
    [{ ESL_BRIDGED_INPUT_BUDGET_MS: '0.5' }, /esl\.bridgedInputBudgetMs/, /whole number/],
    [{ CALLER_MEMORY_INDEX_HOURS: '745' }, /callerMemory\.indexHours/, /from 0 to 744/],
    [{ CALLER_MEMORY_INDEX_HOURS: '24h' }, /callerMemory\.indexHours/, /whole number/],
    [{ CDR_WRITER_THREAD_NICE: '20' }, /cdr\.writerThreadNice/, /from 0 to 19/],
    [{ CDR_WRITER_THREAD_NICE: '-5' }, /cdr\.writerThreadNice/, /from 0 to 19/],
    [{ CALLER_MEMORY_INDEX_BITS_PER_HOUR: '1023' }, /callerMemory\.indexBitsPerHour/, /from 1024 to 134217728/],
    [{ CALLER_MEMORY_INDEX_BITS_PER_HOUR: '268435456' }, /callerMemory\.indexBitsPerHour/, /16 MiB an hour/],
    [{ CALLER_MEMORY_INDEX_POLL_MS: '0' }, /callerMemory\.indexPollMs/, /at least 1/],
    [{ ESL_REPLY_TIMEOUT_MS: '0' }, /esl\.replyTimeoutMs/, /at least 1/],
    [{ CALL_DB_TIMEOUT_MS: '0' }, /admission\.queryTimeoutMs/, /at least 1/],
    [{ NOTIFY_TIMEOUT_MS: '0' }, /notify\.timeoutMs/, /at least 1/],
    [{ CLICK_TO_CALL_RING_TIMEOUT_S: '0' }, /clickToCall\.ringTimeoutS/, /at least 1/],
    [{ CLICK_TO_CALL_CONNECT_TIMEOUT_S: '0' }, /clickToCall\.connectTimeoutS/, /at least 1/],
    [{ CONFIG_POLL_INTERVAL_MS: '0' }, /configCache\.pollIntervalMs/, /at least 1/],
    [{ CDR_FLUSH_INTERVAL_MS: '0' }, /cdr\.flushIntervalMs/, /at least 1/],
    [{ CDR_RETRY_INTERVAL_MS: '0' }, /cdr\.retryIntervalMs/, /at least 1/],
    [{ DATABASE_POOL_MAX: '0' }, /database\.poolMax/, /at least 1/],
    [{ API_TRUST_PROXY: '999.1.1.1' }, /api\.trustProxy/, /"999\.1\.1\.1" is not one/],
    [{ API_TRUST_PROXY: '10.0.0.0/33' }, /api\.trustProxy/, /IP addresses or CIDR/],
    [{ API_TRUST_PROXY: '::1/129' }, /api\.trustProxy/, /IP addresses or CIDR/],
    [{ API_TRUST_PROXY: '127.0.0.1,,10.0.0.1' }, /api\.trustProxy/, /IP addresses or CIDR/],
    [{ API_TRUST_PROXY: '1.2.3' }, /api\.trustProxy/, /IP addresses or CIDR/],
    // Durations become timers; Node.js fires one of more than 2^31 - 1 ms (24.8 days) at once.
    [{ CALL_MAX_DURATION_S: '2592000' }, /calls\.maxDurationS/, /at most 604800 \(7 days\).*24\.8 days at once/],
    [{ CDR_FLUSH_INTERVAL_MS: '3000000000' }, /cdr\.flushIntervalMs/, /at most 604800000 \(7 days\)/],
    [{ CALL_DB_TIMEOUT_MS: '2147483648' }, /admission\.queryTimeoutMs/, /at most 604800000/],
    [{ DRAIN_TIMEOUT_S: '99999999' }, /calls\.drainTimeoutS/, /from 0 to 604800/],
    [{ ESL_LINGER_S: '1e9' }, /esl\.lingerS/, /whole number of seconds/],
  ];
  for (const [env, key, reason] of cases) {
    const label = JSON.stringify(env);
    const { error, message } = refusal({ env });
    t.type(error, ConfigError, `${label} refused with a ConfigError`);
    t.equal((error as Error | null)?.name, 'ConfigError', `${label}: error name`);
    t.match(message, key, `${label}: message names the key`);
    t.match(message, reason, `${label}: message gives the reason`);
  }
});

t.test('IPv6 listen hosts, listen ports 0 (any free port), proxies by address or range', async (t) => {
  const s = loadSettings({ env: { ESL_LISTEN_HOST: '::1', METRICS_HOST: '::', API_HOST: 'fd00::5', FS_ESL_HOST: 'fs-1.example.net', ESL_LISTEN_PORT: '0', API_PORT: '0', METRICS_PORT: '0', API_TRUST_PROXY: '127.0.0.1, 10.0.0.0/8, ::1, fd00::/8' } });
  t.equal(s.esl.listenHost, '::1');
  t.equal(s.metrics.host, '::');
  t.equal(s.api.host, 'fd00::5');
  t.equal(s.freeswitch.inboundHost, 'fs-1.example.net');
  t.same([s.esl.listenPort, s.api.port, s.metrics.port], [0, 0, 0], '0 is documented for the listen ports: any free port');
  t.equal(s.api.trustProxy, '127.0.0.1, 10.0.0.0/8, ::1, fd00::/8');
  t.equal(loadSettings({ env: { FS_ESL_PORT: '65535', DRAIN_TIMEOUT_S: '0', RETENTION_CDR_DAYS: '0' } }).calls.drainTimeoutS, 0, 'a 0 that is documented (cut at once, keep for ever) is still taken');
});

t.test('relative spool and cache paths are taken from the installation directory, not the working directory', async (t) => {
  const before = process.cwd();
  t.teardown(() => process.chdir(before));
  const seen = new Set<string>();
  for (const cwd of [before, os.tmpdir(), '/']) {
    process.chdir(cwd);
    const s = loadSettings({ env: { CDR_SPOOL_DIR: 'var/spool/node-a', CONFIG_CACHE_FILE: './var/cache/a.json' } });
    seen.add(`${s.cdr.spoolDir} ${s.configCache.file}`);
    t.equal(s.cdr.spoolDir, path.join(INSTALL_DIR, 'var', 'spool', 'node-a'), `started from ${cwd}`);
    t.equal(s.configCache.file, path.join(INSTALL_DIR, 'var', 'cache', 'a.json'));
    t.equal(loadSettings({ env: {} }).cdr.spoolDir, path.join(INSTALL_DIR, 'var', 'spool', 'cdr'), `the default, started from ${cwd}`);
  }
  t.equal(seen.size, 1, 'the same folders whatever the working directory');
  t.ok(fs.existsSync(path.join(INSTALL_DIR, 'package.json')), 'INSTALL_DIR holds package.json');
  t.equal(loadSettings({ env: { CDR_SPOOL_DIR: '/srv/spool' } }).cdr.spoolDir, '/srv/spool', 'an absolute path stays as it is');
});

t.test('every duration setting is bounded to what one timer can wait', async (t) => {
  // turn-budget-ms is no timer: a share of a turn of the event loop, at most the 100 ms a bridged call's input may wait.
  const limits: Record<string, number> = { milliseconds: 604_800_000, seconds: 604_800, 'seconds-or-zero': 604_800, 'turn-budget-ms': 100 };
  const durations = describeSettings().filter((row) => /(Ms|S)$/.test(row.key));
  t.ok(durations.length >= 13, `${durations.length} duration settings`);
  for (const row of durations) {
    const format = String(entry(row.key).format);
    t.ok(format in limits, `${row.key} is a duration format (${format})`);
    const max = limits[format] ?? 0;
    t.equal(get(loadSettings({ env: { [row.env]: String(max) } }), row.key), max, `${row.env}=${max} (7 days) is taken`);
    t.type(refusal({ env: { [row.env]: String(max + 1) } }).error, ConfigError, `${row.env}=${max + 1} is refused`);
  }
  t.equal(loadSettings({ env: { DRAIN_TIMEOUT_S: '0' } }).calls.drainTimeoutS, 0, 'DRAIN_TIMEOUT_S=0: do not wait');
});

t.test('numbers with trailing junk are refused, not truncated', async (t) => {
  // convict's own coercion is parseInt(): '12abc' would silently become 12, '80.5' 80, '1e3' 1.
  for (const [env, key] of [
    [{ ESL_LISTEN_PORT: '12abc' }, 'esl.listenPort'],
    [{ ESL_LISTEN_PORT: '80.5' }, 'esl.listenPort'],
    [{ DATABASE_POOL_MAX: '1e3' }, 'database.poolMax'],
    [{ CDR_RETRY_INTERVAL_MS: '5s' }, 'cdr.retryIntervalMs'],
  ] as const) {
    const { error, message } = refusal({ env });
    t.type(error, ConfigError, `${JSON.stringify(env)} refused`);
    t.match(message, key, `${JSON.stringify(env)}: names ${key}`);
  }
});

t.test('DIAL_STRING_TEMPLATE may use ${number} more than once (FreeSWITCH failover dial string)', async (t) => {
  const template = 'sofia/gateway/carrier_a/${number}|sofia/gateway/carrier_b/${number}';
  const { error } = refusal({ env: { DIAL_STRING_TEMPLATE: template } });
  t.equal(error, null, 'two ${number} placeholders are not "another variable"');
});

t.test('a JSON config file is loaded and the environment overrides it', async (t) => {
  const file = writeJson(t, {
    database: { url: 'mysql://app:pw@10.0.0.5:3306/hotline', poolMax: 25 },
    esl: { listenPort: 9000, listenHost: '10.0.0.2' },
    metrics: { port: 9500 },
    log: { level: 'warn' },
    node: { name: 'fs-node-7' },
  });
  const fromFile = loadSettings({ env: {}, file });
  t.equal(fromFile.database.url, 'mysql://app:pw@10.0.0.5:3306/hotline');
  t.equal(fromFile.database.poolMax, 25);
  t.equal(fromFile.esl.listenPort, 9000);
  t.equal(fromFile.esl.listenHost, '10.0.0.2');
  t.equal(fromFile.metrics.port, 9500);
  t.equal(fromFile.log.level, 'warn');
  t.equal(fromFile.node.name, 'fs-node-7');
  t.equal(fromFile.esl.replyTimeoutMs, 5000, 'keys absent from the file keep their defaults');

  const both = loadSettings({ env: { ESL_LISTEN_PORT: '9100', LOG_LEVEL: 'debug' }, file });
  t.equal(both.esl.listenPort, 9100, 'environment wins over the file');
  t.equal(both.log.level, 'debug', 'environment wins over the file');
  t.equal(both.metrics.port, 9500, 'file value kept where the environment is silent');

  const viaEnv = loadSettings({ env: { CONFIG_FILE: file } });
  t.equal(viaEnv.esl.listenPort, 9000, 'CONFIG_FILE names the file when no file option is given');
});

t.test('a config file is validated like the environment', async (t) => {
  const unknown = refusal({ env: {}, file: writeJson(t, { esl: { listenPort: 9000, lisenPort: 9001 } }) });
  t.type(unknown.error, ConfigError, 'a misspelt key is refused');
  t.match(unknown.message, /esl\.lisenPort/, 'the message names the unknown key');
  t.match(unknown.message, /not declared/, 'the message says why');

  const topLevel = refusal({ env: {}, file: writeJson(t, { dataBase: { url: 'sqlite:/x.db' } }) });
  t.type(topLevel.error, ConfigError, 'an unknown section is refused');
  t.match(topLevel.message, /dataBase/);

  const badValue = refusal({ env: {}, file: writeJson(t, { dial: { stringTemplate: 'sofia/${gw}/${number}' } }) });
  t.type(badValue.error, ConfigError, 'a bad value in the file is refused');
  t.match(badValue.message, /dial\.stringTemplate/);

  const badType = refusal({ env: {}, file: writeJson(t, { esl: { listenPort: 'eighty' } }) });
  t.type(badType.error, ConfigError);
  t.match(badType.message, /esl\.listenPort/);

  const notJson = refusal({ env: {}, file: writeJson(t, '{ "esl": { "listenPort": 9000 ') });
  t.type(notJson.error, ConfigError, 'a file that is not JSON is a ConfigError');

  const missing = refusal({ env: {}, file: path.join(tempDir(t), 'nope.json') });
  t.type(missing.error, ConfigError, 'a missing file is a ConfigError');
  t.match(missing.message, /nope\.json|ENOENT/);

  // The environment fixing a bad file value does not hide the file's unknown key.
  const stillUnknown = refusal({ env: { ESL_LISTEN_PORT: '9002' }, file: writeJson(t, { esl: { bogus: 1 } }) });
  t.match(stillUnknown.message, /esl\.bogus/);
});

t.test('overrides apply on top of the defaults and the file', async (t) => {
  const file = writeJson(t, { esl: { listenPort: 9000 }, metrics: { port: 9500 } });
  const s = loadSettings({ env: {}, file, overrides: { esl: { listenPort: 0 }, cdr: { flushIntervalMs: 20 } } });
  t.equal(s.esl.listenPort, 0, 'override beats the file');
  t.equal(s.metrics.port, 9500, 'file kept where not overridden');
  t.equal(s.cdr.flushIntervalMs, 20);
  const bad = refusal({ env: {}, overrides: { esl: { nope: 1 } } });
  t.type(bad.error, ConfigError, 'unknown override keys refused');

  // LoadOptions documents overrides as "applied last"; convict re-imports the environment after load().
  const withEnv = loadSettings({ env: { ESL_LISTEN_PORT: '5000' }, overrides: { esl: { listenPort: 0 } } });
  t.equal(withEnv.esl.listenPort, 0, 'overrides win over the environment');
});

t.test('METRICS_TENANT_IDS: a short list of ids, nothing else', async (t) => {
  t.same(loadSettings({ env: { METRICS_TENANT_IDS: '7,8 , 9' } }).metrics.tenantIds, [7, 8, 9]);
  for (const bad of ['a,b', '1;2', '-1', Array.from({ length: 51 }, (_, i) => i + 1).join(',')]) {
    t.throws(() => loadSettings({ env: { METRICS_TENANT_IDS: bad } }), ConfigError, bad.slice(0, 20));
  }
});

t.test('the settings object is deeply frozen', async (t) => {
  const s = loadSettings({ env: {} });
  t.ok(Object.isFrozen(s), 'top level frozen');
  for (const [section, value] of Object.entries(s)) t.ok(Object.isFrozen(value), `${section} frozen`);
  const writable = s as unknown as { esl: { listenPort: number }; node: { name: string }; extra?: number; log: object };
  t.throws(() => {
    writable.esl.listenPort = 1;
  }, TypeError, 'assigning a nested value throws in strict mode');
  t.throws(() => {
    writable.node.name = 'x';
  }, TypeError);
  t.throws(() => {
    writable.extra = 1;
  }, TypeError, 'adding a key throws');
  t.throws(() => {
    writable.log = {};
  }, TypeError, 'replacing a section throws');
  t.equal(s.esl.listenPort, 8084, 'value unchanged');
  t.equal(writable.extra, undefined);

  // A second load is a fresh object (not the frozen one of the first load).
  const again = loadSettings({ env: { ESL_LISTEN_PORT: '8085' } });
  t.equal(again.esl.listenPort, 8085);
  t.equal(s.esl.listenPort, 8084, 'earlier settings unaffected by a later load');
});

t.test('node.name: empty means the host name', async (t) => {
  t.equal(loadSettings({ env: {} }).node.name, os.hostname(), 'default empty → host name');
  t.equal(loadSettings({ env: { NODE_NAME: '' } }).node.name, os.hostname(), 'NODE_NAME= → host name');
  t.equal(loadSettings({ env: { NODE_NAME: 'fs-a' } }).node.name, 'fs-a');
  t.equal(loadSettings({ env: { NODE_NAME: '广州节点'.repeat(16) } }).node.name.length, 64, '64 characters (not bytes) fit the node columns');
  t.equal(loadSettings({ env: {}, overrides: { node: { name: '' } } }).node.name, os.hostname());
  t.ok(Object.isFrozen(loadSettings({ env: {} }).node), 'node section frozen too');
});

t.test('ConfigError is an Error subclass', async (t) => {
  const { error } = refusal({ env: { LOG_LEVEL: 'loud' } });
  t.ok(error instanceof Error);
  t.ok(error instanceof ConfigError);
  t.match((error as Error).message, /^invalid configuration: /);
});

t.test('a refused DATABASE_URL does not echo its password', async (t) => {
  const { error, message } = refusal({ env: { DATABASE_URL: 'postgres://app:s3cretPw@db.example.net/hotline' } });
  t.type(error, ConfigError);
  t.match(message, /database\.url/);
  t.notMatch(message, /s3cretPw/, 'the password is not in the message (it goes to logs)');
});
