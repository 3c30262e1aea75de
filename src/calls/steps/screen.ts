/** Step: screening (call_filters, withheld callers). Blocked callers end here, outcome `blocked`. */
import { screenCaller } from '../../domain/screening';
import { NO_FILTERS } from '../../snapshot/build';
import type { CallContext } from '../context';

/** True when the call may go on. */
export async function screen(ctx: CallContext): Promise<boolean> {
  const tenant = ctx.tenant!;
  const filters = ctx.snapshot.filtersByTenant.get(tenant.id) ?? NO_FILTERS;
  const result = screenCaller(tenant, filters, ctx.caller, ctx.geo!);
  if (result.verdict === 'pass') return true;
  ctx.log.info({ reason: result.reason }, 'caller blocked');
  await refuse(ctx, 'blocked', tenant.blockedPromptId);
  return false;
}

/** Blocked or capped: the tenant's announcement, or a silent CALL_REJECTED (tenants.blocked_action). */
export async function refuse(ctx: CallContext, outcome: 'blocked' | 'capped', promptId: number | null): Promise<void> {
  const tenant = ctx.tenant!;
  if (tenant.blockedAction === 'silent') {
    ctx.outcome = outcome;
    await ctx.channel.hangup('CALL_REJECTED');
    return;
  }
  await ctx.announceAndHangup(ctx.playable(promptId, outcome), 'CALL_REJECTED', outcome);
}
