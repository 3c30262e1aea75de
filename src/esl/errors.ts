/**
 * Typed ESL errors. Each carries what a log line or a CDR needs to say what went wrong.
 * Codes are stable (see README "Error codes") so alerts and log searches can rely on them.
 */
export class EslError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The byte stream cannot be framed any more (bad Content-Length, endless header block). */
export class EslProtocolError extends EslError {
  constructor(message: string, code = 'ESL_PROTOCOL') {
    super(code, message);
  }
}

/**
 * One frame (its header block or its Content-Length) is larger than the connection accepts
 * (ESL_MAX_FRAME_BYTES for a call's socket): refused as soon as its header is read, its body
 * never buffered.
 */
export class EslFrameTooLargeError extends EslProtocolError {
  constructor(
    readonly what: 'header block' | 'body',
    readonly size: number,
    readonly limit: number,
  ) {
    super(`${what} of ${what === 'body' ? '' : 'at least '}${size} bytes exceeds the frame limit of ${limit} bytes`, 'ESL_FRAME_TOO_LARGE');
  }
}

/** FreeSWITCH did not answer a command, or an application did not complete, in time. */
export class EslTimeoutError extends EslError {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super('ESL_TIMEOUT', `no answer to "${command}" within ${timeoutMs} ms`);
  }
}

/** FreeSWITCH answered a command with -ERR. */
export class EslCommandError extends EslError {
  constructor(
    readonly command: string,
    readonly replyText: string,
  ) {
    super('ESL_COMMAND_FAILED', `"${command}" failed: ${replyText}`);
  }
}

/** The caller hung up before or while the command ran. Expected: ends the call flow quietly. */
export class CallHungUpError extends EslError {
  constructor(
    readonly command: string,
    readonly hangupCause: string | null,
  ) {
    super('CALL_HUNG_UP', `"${command}" not run: call hung up (${hangupCause ?? 'unknown cause'})`);
  }
}

/** The socket to FreeSWITCH closed or broke. */
export class SocketClosedError extends EslError {
  constructor(readonly command: string) {
    super('ESL_SOCKET_CLOSED', `"${command}" not completed: socket closed`);
  }
}

/** A value from a caller or a table that must not reach an ESL command or a dial string. */
export class UnsafeValueError extends EslError {
  constructor(
    readonly what: string,
    readonly reason: string,
  ) {
    super('ESL_UNSAFE_VALUE', `refusing ${what}: ${reason}`);
  }
}
