/**
 * What a call's steps need from the caller's channel, and nothing else: play and collect, bridge,
 * set variables, record, hang up, cut, warn. EslCallChannel implements it over the outbound event
 * socket; the step tests implement it with a scripted channel that follows the same FreeSWITCH
 * rules (test/peer/channel-model.ts), so each step can be tested alone.
 */

/** play_and_get_digits <min> <max> <tries> <timeout> <terminators> <file> <invalid> <var> <regexp> <digit timeout>. */
export interface DigitCollection {
  min: number;
  max: number;
  tries: number;
  /** First-digit timeout, counted from the end of the prompt (switch_ivr_read). */
  timeoutMs: number;
  terminators: string;
  file: string;
  invalidFile: string;
  variable: string;
  regexp: string;
  /** Inter-digit timeout. */
  digitTimeoutMs: number;
  /** Longest the prompt may play (bounds the wait for the completion). */
  promptMs: number;
}

export interface DigitResult {
  /** Valid digits as FreeSWITCH left them in the variable; '' when none. */
  digits: string;
  /**
   * read_result of the last try: success, timeout, failure; null when it was never set — the
   * prompt could not be opened (a missing file returns at once without collecting: M5 in
   * test/peer/channel-model.ts, switch_ivr_play_say.c switch_ivr_read).
   */
  readResult: 'success' | 'timeout' | 'failure' | null;
  /** How long the application ran, on the daemon's clock. */
  elapsedMs: number;
}

export interface BridgeOutcome {
  /** FreeSWITCH's originate_disposition, e.g. SUCCESS, USER_BUSY, NO_ANSWER, ALLOTTED_TIMEOUT. */
  disposition: string;
  /** DIALSTATUS: SUCCESS, BUSY, NOANSWER, CANCEL, CHANUNAVAIL, INVALIDARGS … */
  dialStatus: string;
  answered: boolean;
  /** With several legs in one bridge: the destination number of the leg that answered. */
  answeredNumber: string | null;
}

/**
 * How a prompt is written. `eventLock`: the sendmsg carries `event-lock: true`, so FreeSWITCH
 * dequeues nothing else while it plays (CF_EVENT_LOCK, switch_ivr.c switch_ivr_parse_event and
 * switch_core_session_dequeue_private_event): an application written meanwhile waits in the
 * channel's queue and starts when the prompt ends, instead of running nested inside it (M7 in
 * test/peer/channel-model.ts). A `sendmsg` hangup written meanwhile waits too; cuts use kill().
 */
export interface PlayOptions {
  eventLock?: boolean;
}

/** How a prompt ended. */
export interface PlayEnd {
  /** Application-Response: FILE PLAYED, FILE NOT FOUND, PLAYBACK ERROR (speak: _none_). */
  response: string;
  /**
   * The caller was still up when it ended (its completion says `Answer-State` other than hangup):
   * what was queued behind it runs. False when it ended because the caller hung up.
   */
  callerUp: boolean;
}

/**
 * What `record` (mod_dptools record_function, switch_ivr_play_say.c switch_ivr_record_file) leaves
 * on the channel when it ends, read from its CHANNEL_EXECUTE_COMPLETE:
 * - record_ms: fh->samples_out / (native_rate / 1000), the audio WRITTEN to the file. Frames
 *   flagged SFF_CNG (the caller's phone sent nothing: VAD, DTX, no RTP) are not written unless
 *   record_fill_cng is set, and the frame that exhausts the silence count is not written either;
 *   the trailing silence before it is, untrimmed (nothing in switch_ivr_record_file trims it).
 * - silence_hits_exhausted: set "false" once the file is open, "true" when <hits> seconds below
 *   the threshold ended the recording (the `break` before the write).
 * The frame length is the read codec's packet time (rtp_use_codec_ptime on the channel), 20 ms
 * when the channel does not say.
 */
export interface RecordEnd {
  /** record_ms: milliseconds written to the file (0 when unset). */
  readonly ms: number;
  /** silence_hits_exhausted=true: <hits> seconds of silence ended it. */
  readonly endedOnSilence: boolean;
  /** One frame, ms (rtp_use_codec_ptime, default 20). */
  readonly frameMs: number;
}

