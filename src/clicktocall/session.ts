/**
 * The call flow's side of click-to-call: what the session does with a visitor leg, kept here so the
 * flow itself only gains a few hooks (src/calls/context.ts, call-session.ts).
 *
 *  - `legOf(data)`: the leg recognised from its CHANNEL_DATA (leg.ts), malformed markers logged;
 *  - `greetVisitor(ctx)`: the widget's answer prompt (NULL: the system ringback.wav, "正在为您接通");
 *    and because the visitor's channel is already answered, FreeSWITCH plays `transfer_ringback`
 *    rather than `ringback` while the tenant's phones ring (switch_ivr_originate.c: a caller
 *    channel with CF_ANSWERED takes transfer_ringback first), so that is set too;
 *  - `ClickToCallCalls`: the request's state as the call goes (connecting when the leg reaches the
 *    flow, connected when FreeSWITCH bridges it to an agent, ended with the CDR outcome), and the
 *    click → agent answer time. Database writes are bounded and never hold up the call.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { CdrRecord } from '../cdr/record';
import { withTimeout } from '../calls/call-state';
import type { CallContext } from '../calls/context';
import type { ConfigSnapshot } from '../snapshot/types';
import type { ClickToCallWidget } from '../snapshot/widgets';
import { recognizeClickToCall, type ClickToCallLeg } from './leg';
import type { ClickToCallMetrics } from './metrics';
import { advanceRequest } from './requests';

export function legOf(data: Readonly<Record<string, string>>, log: Logger): ClickToCallLeg | null {
  const r = recognizeClickToCall(data);
  if (r.kind === 'malformed') log.warn({ reason: r.reason }, 'click-to-call marker on a leg that is not one of ours; handled as an ordinary call');
  return r.kind === 'click_to_call' ? r.leg : null;
}

export function widgetById(snapshot: ConfigSnapshot, id: number): ClickToCallWidget | undefined {
  for (const w of snapshot.widgets.values()) if (w.id === id) return w;
  return undefined;
}

export async function greetVisitor(ctx: CallContext): Promise<void> {
  const leg = ctx.clickToCall!;
  const ringback = ctx.playable(ctx.tenant?.ringbackPromptId ?? null, 'ringback');
  if (ringback.app === 'playback') await ctx.channel.setVariables({ transfer_ringback: ringback.arg });
  await ctx.play(ctx.playable(widgetById(ctx.snapshot, leg.widgetId)?.answerPromptId ?? null, 'ringback'));
}

export class ClickToCallCalls {
  constructor(
    private readonly knex: Knex,
    private readonly metrics: ClickToCallMetrics,
    private readonly timeoutMs: number,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** The visitor leg reached the call flow on this daemon. */
  started(ctx: CallContext): void {
    const leg = ctx.clickToCall!;
    const chain = this.chainOf(ctx);
    chain.push(() => advanceRequest(this.knex, leg.requestId, 'connecting', { visitorAnsweredAt: leg.visitorAnsweredAt ?? this.clock(), visitorResult: 'answered' }));
    // CHANNEL_BRIDGE (a myevents event): an agent answered and the visitor is connected.
    let bridged = false;
    ctx.channel.conn.on(`esl::event::CHANNEL_BRIDGE::${ctx.channel.uuid}`, () => {
      if (bridged) return;
      bridged = true;
      const now = this.clock();
      this.metrics.agentAnswerSeconds.observe(Math.max(0, (now.getTime() - leg.clickedAt.getTime()) / 1000));
      chain.push(() => advanceRequest(this.knex, leg.requestId, 'connected', { connectedAt: now }));
    });
  }

  /** The call is over and its CDR made: the request ends with the CDR's outcome. */
  async finished(ctx: CallContext, cdr: CdrRecord): Promise<void> {
    const leg = ctx.clickToCall!;
    const chain = this.chainOf(ctx);
    chain.push(() => advanceRequest(this.knex, leg.requestId, 'ended', { endedAt: this.clock(), outcome: cdr.outcome, hangupCause: cdr.hangup_cause }));
    await chain.done();
    this.chains.delete(ctx);
  }

  private readonly chains = new WeakMap<CallContext, Chain>();

  private chainOf(ctx: CallContext): Chain {
    let chain = this.chains.get(ctx);
    if (!chain) {
      chain = new Chain(this.timeoutMs, (err) => ctx.log.warn({ err: (err as Error).message }, 'click-to-call request state not updated'));
      this.chains.set(ctx, chain);
    }
    return chain;
  }
}

/** Updates of one request, in order (a later state never overtakes an earlier one), each bounded. */
class Chain {
  private tail: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly timeoutMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  push(work: () => Promise<unknown>): void {
    this.tail = this.tail.then(() => withTimeout('click-to-call request update', this.timeoutMs, work())).catch(this.onError);
  }

  done(): Promise<unknown> {
    return this.tail;
  }
}
