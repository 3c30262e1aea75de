/**
 * How a caller whose money is about to run out hears the warning: the one decision, used by the
 * session's spend guard (src/calls/call-session.ts, over the call's own socket) and by the
 * live-call guard (live-guard.ts, over FreeSWITCH's inbound socket).
 *
 * FreeSWITCH facts (signalwire/freeswitch source):
 * - `uuid_broadcast` (switch_ivr_async.c switch_ivr_broadcast) QUEUES a `playback` (itself with
 *   `event-lock: true`) on the channel's ordinary private event queue; only SMF_PRIORITY, which
 *   mod_commands' uuid_broadcast does not set, would use the priority queue that CF_EVENT_LOCK
 *   leaves alone (switch_core_session.c switch_core_session_private_event_count). A sendmsg
 *   written with `event-lock: true` (the daemon's
 *   greeting in front of a hunt) sets CF_EVENT_LOCK while it runs (switch_ivr.c
 *   switch_ivr_parse_event), and switch_core_session_dequeue_private_event returns nothing while
 *   that flag is up: the warning waits behind the whole greeting (M7 in
 *   test/peer/channel-model.ts; the capture daemon-spend-cut-during-warning-broadcast shows the
 *   same wait behind a locked playback). Outside a locked prompt the broadcast plays at once: the
 *   park loop, a running prompt and a bridge all parse the queue every frame.
 * - `uuid_displace <uuid> start <file> 0 mux` (mod_commands.c session_displace_function,
 *   switch_ivr_async.c switch_ivr_displace_session) adds a media bug instead: the file is MIXED
 *   into every frame written to the caller (write_displace_callback, `m` flag) from the next
 *   frame, whatever application runs, so it is heard over a locked prompt. Limit 0 = no time
 *   limit; at the end of the file (no `l` flag) the callback returns SWITCH_FALSE and FreeSWITCH
 *   removes the bug itself: nothing to stop. It answers `-ERR Cannot displace session!` when the
 *   file cannot be opened, the channel has no media, or the same file already displaces it, and
 *   `-ERR Cannot locate session!` for an unknown channel. Frames are only written while something
 *   plays (a prompt, a bridge): in park it would be mixed into nothing, hence broadcast there.
 */
import { EslCommandError } from '../esl/errors';

/** How the warning was sent. */
export type WarningWay = 'displace' | 'broadcast';

/** What sends a warning to one call: over the call's own socket or the inbound one. */
export interface WarningTransport {
  /** `uuid_displace <uuid> start <file> 0 mux`; rejects with EslCommandError on -ERR. */
  displace(file: string): Promise<void>;
  /** `uuid_broadcast <uuid> <file> both`. */
  broadcast(file: string): Promise<void>;
}

/** The first way to try for a call in this state (pure): mixed in over a locked prompt, else queued. */
export function warningWay(promptLocked: boolean): WarningWay {
  return promptLocked ? 'displace' : 'broadcast';
}

/**
 * Sends the warning the way warningWay picks; a displace FreeSWITCH refuses (-ERR) falls back to
 * the broadcast, which still plays (late, behind the prompt) rather than never. Other errors (a
 * socket gone, a timeout) are the caller's to log.
 */
export async function sendWarning(transport: WarningTransport, file: string, promptLocked: boolean): Promise<WarningWay> {
  const way = warningWay(promptLocked);
  switch (way) {
    case 'displace':
      try {
        await transport.displace(file);
        return 'displace';
      } catch (err) {
        if (!(err instanceof EslCommandError)) throw err;
      }
      await transport.broadcast(file);
      return 'broadcast';
    case 'broadcast':
      await transport.broadcast(file);
      return 'broadcast';
    default: {
      const never: never = way;
      return never;
    }
  }
}
