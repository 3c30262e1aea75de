/**
 * Loads, validates and freezes the daemon's settings. This is the only module that reads the
 * environment; everything else receives the frozen Settings object.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import convict from 'convict';
import { registerFormats, schema } from './schema';

export interface Settings {
  readonly database: { readonly url: string; readonly poolMax: number; readonly seedDemo: 'auto' | 'always' | 'never'; readonly migrationLockWaitS: number };
  readonly esl: {
    readonly listenHost: string;
    readonly listenPort: number;
    readonly listenBacklog: number;
    readonly acceptHandles: number;
    readonly bridgedInputBudgetMs: number;
    readonly replyTimeoutMs: number;
    readonly appTimeoutMarginMs: number;
    readonly lingerS: number;
    readonly maxFrameBytes: number;
  };
  readonly metrics: { readonly host: string; readonly port: number; readonly tenantIds: readonly number[] };
  readonly dial: { readonly stringTemplate: string };
  readonly calls: { readonly maxDurationS: number; readonly drainTimeoutS: number; readonly maxFailoverGroups: number; readonly warmUpCalls: number; readonly warmUpMaxS: number };
  readonly prompts: { readonly systemDir: string; readonly sameFilesystem: 'auto' | 'yes' | 'no' };
  readonly admission: { readonly onDatabaseError: 'admit' | 'refuse'; readonly queryTimeoutMs: number };
  readonly callerMemory: { readonly indexHours: number; readonly indexBitsPerHour: number; readonly indexPollMs: number };
  readonly freeswitch: { readonly inboundHost: string; readonly inboundPort: number; readonly inboundPassword: string; readonly inboundMaxFrameBytes: number };
  readonly cron: { readonly enabled: boolean };
  readonly reports: { readonly dir: string };
  readonly retention: { readonly recordingsDays: number; readonly voicemailDays: number; readonly cdrDays: number };
  readonly recordings: { readonly dir: string; readonly stereo: boolean };
  readonly tts: { readonly engine: 'espeak' | 'freeswitch'; readonly cacheDir: string; readonly voice: string; readonly freeswitchEngine: string };
  readonly notify: {
    readonly smsGatewayUrl: string;
    readonly smtpUrl: string;
    readonly from: string;
    readonly maxAttempts: number;
    readonly timeoutMs: number;
  };
  readonly api: { readonly enabled: boolean; readonly host: string; readonly port: number; readonly trustProxy: string; readonly rateLimitPerMinute: number };
  readonly clickToCall: {
    readonly maxPerClientMinute: number;
    readonly maxPerClientDay: number;
    readonly ringTimeoutS: number;
    readonly connectTimeoutS: number;
    readonly socketAddress: string;
  };
  readonly configCache: { readonly pollIntervalMs: number; readonly fullReloadIntervalS: number; readonly file: string };
  readonly cdr: { readonly spoolDir: string; readonly flushIntervalMs: number; readonly retryIntervalMs: number; readonly writerThread: boolean; readonly writerThreadNice: number };
  readonly node: { readonly name: string };
  /** CLUSTER_WORKERS resolved: how many worker processes (1 = no cluster). */
  readonly cluster: { readonly workers: number; readonly scheduling: 'round_robin' | 'os'; readonly hangTimeoutS: number };
  readonly log: { readonly level: string };
}

/** The installation directory: the folder holding package.json (above src/ and dist/src/). */
export const INSTALL_DIR = findInstallDir(__dirname);

function findInstallDir(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(from, '..', '..');
  }
}

/** A configuration the daemon refuses to start with; the message names the key and the reason. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

let formatsRegistered = false;

export interface LoadOptions {
  /** Environment to read (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
  /** JSON config file; defaults to $CONFIG_FILE when set. Values from the environment win. */
  file?: string;
  /** Overrides applied last (tests). */
  overrides?: Record<string, unknown>;
}

export function loadSettings(options: LoadOptions = {}): Settings {
  if (!formatsRegistered) {
    registerFormats();
    formatsRegistered = true;
  }
  const env = options.env ?? process.env;
  // convict reads env and argv itself unless told otherwise: give it exactly what we were given.
  const config = convict(schema, { env, args: [] });
  const file = options.file ?? env.CONFIG_FILE;
  try {
    if (file) config.loadFile(file);
    // set(), not load(): load() re-applies the environment afterwards, and overrides must win.
    for (const [key, value] of leaves(options.overrides ?? {})) config.set(key as never, value as never);
    config.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${redact((err as Error).message)}`);
  }
  const props = config.getProperties() as unknown as Omit<Settings, 'cluster'> & { metrics: { tenantIds: string }; cluster: { workers: number | 'auto'; scheduling: 'round_robin' | 'os'; hangTimeoutS: number } };
  // Files the daemon owns are found from the installation, not from wherever it was started:
  // two daemons started from different folders must not get two spools of one install, and one
  // started from / must not spool into /var/spool/cdr by accident.
  const spoolDir = path.resolve(INSTALL_DIR, props.cdr.spoolDir);
  const settings: Settings = {
    ...props,
    metrics: { ...props.metrics, tenantIds: props.metrics.tenantIds.split(',').filter((v) => v.trim() !== '').map(Number) },
    configCache: { ...props.configCache, file: props.configCache.file === '' ? path.join(spoolDir, 'config-cache.json') : path.resolve(INSTALL_DIR, props.configCache.file) },
    cdr: { ...props.cdr, spoolDir },
    node: { name: props.node.name || os.hostname() },
    cluster: { workers: props.cluster.workers === 'auto' || props.cluster.workers === 0 ? os.availableParallelism() : props.cluster.workers, scheduling: props.cluster.scheduling, hangTimeoutS: props.cluster.hangTimeoutS },
  };
  return deepFreeze(settings);
}

function leaves(tree: Record<string, unknown>, prefix = ''): Array<[string, unknown]> {
  return Object.entries(tree).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v) ? leaves(v as Record<string, unknown>, `${prefix}${k}.`) : [[`${prefix}${k}`, v] as [string, unknown]],
  );
}

/** Error messages go to logs: never with a database password in them. */
function redact(message: string): string {
  return message.replace(/(\/\/[^:/@\s"]*):[^@\s"]*@/g, '$1:***@');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Rows for the README's configuration table: key, environment variable, default, meaning. */
export function describeSettings(): Array<{ key: string; env: string; default: string; doc: string }> {
  const rows: Array<{ key: string; env: string; default: string; doc: string }> = [];
  const walk = (node: Record<string, unknown>, prefix: string): void => {
    for (const [name, child] of Object.entries(node)) {
      const entry = child as { doc?: string; env?: string; default?: unknown };
      if (typeof entry.doc === 'string') {
        rows.push({ key: prefix + name, env: entry.env ?? '', default: JSON.stringify(entry.default), doc: entry.doc });
      } else {
        walk(child as Record<string, unknown>, `${prefix}${name}.`);
      }
    }
  };
  walk(schema, '');
  return rows;
}
