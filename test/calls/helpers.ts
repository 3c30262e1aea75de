/** Helpers for the whole-daemon call tests. */
import { randomUUID } from 'node:crypto';
import type { CallRecord, CallScript } from '../peer/fake-freeswitch';

/** Every application the daemon ran, as `name argument`. */
export function allApps(c: CallRecord): string[] {
  return c.commands.filter((x) => x.headers['call-command'] === 'execute').map((x) => `${x.headers['execute-app-name']} ${x.body}`);
}

/** The daemon's first application on every call: the handled flag with the bridging variables (handled.test.ts). */
export const CLAIM_APP = 'multiset hotline_handled=true continue_on_fail=true hangup_after_bridge=true';

/** A served call's claim: CLAIM_APP and what the caller hears while the phones ring (hunt.ts servedCallVariables; by default the system ringback, as the demo tenant has). */
export function servedClaimApp(ringback = '/sounds/hotline/ringback.wav'): string {
  return `${CLAIM_APP} ringback=${ringback} transfer_ringback=${ringback}`;
}

/** The applications after the daemon took the call (its first is always CLAIM_APP): what the caller hears and where the call goes. */
export function apps(c: CallRecord): string[] {
  const all = allApps(c);
  return all[0]?.startsWith(CLAIM_APP) ? all.slice(1) : all;
}

/**
 * The demo widget's visitor leg as FreeSWITCH hands it to the socket already answered (A11 in
 * test/peer/fake-freeswitch.ts): the originate's caller ID (the demo access number) and the
 * click-to-call variables the dialer puts on it.
 */
export function demoVisitorLeg(visitor: string): NonNullable<CallScript['originated']> {
  return {
    callerIdNumber: '4001012345',
    variables: {
      hotline_click_to_call: randomUUID(), hotline_widget_id: '1', hotline_access_number: '4001012345',
      hotline_visitor: visitor, hotline_clicked_at_ms: String(Date.now()),
    },
  };
}
