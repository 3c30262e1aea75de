// Helpers for notification tests: tenants and missed-call CDRs, a real local HTTP "SMS gateway"
// and a real local SMTP listener (smtp-server), both on port 0, and a MIME reader for what
// the listener received.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Knex } from 'knex';
import { SMTPServer } from 'smtp-server';
import type { Test } from 'tap';
import type { CdrRecord } from '../../src/cdr/record';
import type { Settings } from '../../src/config';
import { createLogger } from '../../src/log';
import type { SmsRequest } from '../../src/notify/transports';
import { cdr } from '../cdr/records';

export const log = createLogger('silent');

export function tenant(missedCallNotify: string | null, extra: { id?: number; timezone?: string } = {}) {
  return { id: extra.id ?? 1, timezone: extra.timezone ?? 'Asia/Shanghai', missedCallNotify };
}

/** A call nobody answered (no_answer, rang group 10); `i` makes the UUID, caller and time distinct. */
export function missed(i: number, extra: Partial<CdrRecord> = {}): CdrRecord {
  return cdr(i, { outcome: 'no_answer', answered_at: null, answered_by: null, billsec: 0, hangup_cause: 'NO_ANSWER', ...extra });
}

export function notifySettings(over: Partial<Settings['notify']> = {}): Settings['notify'] {
  return { smsGatewayUrl: '', smtpUrl: '', from: 'hotline@test.local', maxAttempts: 3, timeoutMs: 2000, ...over };
}

export interface OutboxRow {
  id: number;
  tenant_id: number;
  call_uuid: string;
  channel: string;
  recipient: string;
  payload: string;
  status: string;
  attempts: number;
  next_attempt_at: Date | string;
  last_error: string | null;
  sent_at: Date | string | null;
}

export async function outbox(knex: Knex): Promise<OutboxRow[]> {
  const rows = (await knex('notifications').orderBy('id').select('*')) as OutboxRow[];
  return rows.map((r) => ({ ...r, id: Number(r.id), attempts: Number(r.attempts) }));
}

export interface GatewayReply {
  status?: number;
  body?: string;
  delayMs?: number;
  /** Never answer (the dispatcher must time out). */
  hang?: boolean;
}

export interface Gateway {
  url: string;
  /** Every request body received, parsed, in arrival order, with the reply it got. */
  requests: Array<{ body: SmsRequest; contentType: string | undefined; authorization: string | undefined; status: number | 'hang' }>;
}

/** A real HTTP server on 127.0.0.1:0 standing in for the SMS gateway; `reply(n)` for the n-th request (0-based). */
export async function smsGateway(t: Test, reply: (n: number, body: SmsRequest) => GatewayReply = () => ({})): Promise<Gateway> {
  const requests: Gateway['requests'] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw) as SmsRequest;
      const r = reply(requests.length, body);
      requests.push({ body, contentType: req.headers['content-type'], authorization: req.headers.authorization, status: r.hang ? 'hang' : r.status ?? 200 });
      if (r.hang) return;
      setTimeout(() => {
        res.writeHead(r.status ?? 200, { 'content-type': 'application/json' });
        res.end(r.body ?? '{"ok":true}');
      }, r.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/sms/send`, requests };
}

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  headers: Record<string, string>;
  subject: string;
  text: string;
}

/** A real SMTP listener (smtp-server) on 127.0.0.1:0, no auth, no TLS; collects what it receives. */
export async function smtpListener(t: Test, opts: { rejectRecipient?: boolean; failData?: number } = {}): Promise<{ url: string; mails: ReceivedMail[] }> {
  const mails: ReceivedMail[] = [];
  let dataCalls = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onRcptTo(_address, _session, callback) {
      if (opts.rejectRecipient) {
        const err = new Error('550 no such user') as Error & { responseCode: number };
        err.responseCode = 550;
        callback(err);
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (opts.failData !== undefined && dataCalls++ < opts.failData) {
          const err = new Error('451 try again later') as Error & { responseCode: number };
          err.responseCode = 451;
          callback(err);
          return;
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        mails.push({ from, to: session.envelope.rcptTo.map((r) => r.address), raw, ...parseMime(raw) });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.server.address() as AddressInfo;
  return { url: `smtp://127.0.0.1:${port}`, mails };
}

/** Enough MIME for a single-part text message: unfolded headers, RFC 2047 subject, base64/QP body. */
function parseMime(raw: string): { headers: Record<string, string>; subject: string; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const body = raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  let bytes: Buffer;
  if (encoding === 'base64') bytes = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  else if (encoding === 'quoted-printable') bytes = qp(body);
  else bytes = Buffer.from(body, 'utf8');
  return { headers, subject: decodeWords(headers.subject ?? ''), text: bytes.toString('utf8') };
}

function qp(text: string): Buffer {
  const unfolded = text.replace(/=\r?\n/g, '');
  const out: number[] = [];
  for (let i = 0; i < unfolded.length; i++) {
    if (unfolded[i] === '=' && /^[0-9A-F]{2}$/i.test(unfolded.slice(i + 1, i + 3))) {
      out.push(parseInt(unfolded.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(...Buffer.from(unfolded[i], 'utf8'));
    }
  }
  return Buffer.from(out);
}

/** RFC 2047 encoded words; whitespace between adjacent encoded words is dropped. */
function decodeWords(value: string): string {
  return value.replace(/\?=\s+=\?/g, '?==?').replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_m, _charset: string, enc: string, data: string) => {
    if (enc.toUpperCase() === 'B') return Buffer.from(data, 'base64').toString('utf8');
    return qp(data.replace(/_/g, ' ')).toString('utf8');
  });
}