/** Packet time assumed when the channel names none (FreeSWITCH's default ptime for PCMU/PCMA). */
export const DEFAULT_FRAME_MS = 20;

/** RecordEnd from the variables of `record`'s completion (EslCallChannel and the test stand-in alike). */
export function recordEnd(variable: (name: string) => string | undefined): RecordEnd {
  const ms = Number(variable('record_ms') ?? '0');
  const ptime = Number(variable('rtp_use_codec_ptime') ?? DEFAULT_FRAME_MS);
  return {
    ms: Number.isFinite(ms) && ms > 0 ? Math.trunc(ms) : 0,
    endedOnSilence: variable('silence_hits_exhausted') === 'true',
    frameMs: Number.isInteger(ptime) && ptime > 0 && ptime <= 200 ? ptime : DEFAULT_FRAME_MS,
  };
}

/**
 * The api command that mixes `file` into what the caller hears (uuid and file already checked):
 * mod_commands uuid_displace, limit 0 (the whole file), `mux` (mixed in, not replacing the audio).
 * One spelling for the call's own socket and the inbound one (src/billing/warning.ts decides when).
 */
export function displaceCommand(uuid: string, file: string): string {
  return `uuid_displace ${uuid} start ${file} 0 mux`;
}

export interface CallChannel {
  readonly uuid: string;
  /** The caller's leg is gone (CHANNEL_HANGUP seen, or the socket closed). */
  readonly hungUp: boolean;
  answer(): Promise<void>;
  /** Sets channel variables (`multiset`); values are checked, never expanded. */
  setVariables(vars: Record<string, string | number | boolean>): Promise<void>;
  /** `playback`: resolves with how it ended (Application-Response: FILE PLAYED, FILE NOT FOUND, PLAYBACK ERROR; the caller still up). */
  playback(file: string, maxMs: number, options?: PlayOptions): Promise<PlayEnd>;
  /** `speak engine|voice|text`, resolving as playback does. */
  speak(arg: string, maxMs: number, options?: PlayOptions): Promise<PlayEnd>;
  playAndGetDigits(opts: DigitCollection): Promise<DigitResult>;
  /** `bridge` (continue_on_fail must be set first). */
  bridge(dialString: string, timeoutMs: number): Promise<BridgeOutcome>;
  recordSession(path: string): Promise<void>;
  /** `record <path> <max s> <threshold> <hits>`: resolves with what FreeSWITCH says it wrote (recordEnd). */
  record(path: string, maxS: number, silenceThreshold: number, silenceHits: number): Promise<RecordEnd>;
  /** The `hangup` application: after whatever is queued. A no-op once the call is gone. */
  hangup(cause: string): Promise<void>;
  /**
   * Ends the call NOW, whatever plays or rings (`api uuid_kill`, M8): for cuts that must land
   * on time. 'gone' when the channel had already ended.
   */
  kill(cause: string): Promise<'killed' | 'gone'>;
  /** Plays a prompt over whatever runs, both legs (`uuid_broadcast … both`), without waiting. */
  broadcast(file: string): Promise<void>;
  /** Mixes a file into what the caller hears now (`api uuid_displace … start <file> 0 mux`); -ERR rejects (EslCommandError). */
  displace(file: string): Promise<void>;
  /**
   * An application written with `event-lock: true` has not completed: FreeSWITCH dequeues nothing
   * else meanwhile, so a uuid_broadcast would wait behind it (src/billing/warning.ts).
   */
  readonly promptLocked: boolean;
  /**
   * What is written in this tick leaves at the end of this turn of the event loop, together with
   * what an immediate queued before adds: the first bridge once a caller-memory lookup that
   * answers within the turn (SQLite) has answered, in the greeting's write. FreeSWITCH then reads
   * the two at once and rings the phones as the greeting ends, one round trip sooner.
   */
  sendAtEndOfTurn(): void;
}
