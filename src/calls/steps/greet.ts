/** Step: the greeting — the welcome prompt in business hours, the after-hours prompt outside. */
import { inBusinessHours } from '../../domain/routing';
import type { CallContext } from '../context';

export async function greet(ctx: CallContext): Promise<void> {
  const tenant = ctx.tenant!;
  const hours = inBusinessHours(ctx.snapshot, tenant, ctx.deps.clock());
  ctx.log.debug({ inHours: hours.matches, reason: hours.reason }, 'greeting');
  await ctx.play(hours.matches ? ctx.playable(tenant.welcomePromptId, 'welcome') : ctx.playable(tenant.afterHoursPromptId, 'after_hours'));
}
