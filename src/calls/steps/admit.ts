/**
 * Step: admission against the tenant's call and spend caps and prepaid balance. The check is
 * atomic in the database (see call-state.ts); when the database does not answer in time the
 * configured policy decides (ADMISSION_ON_DB_ERROR), and the caps job reconciles from CDRs.
 */
import { admitCall, withTimeout } from '../call-state';
import type { CallContext } from '../context';
import { refuse } from './screen';

export async function admit(ctx: CallContext): Promise<boolean> {
  const { settings, metrics, knex, clock } = ctx.deps;
  const tenant = ctx.tenant!;
  let result;
  try {
    result = await metrics.timeDb('admission', () => withTimeout('admission', settings.admission.queryTimeoutMs, admitCall(knex, tenant, clock())));
  } catch (err) {
    const admitted = settings.admission.onDatabaseError === 'admit';
    ctx.log.warn({ err: (err as Error).message, admitted }, 'admission check failed; applying ADMISSION_ON_DB_ERROR');
    if (admitted) {
      ctx.admitted = true;
      return true;
    }
    await refuse(ctx, 'capped', null);
    return false;
  }
  if (result.admitted) {
    ctx.counted = result.counted;
    ctx.admitted = true;
    return true;
  }
  ctx.log.info({ reason: result.reason }, 'call refused by caps or balance');
  await refuse(ctx, 'capped', null);
  return false;
}
