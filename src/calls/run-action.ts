/**
 * Carries out what the call does (plan.ts CallAction): the one place an action becomes steps.
 * Steps return the next action (an IVR option, nobody answering → voicemail …) until the call is
 * over. Prompts a caller may type over carry the greeting themselves (PIN, menu, switchboard);
 * before anything else the pending greeting plays on its own. In front of a hunt it is written
 * and not waited for (Call.startGreeting): the caller-memory lookup is asked as it starts, and
 * the first bridge is written as soon as the hunt knows whom to ring, to start in FreeSWITCH the
 * moment the greeting ends. Whole-call recording starts before whatever connects the caller,
 * written in the same burst as its first application.
 */
import type { Call } from './call';
import type { ActionKind, CallAction } from './plan';
import { askCallerMemory, huntGroup } from './steps/hunt';
import { runMenu } from './steps/ivr';
import { operator, ringExtension, switchboard } from './steps/switchboard';
import { leaveVoicemail } from './steps/voicemail';

/** Actions whose first prompt the caller may type over: they play the greeting as part of it. */
const TYPED_OVER: ReadonlySet<ActionKind> = new Set(['menu', 'switchboard']);
/** Actions that end the call without connecting anyone: nothing to record. */
const NOT_RECORDED: ReadonlySet<ActionKind> = new Set(['announce', 'reject', 'goodbye', 'unavailable']);

export async function runAction(call: Call, first: CallAction): Promise<void> {
  let action: CallAction | null = first;
  while (action && !call.channel.hungUp) {
    if (action.kind === 'hunt') {
      // Asked now, answered while the greeting plays: not one more round trip after it.
      void askCallerMemory(call);
      call.startGreeting();
    } else if (!TYPED_OVER.has(action.kind)) {
      await call.playGreeting();
    }
    // Hung up during a greeting that was waited for (its completion still comes): nothing more to do.
    if (call.channel.hungUp) break;
    const recording = NOT_RECORDED.has(action.kind) ? Promise.resolve() : call.startRecording();
    recording.catch(() => undefined);
    action = await perform(call, action);
    await recording;
    // A greeting a hunt did not wait for (no phone to ring) still ends, or fails, here.
    await call.greetingEnded();
  }
}

async function perform(call: Call, action: CallAction): Promise<CallAction | null> {
  switch (action.kind) {
    case 'hunt':
      return huntGroup(call, action.groupId);
    case 'menu':
      return runMenu(call, action.menuId);
    case 'switchboard':
      return switchboard(call);
    case 'extension':
      return ringExtension(call, action.extensionId);
    case 'voicemail':
      return leaveVoicemail(call, action.extensionId);
    case 'operator':
      return operator(call);
    case 'announce':
      await call.announceAndHangup(action.prompt, 'NORMAL_CLEARING', 'announced');
      return null;
    case 'reject':
      call.facts.outcome = 'blocked';
      await call.channel.hangup('CALL_REJECTED');
      return null;
    case 'goodbye':
      await call.announceAndHangup('goodbye', 'NORMAL_CLEARING', 'announced');
      return null;
    case 'unavailable':
      call.log.warn({ tenant_id: call.tenant.id, reason: action.reason }, 'no way to serve this call');
      call.facts.failureReason = `no way to serve this call: ${action.reason}`.slice(0, 255);
      await call.announceAndHangup('service_unavailable', 'NORMAL_TEMPORARY_FAILURE', 'failed');
      return null;
    default: {
      const _never: never = action;
      return _never;
    }
  }
}
