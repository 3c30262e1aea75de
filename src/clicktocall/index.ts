/**
 * The click-to-call service of one daemon (API_ENABLED): the web API, the inbound event socket it
 * originates on, and the sweeper. Started after the outbound socket listens (FreeSWITCH hands the
 * answered visitor legs to it), stopped first (no new clicks while calls drain).
 */
import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { CdrWriter } from '../cdr/writer';
import type { Settings } from '../config';
import type { ConfigStore } from '../snapshot/store';
import { buildApi } from './api';
import { Dialer } from './dialer';
import type { ClickToCallMetrics } from './metrics';
import { Originator } from './originator';

export { ClickToCallMetrics } from './metrics';
export { ClickToCallCalls } from './session';

export interface ClickToCallServiceDeps {
  settings: Settings;
  knex: Knex;
  store: ConfigStore;
  cdrs: CdrWriter;
  metrics: ClickToCallMetrics;
  log: Logger;
  clock?: () => Date;
  /** The port the outbound event socket listens on (it may be 0 in the settings). */
  eslPort: number;
  /** Is a call session of this daemon serving this request's leg? (ClickToCallCalls.isServing) */
  serving?: (requestId: string) => boolean;
}

/** How often stale requests and old limit counters are swept. */
const SWEEP_MS = 30_000;

export class ClickToCallService {
  private sweeper: NodeJS.Timeout | null = null;

  private constructor(
    readonly dialer: Dialer,
    readonly originator: Originator,
    private readonly app: FastifyInstance,
    readonly port: number,
  ) {}

  static async start(deps: ClickToCallServiceDeps): Promise<ClickToCallService> {
    const { settings, log, metrics } = deps;
    const clock = deps.clock ?? (() => new Date());
    const originator = new Originator({
      host: settings.freeswitch.inboundHost,
      port: settings.freeswitch.inboundPort,
      password: settings.freeswitch.inboundPassword,
      timeoutMs: settings.esl.replyTimeoutMs,
      maxFrameBytes: settings.freeswitch.inboundMaxFrameBytes,
      log,
      onState: (up) => metrics.originatorConnected.set(up ? 1 : 0),
    });
    if (settings.freeswitch.inboundPassword === '') log.warn('API_ENABLED without FS_ESL_PASSWORD: click-to-call requests get 503 until it is set');
    else originator.start();
    const dialer = new Dialer({
      settings, knex: deps.knex, snapshot: () => deps.store.current, cdrs: deps.cdrs, metrics, log, clock, originator,
      socketAddress: socketAddressOf(settings, deps.eslPort), serving: deps.serving,
    });
    const app = await buildApi({ settings, dialer, snapshot: () => deps.store.current, metrics, log });
    await app.listen({ host: settings.api.host, port: settings.api.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : settings.api.port;
    log.info({ host: settings.api.host, port }, 'click-to-call API listening');
    const service = new ClickToCallService(dialer, originator, app, port);
    service.sweeper = setInterval(() => dialer.sweepInBackground(), SWEEP_MS);
    service.sweeper.unref();
    return service;
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.app.close();
    this.originator.stop();
    await this.dialer.stop();
  }
}

/** Where FreeSWITCH connects with the answered leg: CLICK_TO_CALL_SOCKET_ADDRESS, else our ESL listener. */
export function socketAddressOf(settings: Settings, eslPort: number): string {
  if (settings.clickToCall.socketAddress !== '') return settings.clickToCall.socketAddress;
  const host = ['0.0.0.0', '::', ''].includes(settings.esl.listenHost) ? '127.0.0.1' : settings.esl.listenHost;
  return `${host}:${eslPort}`;
}
