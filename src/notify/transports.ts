/**
 * The two ways a missed-call notification leaves: a JSON POST to the HTTP SMS gateway, or an
 * e-mail through SMTP. Both are bounded by NOTIFY_TIMEOUT_MS. A PermanentError means retrying
 * cannot help (the dispatcher gives up at once); any other error is retried with backoff.
 */
import nodemailer, { type Mail } from 'nodemailer';
import type { MissedCallPayload } from './queue';

export class PermanentError extends Error {
  override readonly name = 'PermanentError';
}

/** The JSON body the SMS gateway receives. */
export interface SmsRequest {
  readonly to: string;
  readonly caller: string;
  readonly accessNumber: string;
  readonly time: string;
  readonly outcome: string;
  readonly text: string;
}

export function smsRequest(to: string, payload: MissedCallPayload): SmsRequest {
  return { to, caller: payload.caller, accessNumber: payload.accessNumber, time: payload.time, outcome: payload.outcome, text: payload.text };
}

/** 4xx a retry can cure: timeout, too early, rate limited. Any other 4xx is the request's fault. */
const RETRYABLE_4XX = new Set([408, 425, 429]);

export class SmsGateway {
  private readonly url: string;
  private readonly authorization: string | null;

  constructor(
    gatewayUrl: string,
    private readonly timeoutMs: number,
  ) {
    const url = new URL(gatewayUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('SMS_GATEWAY_URL must be an http:// or https:// URL');
    // fetch refuses URLs with credentials: send them as HTTP Basic authentication instead.
    this.authorization = url.username || url.password ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}` : null;
    url.username = '';
    url.password = '';
    this.url = url.toString();
  }

  /** Resolves when the gateway answered 2xx; rejects with the status and the start of its body. */
  async send(request: SmsRequest): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', accept: 'application/json, text/plain, */*' };
    if (this.authorization) headers.authorization = this.authorization;
    let response: Response;
    let body: string;
    try {
      // One signal for the request and the body: a gateway that sends headers then stalls is cut too.
      const signal = AbortSignal.timeout(this.timeoutMs);
      response = await fetch(this.url, { method: 'POST', headers, body: JSON.stringify(request), signal, redirect: 'error' });
      body = await response.text();
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError') throw new Error(`SMS gateway: no answer within ${this.timeoutMs} ms`, { cause: err });
      throw new Error(`SMS gateway: ${e.cause?.code ?? e.cause?.message ?? e.message}`, { cause: err });
    }
    if (response.ok) return;
    const message = `SMS gateway: HTTP ${response.status}${body ? `: ${body.replace(/\s+/g, ' ').slice(0, 200)}` : ''}`;
    if (response.status >= 400 && response.status < 500 && !RETRYABLE_4XX.has(response.status)) throw new PermanentError(message);
    throw new Error(message);
  }
}

export interface MailMessage {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

export function missedCallMail(to: string, payload: MissedCallPayload): MailMessage {
  return { to, subject: `未接来电：${payload.caller || '未知号码'} ${payload.time}`, text: `${payload.text}\n` };
}

export class SmtpMailer {
  private readonly transport: Mail;

  constructor(
    smtpUrl: string,
    private readonly from: string,
    private readonly timeoutMs: number,
  ) {
    this.transport = nodemailer.createTransport({
      url: smtpUrl,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      socketCloseTimeout: 1000,
    });
  }

  async send(message: MailMessage): Promise<void> {
    try {
      await this.transport.sendMail({
        from: this.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        textEncoding: 'base64',
        // The whole session, whatever phase it stalls in.
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { code?: string; responseCode?: number; cause?: Error };
      if (e.code === 'EABORT') throw new Error(`SMTP: no answer within ${this.timeoutMs} ms`, { cause: err });
      const message = `SMTP: ${e.code ? `${e.code} ` : ''}${e.message}`.replace(/\s+/g, ' ').slice(0, 500);
      // 5xx to the recipient (no such mailbox…) will not change; 4xx and connection errors may.
      if (typeof e.responseCode === 'number' && e.responseCode >= 500 && e.code === 'EENVELOPE') throw new PermanentError(message, { cause: err });
      throw new Error(message, { cause: err });
    }
  }

  close(): void {
    this.transport.close();
  }
}
