import { ConfigError, loadSettings, type Settings } from '../config';

/** Tiny `--name value` parser for the operator commands (no dependency for four flags). */
export class UsageError extends Error {}

export function parseFlags(argv: readonly string[], known: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = /^--([a-z-]+)=(.*)$/.exec(arg);
    const name = eq ? eq[1] : /^--([a-z-]+)$/.exec(arg)?.[1];
    if (!name || !known.includes(name)) throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    const value = eq ? eq[2] : argv[++i];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
    out.set(name, value);
  }
  return out;
}

export function tenantIdFlag(flags: Map<string, string>): number {
  const raw = flags.get('tenant');
  if (raw === undefined) throw new UsageError('--tenant <id> is required');
  if (!/^[1-9]\d{0,9}$/.test(raw)) throw new UsageError(`--tenant must be a tenant id, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** Loads the settings for a command; a configuration error is written as `<name>: …` and gives null. */
export function settingsOrNull(name: string, err: { write(text: string): unknown }, env?: NodeJS.ProcessEnv): Settings | null {
  try {
    return loadSettings(env ? { env } : {});
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err.write(`${name}: ${e.message}\n`);
    return null;
  }
}
