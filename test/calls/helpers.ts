/** Helpers for the whole-daemon call tests. */
import type { CallRecord } from '../peer/fake-freeswitch';

/** Every application the daemon ran, as `name argument`. */
export function allApps(c: CallRecord): string[] {
  return c.commands.filter((x) => x.headers['call-command'] === 'execute').map((x) => `${x.headers['execute-app-name']} ${x.body}`);
}

/** The daemon's first application on every call: the handled flag with the bridging variables (handled.test.ts). */
export const CLAIM_APP = 'multiset hotline_handled=true continue_on_fail=true hangup_after_bridge=true';

/** The applications after the daemon took the call (its first is always CLAIM_APP): what the caller hears and where the call goes. */
export function apps(c: CallRecord): string[] {
  const all = allApps(c);
  return all[0] === CLAIM_APP ? all.slice(1) : all;
}
