/**
 * The two ends of one click-to-call attempt, pure: the `originate` the daemon sends over the
 * inbound event socket, and the recognition of the visitor's leg when FreeSWITCH hands it to the
 * outbound socket after the visitor answered.
 *
 * Why a channel variable and not the numbers: on the originated leg FreeSWITCH reports
 * `Call-Direction: outbound`, `Answer-State: answered`, and after the caller-ID flip of an
 * originate (switch_ivr_originate.c, `channel_cid_flipped`) the visitor's number in BOTH
 * Caller-Caller-ID-Number and Caller-Destination-Number; the access number appears only as the
 * origination caller ID (test/fixtures/esl/outbound-originated-leg-to-socket.log). So the leg is
 * marked with `hotline_click_to_call=<request id>` and carries what the call flow needs in
 * variables of our own; nothing is guessed from the numbers.
 */
import { buildDialString } from '../esl/safe';
import { microseconds } from '../esl/call-channel';

/** Channel variables we set on the visitor leg (originate `{…}`), read back from CHANNEL_DATA. */
export const LEG_VARS = {
  requestId: 'hotline_click_to_call',
  widgetId: 'hotline_widget_id',
  accessNumber: 'hotline_access_number',
  visitor: 'hotline_visitor',
  clickedAtMs: 'hotline_clicked_at_ms',
} as const;

export interface OriginateRequest {
  callUuid: string;
  requestId: string;
  widgetId: number;
  accessNumber: string;
  /** The number dialled for the visitor (checkVisitorNumber's `dial`). */
  visitor: string;
  /** What the visitor's phone shows. */
  callerIdNumber: string;
  clickedAt: Date;
  ringTimeoutS: number;
  /** DIAL_STRING_TEMPLATE. */
  dialTemplate: string;
  /** host:port of the outbound socket FreeSWITCH hands the answered leg to. */
  socketAddress: string;
}

/**
 * `originate {vars}<dial string> '&socket(<host:port> async full)'` — the argument of `bgapi`.
 * The quotes matter: originate splits its arguments at spaces (switch_separate_string, which
 * keeps '…' together and strips the quotes), so an unquoted `&socket(127.0.0.1:8084 async full)`
 * reaches the socket application as just `127.0.0.1:8084`: a static, single-channel socket on
 * which FreeSWITCH refuses `linger` and `nixevent` (mod_event_socket.c: an outbound socket without
 * `full` gets "-ERR command not found" for them), as the capture
 * test/fixtures/esl/outbound-originated-leg-to-socket.log shows.
 * Every value is validated by buildDialString (src/esl/safe.ts); the socket address here.
 */
export function originateCommand(r: OriginateRequest): string {
  if (!/^[A-Za-z0-9.-]{1,253}:\d{1,5}$/.test(r.socketAddress)) throw new Error(`socket address ${JSON.stringify(r.socketAddress)} is not host:port`);
  const dial = buildDialString(r.dialTemplate, r.visitor, {
    origination_uuid: r.callUuid,
    origination_caller_id_number: r.callerIdNumber,
    [LEG_VARS.requestId]: r.requestId,
    [LEG_VARS.widgetId]: r.widgetId,
    [LEG_VARS.accessNumber]: r.accessNumber,
    [LEG_VARS.visitor]: r.visitor,
    [LEG_VARS.clickedAtMs]: r.clickedAt.getTime(),
    originate_timeout: r.ringTimeoutS,
    // Ring the visitor until a real answer: a carrier's early-media announcement is not one.
    ignore_early_media: 'true',
  });
  return `originate ${dial} '&socket(${r.socketAddress} async full)'`;
}

export interface ClickToCallLeg {
  requestId: string;
  widgetId: number;
  accessNumber: string;
  visitor: string;
  clickedAt: Date;
  /** When the visitor answered (FreeSWITCH's Caller-Channel-Answered-Time), if it says. */
  visitorAnsweredAt: Date | null;
  /** Seconds the visitor's phone rang: answered minus created (FreeSWITCH's own stamps). */
  visitorRingS: number | null;
}

export type LegRecognition =
  | { kind: 'none' }
  | { kind: 'click_to_call'; leg: ClickToCallLeg }
  | { kind: 'malformed'; reason: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Reads the CHANNEL_DATA of an outbound-socket connection: a click-to-call visitor leg or not. */
export function recognizeClickToCall(data: Readonly<Record<string, string>>): LegRecognition {
  const v = (name: string): string | undefined => data[`variable_${name}`];
  const requestId = v(LEG_VARS.requestId);
  if (requestId === undefined) return { kind: 'none' };
  const widgetId = v(LEG_VARS.widgetId) ?? '';
  const accessNumber = v(LEG_VARS.accessNumber) ?? '';
  const visitor = v(LEG_VARS.visitor) ?? '';
  const clickedAtMs = v(LEG_VARS.clickedAtMs) ?? '';
  if (!UUID.test(requestId)) return { kind: 'malformed', reason: `${LEG_VARS.requestId} ${JSON.stringify(requestId.slice(0, 40))} is not a request id` };
  if (!/^[1-9][0-9]{0,9}$/.test(widgetId)) return { kind: 'malformed', reason: `${LEG_VARS.widgetId} missing or not an id` };
  if (!/^[0-9]{3,32}$/.test(accessNumber)) return { kind: 'malformed', reason: `${LEG_VARS.accessNumber} missing or not digits` };
  if (!/^[0-9]{3,32}$/.test(visitor)) return { kind: 'malformed', reason: `${LEG_VARS.visitor} missing or not digits` };
  if (!/^[0-9]{1,15}$/.test(clickedAtMs)) return { kind: 'malformed', reason: `${LEG_VARS.clickedAtMs} missing or not a time` };
  const createdUs = microseconds(data['Caller-Channel-Created-Time']);
  const answeredUs = microseconds(data['Caller-Channel-Answered-Time']);
  return {
    kind: 'click_to_call',
    leg: {
      requestId,
      widgetId: Number(widgetId),
      accessNumber,
      visitor,
      clickedAt: new Date(Number(clickedAtMs)),
      visitorAnsweredAt: answeredUs === null ? null : new Date(answeredUs / 1000),
      visitorRingS: createdUs !== null && answeredUs !== null && answeredUs >= createdUs ? Math.round((answeredUs - createdUs) / 1e5) / 10 : null,
    },
  };
}
