/**
 * Serves /metrics (Prometheus text format) and /healthz.
 *
 * /healthz answers JSON with a `status` and an HTTP code a probe can tell apart without reading
 * the body (README "Health"):
 *   200 `ok`                    calls route from configuration read from a database that answers;
 *   203 `database_unreachable`  the last configuration poll failed: calls route from the
 *                               configuration loaded before, CDRs wait in the spool;
 *   203 `cached_configuration`  the database has not been reached since start-up: calls route from
 *                               the on-disk cache (CONFIG_CACHE_FILE);
 *   203 `cdr_spool_failing`     the CDR spool refuses writes (a full disk): ended calls' CDRs are
 *                               held in memory until it or the database takes them
 *                               (detail.cdrsHeldInMemory);
 *   503 (`ok: false`)           not able to route calls (starting).
 * 203 ("non-authoritative") is a 2xx on purpose: the daemon is alive and answers calls, so a
 * liveness probe must not restart it, while a NOC probe that accepts only 200 sees the difference.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type HealthStatus = 'ok' | 'database_unreachable' | 'cached_configuration' | 'cdr_spool_failing' | 'starting';

export interface Health {
  /** Calls can be routed. */
  ok: boolean;
  status: HealthStatus;
  [field: string]: unknown;
}

export function healthHttpStatus(h: Health): number {
  if (!h.ok) return 503;
  return h.status === 'ok' ? 200 : 203;
}

/** Where /metrics comes from: a prom-client Registry, or the cluster primary's aggregation. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export class MetricsServer {
  private readonly server: http.Server;

  constructor(
    private readonly source: MetricsSource,
    private readonly health: () => Health | Promise<Health>,
  ) {
    this.server = http.createServer((req, res) => {
      void this.route(req, res);
    });
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    try {
      if (req.method === 'GET' && url === '/metrics') {
        const body = await this.source.metrics();
        res.writeHead(200, { 'Content-Type': this.source.contentType });
        res.end(body);
      } else if (req.method === 'GET' && url === '/healthz') {
        const h = await this.health();
        res.writeHead(healthHttpStatus(h), { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
        res.end(JSON.stringify(h));
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found: try /metrics or /healthz\n');
      }
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`metrics failed: ${(err as Error).message}\n`);
    }
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
