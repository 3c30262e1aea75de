/**
 * A worker process of a daemon run with CLUSTER_WORKERS > 1: the whole daemon (src/daemon.ts) on
 * its own spool folder CDR_SPOOL_DIR/worker-<slot>, listening on the shared ESL port (node:cluster
 * hands it connections from the primary's listening socket, or with CLUSTER_SCHEDULING=os it
 * accepts from that socket itself), without an HTTP server of its own:
 * the primary asks it for its metrics and health over IPC.
 *
 * It starts when the primary has told it its slot; it stops as on SIGTERM when the primary says
 * "drain" (or on its own SIGTERM/SIGINT, which a process manager may send the whole group). While
 * it still starts (migrations, the warm-up: before its outbound socket opens), a second signal of
 * its own, or the primary's "quit" (the primary's second signal), ends it at once by that signal,
 * as a single daemon does.
 */
import type { Logger } from 'pino';
import type { Settings } from '../config';
import { releaseLeasesOf } from '../cron/scheduler';
import { Daemon } from '../daemon';
import { endBySignal, exitOnStartFailure } from '../exit-codes';
import type { MetricJson } from './aggregate';
import { parseToWorker, type StopSignal, type ToPrimary, type ToWorker } from './protocol';
import { workerSpoolDir } from './spool-layout';

export function runWorker(settings: Settings, rootLog: Logger): void {
  let daemon: Daemon | null = null;
  /** The daemon that answers the primary's metrics and health requests: kept while it drains, until the process exits. */
  let answering: Daemon | null = null;
  let slot = 0;
  let leader = false;
  let stopping = false;
  /** SIGTERM/SIGINT this process received itself (not the primary's drain). */
  let signals = 0;
  /** The outbound socket has opened: calls may be up, so no signal or quit ends this worker at once. */
  let listening = false;
  let log = rootLog;

  const send = (m: ToPrimary): void => {
    if (process.connected) process.send?.(m);
  };

  /** Aborted by a stop that comes while the daemon starts: its warm-up ends at once. */
  const starting = new AbortController();

  const start = async (n: number, warmUpTag: string | null): Promise<void> => {
    slot = n;
    log = rootLog.child({ worker: slot });
    const mine: Settings = { ...settings, cdr: { ...settings.cdr, spoolDir: workerSpoolDir(settings.cdr.spoolDir, slot) } };
    let d: Daemon;
    try {
      d = await Daemon.start(mine, log, { worker: { slot, isLeader: () => leader, warmUpTag: warmUpTag ?? undefined }, starting: starting.signal, onListening: () => (listening = true) });
    } catch (err) {
      exitOnStartFailure(err, log);
    }
    daemon = d;
    answering = d;
    if (stopping) {
      await stop('drain');
      return;
    }
    if (leader) d.becameLeader();
    send({ type: 'hotline:ready', eslPort: d.eslPort, cronHolder: d.cron?.scheduler.holderId ?? null });
  };

  const stop = async (reason: string): Promise<void> => {
    const first = !stopping;
    stopping = true;
    if (!daemon) {
      // Not started (or still starting: start() stops it once it is up).
      starting.abort();
      if (first && slot === 0) process.exit(0);
      return;
    }
    const d = daemon;
    daemon = null;
    log.info({ reason }, 'worker stopping');
    try {
      await d.stop();
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };

  /**
   * Ends the process by `signal` at once unless its outbound socket has opened (its start not
   * finished or cut short, or its stop under way with no listener ever opened: no call to lose;
   * the CDR spool is on disk). False when it goes on.
   */
  const endIfNotListening = (signal: StopSignal, why: string): boolean => {
    if (listening) return false;
    endBySignal(signal, log, why);
    return true;
  };

  const onSignal = (signal: StopSignal): void => {
    signals++;
    if (signals > 1) {
      if (endIfNotListening(signal, 'second signal during start-up: the worker ends at once')) return;
      log.warn({ signal }, 'second signal: the outbound socket is open, calls may be up; stopping as for the first');
    }
    void stop(signal);
  };

  const handle = async (m: ToWorker): Promise<void> => {
    switch (m.type) {
      case 'hotline:start':
        if (slot === 0) await start(m.slot, m.warmUpTag);
        return;
      case 'hotline:leader':
        if (!leader) {
          leader = true;
          log.info('this worker leads: cluster cron jobs and the configuration cache file');
          daemon?.becameLeader();
        }
        return;
      case 'hotline:metrics?': {
        // A draining worker still answers: its calls go on, and its counters must reach the primary (which keeps them once it exits).
        const metrics = answering ? ((await answering.metrics.registry.getMetricsAsJSON()) as unknown as MetricJson[]) : [];
        send({ type: 'hotline:metrics', id: m.id, metrics });
        return;
      }
      case 'hotline:ping':
        send({ type: 'hotline:pong' });
        return;
      case 'hotline:health?':
        send({ type: 'hotline:health', id: m.id, health: answering?.health() ?? { ok: false, status: 'starting', detail: {} } });
        return;
      case 'hotline:drain':
        await stop('drain');
        return;
      case 'hotline:quit':
        if (endIfNotListening(m.signal, 'the primary had a second signal during start-up: the worker ends at once')) return;
        // Its socket opened before the drain came (its ready message may have crossed the quit):
        // it may have calls, so it drains them, and the primary must not kill it.
        log.info('quit ignored: this worker\'s outbound socket opened; it drains its calls');
        send({ type: 'hotline:quit-ignored' });
        return;
      case 'hotline:release-leases': {
        // Only a worker that is up and not draining (its pool stays open). No answer otherwise, or
        // when the database is away: the primary asks the next serving worker at its next retry.
        const d = daemon;
        if (!d) return;
        let released: number;
        try {
          released = await releaseLeasesOf(d.knex, m.holders);
        } catch (err) {
          log.warn({ err, holders: m.holders }, 'could not hand back the cron leases of a dead worker (the primary asks again)');
          return;
        }
        send({ type: 'hotline:leases-released', holders: m.holders, released });
        return;
      }
      default: {
        const never: never = m;
        throw new Error(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  };

  process.on('message', (raw: unknown) => {
    const m = parseToWorker(raw);
    if (m) void handle(m).catch((err: unknown) => log.error({ err }, 'worker message failed'));
  });
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  send({ type: 'hotline:hello' });
}
