/** Blocked or capped: the tenant's announcement, or a silent CALL_REJECTED (tenants.blocked_action). */
import type { Call } from '../call';
import { tenantPrompt } from '../prompt-player';

export async function refuse(call: Call, outcome: 'blocked' | 'capped', promptId: number | null): Promise<void> {
  if (call.tenant.blockedAction === 'silent') {
    call.facts.outcome = outcome;
    await call.channel.hangup('CALL_REJECTED');
    return;
  }
  await call.announceAndHangup(tenantPrompt(promptId, outcome), 'CALL_REJECTED', outcome);
}
