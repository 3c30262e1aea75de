/**
 * The click-to-call web API on its own listener (API_HOST:API_PORT), built on fastify: JSON
 * schema validation on every route, @fastify/cors for the tenants' web pages, @fastify/rate-limit
 * as a cheap per-address first line (the limits that matter are counted in the database by
 * limits.ts). Every refusal is a ClickToCallError body with a stable code (errors.ts) and is
 * counted by reason; no stack trace ever leaves the process.
 *
 *   POST /v1/click-to-call        { widget, number } → 202 { id, status: "dialing" }
 *   GET  /v1/click-to-call/:id?widget=<key>         → 200 { id, status, visitor?, outcome? }
 *   GET  /v1/widget.js?key=<key>                    → the snippet's script
 */
import fs from 'node:fs';
import path from 'node:path';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Settings } from '../config';
import type { ConfigSnapshot } from '../snapshot/types';
import { normalizeOrigin, PUBLIC_KEY } from '../snapshot/widgets';
import type { Dialer } from './dialer';
import { ClickToCallError, CTC_ERRORS, notFoundWhat } from './errors';
import { clientSubject } from './limits';
import type { ClickToCallMetrics } from './metrics';

/** web/click-to-call, from the TypeScript source or the compiled dist/src/clicktocall. */
export const WEB_DIR = [path.resolve(__dirname, '..', '..', 'web', 'click-to-call'), path.resolve(__dirname, '..', '..', '..', 'web', 'click-to-call')].find((d) => fs.existsSync(d))
  ?? path.resolve(__dirname, '..', '..', 'web', 'click-to-call');

const KEY = PUBLIC_KEY.source;
const UUID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

export interface ApiDeps {
  settings: Settings;
  dialer: Dialer;
  snapshot: () => ConfigSnapshot;
  metrics: ClickToCallMetrics;
  log: Logger;
}

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const { settings, dialer, metrics, log } = deps;
  const app = Fastify({
    loggerInstance: log.child({ component: 'click-to-call-api' }) as unknown as FastifyBaseLogger,
    // Fastify's two lines a request are off: a visitor's click is logged by the dialer when it
    // dials, and a burst of clicks would flood the log. Through the log controller: fastify 5's
    // top-level `disableRequestLogging` is deprecated and warned at every start.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024,
    trustProxy: settings.api.trustProxy === '' ? false : settings.api.trustProxy,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    connectionTimeout: 10_000,
    requestTimeout: 10_000,
  });

  await app.register(cors, {
    // A browser may read the answer only on an origin some enabled widget allows (each request
    // is checked against its own widget again in the dialer).
    origin: (origin, cb) => cb(null, origin === undefined || originKnown(deps.snapshot(), origin)),
    methods: ['GET', 'POST'],
    // The widget tells a rate-limited visitor when to try again.
    exposedHeaders: ['Retry-After'],
    maxAge: 600,
  });
  // The same client subject as the database limits count (an IPv6 client by its /64); the store
  // counts fixed windows, so its ttl is when this client's full window frees a slot. 0 = off.
  if (settings.api.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      max: settings.api.rateLimitPerMinute,
      timeWindow: 60_000,
      keyGenerator: (req) => clientSubject(req.ip),
      errorResponseBuilder: (_req, ctx) => new ClickToCallError('CTC_ERR_RATE_LIMITED', 'client_burst', Math.max(1, Math.ceil(ctx.ttl / 1000))),
    });
  }

  /** Every refusal is counted here, by reason, and what it named that does not exist. */
  const counted = (e: ClickToCallError): ClickToCallError => {
    metrics.requests.inc({ result: CTC_ERRORS[e.code].metric });
    const what = notFoundWhat(e);
    if (what) metrics.notFound.inc({ what });
    return e;
  };
  app.setErrorHandler((err: FastifyError | ClickToCallError, req, reply) => {
    const e = counted(toClickToCallError(err));
    if (e.code === 'CTC_ERR_INTERNAL') req.log.error({ err }, 'click-to-call API failure');
    if (e.retryAfterS !== undefined) void reply.header('Retry-After', String(e.retryAfterS));
    void reply.header('Cache-Control', 'no-store').code(e.status).send(e.body());
  });
  app.setNotFoundHandler((_req, reply) => {
    const e = counted(new ClickToCallError('CTC_ERR_NOT_FOUND', 'route'));
    void reply.code(e.status).send(e.body());
  });

  app.post<{ Body: { widget: string; number: string } }>('/v1/click-to-call', {
    schema: {
      body: {
        type: 'object',
        required: ['widget', 'number'],
        additionalProperties: false,
        properties: { widget: { type: 'string', pattern: KEY }, number: { type: 'string', minLength: 3, maxLength: 32 } },
      },
    },
  }, async (req, reply) => {
    const view = await dialer.click({ widgetKey: req.body.widget, number: req.body.number, origin: req.headers.origin, clientAddress: req.ip });
    return reply.code(202).header('Cache-Control', 'no-store').send(view);
  });

  app.get<{ Params: { id: string }; Querystring: { widget: string } }>('/v1/click-to-call/:id', {
    schema: {
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: UUID } } },
      querystring: { type: 'object', required: ['widget'], additionalProperties: false, properties: { widget: { type: 'string', pattern: KEY } } },
    },
  }, async (req, reply) => reply.header('Cache-Control', 'no-store').send(await dialer.status(req.params.id, req.query.widget)));

  const script = fs.readFileSync(path.join(WEB_DIR, 'widget.js'), 'utf8');
  app.get<{ Querystring: { key: string } }>('/v1/widget.js', {
    schema: { querystring: { type: 'object', required: ['key'], additionalProperties: false, properties: { key: { type: 'string', pattern: KEY } } } },
  }, async (req, reply) => {
    const widget = deps.snapshot().widgets.get(req.query.key);
    if (!widget) throw new ClickToCallError('CTC_ERR_UNKNOWN_WIDGET');
    if (!widget.enabled) throw new ClickToCallError('CTC_ERR_WIDGET_DISABLED');
    // The script finds its key and the API's address in its own <script src>.
    return reply.type('application/javascript; charset=utf-8').header('Cache-Control', 'public, max-age=300').send(script);
  });
  return app;
}

/** Anything thrown in a route → one of our codes: schema and body errors are 400, the rest 500. */
function toClickToCallError(err: FastifyError | ClickToCallError): ClickToCallError {
  if (err instanceof ClickToCallError) return err;
  const status = err.statusCode ?? 500;
  if (err.validation) return new ClickToCallError('CTC_ERR_VALIDATION', err.validation[0]?.instancePath.replace(/^\//, '') || err.validationContext || 'request');
  // Fastify's own 4xx (FST_ERR_CTP_INVALID_MEDIA_TYPE, a body that is not JSON, too large …).
  if (status >= 400 && status < 500) return new ClickToCallError('CTC_ERR_VALIDATION', err.code.toLowerCase());
  return new ClickToCallError('CTC_ERR_INTERNAL');
}

function originKnown(snapshot: ConfigSnapshot, origin: string): boolean {
  const normal = normalizeOrigin(origin);
  if (normal === null) return false;
  for (const w of snapshot.widgets.values()) {
    if (w.enabled && (w.allowedOrigins.length === 0 || w.allowedOrigins.includes(normal))) return true;
  }
  return false;
}
