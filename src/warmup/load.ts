/**
 * Ways of offering calls to a controller, and what came of them:
 *  - closed loop: `concurrency` calls in flight, a new one as soon as one ends (throughput);
 *  - open loop: calls started at a fixed rate whatever happens to them (latency under a load
 *    that does not slow down when the controller does, as real callers do not);
 *  - burst: every call's connect at once (a FreeSWITCH restart, several nodes at once);
 * counting setup latency (connect → first `bridge`), failures, the generator's own CPU, and
 * what each call cost on the wire.
 */
import { FsCall, type CallCounters, type CallPlan, type CallResult } from './freeswitch-call';
import type { Templates } from './templates';

export type LoadSpec =
  | { mode: 'closed'; calls: number; concurrency: number }
  | { mode: 'open'; calls: number; rate: number }
  | { mode: 'burst'; calls: number };

export interface LoadResult {
  mode: LoadSpec['mode'];
  calls: number;
  ok: number;
  failed: number;
  /** Failure reasons and how many calls had each. */
  errors: Record<string, number>;
  /** Calls whose `connect` arrived (the controller's handshake began). */
  handshakes: number;
  seconds: number;
  callsPerSecond: number;
  setupMs: Percentiles;
  /** Every completed call's setup latency (ms), to merge runs. */
  setups: number[];
  handshakeMs: Percentiles;
  /** Where each completed call's time went (callPhases), to merge runs. */
  phases: CallPhases;
  /** User + system CPU of the generator process over the run. */
  generatorCpuMs: number;
  /** Sums over every call. */
  totals: CallCounters;
  maxInFlight: number;
}

/**
 * The completed calls' times from the generator's connect, in ms, one entry a call in the order of
 * `LoadResult.setups`: `connect` received (handshake), the first command after it (the controller
 * has read the channel data and acted: firstCommand), the socket closed (life). With the setup,
 * they split a call's time into the controller's accept, its plan, the rest of the setup and what
 * follows the bridge (phaseSplit).
 */
export interface CallPhases {
  handshake: number[];
  firstCommand: number[];
  life: number[];
}

/** The medians of where the completed calls' time went; the last is each call's life minus its setup. */
export interface PhaseSplit {
  handshakeP50: number;
  firstCommandP50: number;
  setupP50: number;
  lifeP50: number;
  afterBridgeP50: number;
}

export function phaseSplit(setups: readonly number[], phases: CallPhases): PhaseSplit {
  return {
    handshakeP50: percentiles(phases.handshake).p50,
    firstCommandP50: percentiles(phases.firstCommand).p50,
    setupP50: percentiles([...setups]).p50,
    lifeP50: percentiles(phases.life).p50,
    afterBridgeP50: percentiles(phases.life.map((life, i) => life - (setups[i] ?? NaN))).p50,
  };
}

/** The calls of several runs (a controller's rounds) as one list of each phase, run after run. */
export function mergePhases(parts: readonly CallPhases[]): CallPhases {
  return { handshake: parts.flatMap((p) => p.handshake), firstCommand: parts.flatMap((p) => p.firstCommand), life: parts.flatMap((p) => p.life) };
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** A time in ms kept to the microsecond. */
function micro(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function percentiles(values: number[]): Percentiles {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const at = (q: number): number => (v.length === 0 ? NaN : v[Math.min(v.length - 1, Math.floor(v.length * q))]);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: v.length ? v[v.length - 1] : NaN, mean: v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN };
}

export interface Progress {
  started: number;
  inFlight: number;
  handshakes: number;
}

export class LoadDriver {
  private inFlight = 0;
  private maxInFlight = 0;
  private started = 0;
  private handshakes = 0;
  private readonly results: CallResult[] = [];
  /** Set by stop(): no new call starts; those in flight go on (abort() ends them). */
  private stopped = false;
  /** The calls in flight, for abort(). */
  private readonly live = new Set<FsCall>();

  constructor(
    private readonly port: number,
    private readonly templates: Templates,
    private readonly plan: CallPlan,
    private readonly host = '127.0.0.1',
  ) {}

  /** Starts no more calls (the daemon's warm-up out of time); run() resolves when those in flight end. */
  stop(): void {
    this.stopped = true;
  }

  /** stop(), and every call in flight ends at once, failed for `reason`. */
  abort(reason: string): void {
    this.stop();
    for (const call of this.live) call.abort(reason);
  }

  progress(): Progress {
    return { started: this.started, inFlight: this.inFlight, handshakes: this.handshakes };
  }

  async run(spec: LoadSpec): Promise<LoadResult> {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    if (spec.mode === 'closed') await this.closed(spec.calls, spec.concurrency);
    else if (spec.mode === 'open') await this.open(spec.calls, spec.rate);
    else await this.burst(spec.calls);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const errors: Record<string, number> = {};
    const totals: CallCounters = { commands: 0, batches: 0, bytesIn: 0, bytesOut: 0, events: 0, eventBytes: 0, eventsSubscribed: 0, eventBytesSubscribed: 0, lingerExpired: 0 };
    let ok = 0;
    for (const r of this.results) {
      if (r.ok) ok++;
      else errors[r.error ?? 'unknown'] = (errors[r.error ?? 'unknown'] ?? 0) + 1;
      for (const k of Object.keys(totals) as Array<keyof CallCounters>) totals[k] += r.counters[k];
    }
    const completed = this.results.filter((r) => r.ok);
    return {
      mode: spec.mode,
      calls: this.results.length,
      ok,
      failed: this.results.length - ok,
      errors,
      handshakes: this.handshakes,
      seconds,
      callsPerSecond: this.results.length / seconds,
      setupMs: percentiles(completed.map((r) => r.setupMs)),
      setups: completed.map((r) => micro(r.setupMs)),
      handshakeMs: percentiles(this.results.map((r) => r.handshakeMs)),
      phases: { handshake: completed.map((r) => micro(r.handshakeMs)), firstCommand: completed.map((r) => micro(r.firstCommandMs)), life: completed.map((r) => micro(r.lifeMs)) },
      generatorCpuMs: (cpu.user + cpu.system) / 1000,
      totals,
      maxInFlight: this.maxInFlight,
    };
  }

  private place(): Promise<void> {
    this.started++;
    this.inFlight++;
    if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
    const call = new FsCall(this.port, this.templates, this.plan, this.host, () => this.handshakes++);
    this.live.add(call);
    return call.result.then((r) => {
      this.live.delete(call);
      this.inFlight--;
      this.results.push(r);
    });
  }

  private async closed(calls: number, concurrency: number): Promise<void> {
    const worker = async (): Promise<void> => {
      while (this.started < calls && !this.stopped) await this.place();
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, calls) }, worker));
  }

  /** Starts call i at i/rate seconds, on a 1 ms tick, whatever the controller does. */
  private async open(calls: number, rate: number): Promise<void> {
    const all: Array<Promise<void>> = [];
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
        const due = Math.min(calls, Math.floor(elapsedS * rate) + 1);
        while (this.started < due && !this.stopped) all.push(this.place());
        if (this.started >= calls || this.stopped) resolve();
        // Sleep until the next call is due (at least 1 ms: Node's timer resolution).
        else setTimeout(tick, Math.max(1, Math.floor(((this.started / rate) - elapsedS) * 1000)));
      };
      tick();
    });
    await Promise.all(all);
  }

  private async burst(calls: number): Promise<void> {
    const all: Array<Promise<void>> = [];
    for (let i = 0; i < calls; i++) all.push(this.place());
    await Promise.all(all);
  }
}
