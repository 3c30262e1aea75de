/**
 * Step: admission against the tenant's call and spend caps and prepaid balance. The check is
 * atomic in the database (see call-state.ts); when the database does not answer in time the
 * configured policy decides (ADMISSION_ON_DB_ERROR), and the caps job reconciles from CDRs.
 */
import type { Call } from '../call';
import { admitCall, withTimeout } from '../call-state';
import { refuse } from './refuse';

/** True when the call may go on; a refused caller has heard capped.wav (or nothing) and is gone. */
export async function admit(call: Call): Promise<boolean> {
  const { settings, metrics, knex, clock } = call.deps;
  let result;
  try {
    result = await metrics.timeDb('admission', () => withTimeout('admission', settings.admission.queryTimeoutMs, admitCall(knex, call.tenant, clock())));
  } catch (err) {
    const admitted = settings.admission.onDatabaseError === 'admit';
    call.log.warn({ err: (err as Error).message, admitted }, 'admission check failed; applying ADMISSION_ON_DB_ERROR');
    if (admitted) {
      call.facts.admitted = true;
      return true;
    }
    await refuse(call, 'capped', null);
    return false;
  }
  if (result.admitted) {
    call.facts.counted = result.counted;
    call.facts.admitted = true;
    return true;
  }
  call.log.info({ reason: result.reason }, 'call refused by caps or balance');
  await refuse(call, 'capped', null);
  return false;
}
