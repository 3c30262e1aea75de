/** Helpers for the whole-daemon call tests. */
import type { CallRecord } from '../peer/fake-freeswitch';

/** Every application the daemon ran, as `name argument`. */
export function allApps(c: CallRecord): string[] {
  return c.commands.filter((x) => x.headers['call-command'] === 'execute').map((x) => `${x.headers['execute-app-name']} ${x.body}`);
}

/**
 * The applications after the daemon took the call (its first is always `set hotline_handled=true`,
 * checked in call-flow.test.ts): what the caller hears and where the call goes.
 */
export function apps(c: CallRecord): string[] {
  const all = allApps(c);
  return all[0] === 'set hotline_handled=true' ? all.slice(1) : all;
}
