/**
 * A TCP relay on a loopback port to a database server, for tests of a database that goes away:
 * closed, its port refuses connections (the server is down); `hung`, it accepts them and says
 * nothing (a hung or SIGSTOPped server: the kernel completes the handshake, no greeting comes).
 */
import net from 'node:net';
import path from 'node:path';
import { loadSettings, type Settings } from '../../src/config';

export class DbRelay {
  /** New connections are accepted and left silent. */
  hung = false;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  constructor(readonly port: number, private readonly to: { host: string; port: number }) {}

  /** A relay on a free port to the server of `url` (mysql://…), and `url` pointed at the relay. */
  static async to(url: string): Promise<{ relay: DbRelay; url: string }> {
    const upstream = new URL(url);
    const relay = new DbRelay(await freePort(), { host: upstream.hostname, port: Number(upstream.port || 3306) });
    const through = new URL(url);
    through.hostname = '127.0.0.1';
    through.port = String(relay.port);
    return { relay, url: through.toString() };
  }

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      this.track(client);
      if (this.hung) return;
      const upstream = this.track(net.connect(this.to));
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Ends every connection through the relay (the server went away under them); the port stays as it is. */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.dropConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private track(s: net.Socket): net.Socket {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    return s;
  }
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A daemon's settings for these tests: the database at `url`, everything else in `dir`, polls every 50 ms, no cron. */
export function relayDaemonSettings(url: string, dir: string, extra: { configCache?: { startDatabaseWaitMs?: number }; calls?: { warmUpCalls?: number; warmUpMaxS?: number } } = {}): Settings {
  return loadSettings({
    env: {},
    overrides: {
      database: { url, seedDemo: 'always' },
      esl: { listenPort: 0 },
      metrics: { port: 0 },
      cdr: { spoolDir: path.join(dir, 'spool'), flushIntervalMs: 20, retryIntervalMs: 100 },
      configCache: { pollIntervalMs: 50, ...extra.configCache },
      cron: { enabled: false },
      calls: { warmUpCalls: 0, ...extra.calls },
      reports: { dir: path.join(dir, 'reports') },
      tts: { cacheDir: path.join(dir, 'tts') },
      prompts: { systemDir: '/sounds/hotline' },
      log: { level: 'silent' },
    },
  });
}
