/**
 * Multi-level IVR menus (语音导航). Each menu plays its prompt and collects up to `digits` keys
 * (`#` or the timeout ends them); an option maps the keys to an action. Invalid or missing input
 * replays the invalid prompt, up to max_retries. A caller can never be trapped: the number of
 * menu steps in one call is bounded (menus pointing at themselves or each other in a loop), and a
 * missing target ends the call politely. The keys pressed at each level make the CDR's ivr_path
 * (e.g. 1>3>801).
 */
import type { CallContext } from '../context';
import { huntGroup } from './hunt';
import { leaveVoicemail } from './voicemail';
import { filePrompt, operator, ringExtension, switchboard } from './switchboard';

/** Menu visits one call may make (a loop or a caller pressing "back" forever ends here). */
export const MAX_MENU_STEPS = 20;

export async function runMenu(ctx: CallContext, firstMenuId: number): Promise<void> {
  await ctx.channel.answer();
  let menuId = firstMenuId;
  let steps = 0;
  for (;;) {
    if (++steps > MAX_MENU_STEPS) {
      ctx.log.warn({ menu_id: menuId }, 'IVR step limit reached');
      await ctx.announceAndHangup('goodbye', 'NORMAL_CLEARING', 'announced');
      return;
    }
    const menu = ctx.snapshot.menus.get(menuId);
    if (!menu || menu.tenantId !== ctx.tenant!.id) {
      ctx.log.warn({ menu_id: menuId }, 'IVR menu missing');
      await ctx.announceAndHangup('service_unavailable', 'NORMAL_TEMPORARY_FAILURE', 'failed');
      return;
    }
    let option = null;
    for (let attempt = 0; attempt <= menu.maxRetries && !option; attempt++) {
      const keys = await ctx.channel.playAndGetDigits({
        min: 1,
        max: menu.digits,
        tries: 1,
        timeoutMs: menu.timeoutS * 1000,
        terminators: '#',
        file: filePrompt(ctx, 'welcome', menu.promptId),
        invalidFile: 'silence_stream://250',
        variable: 'hotline_ivr',
        regexp: `^[0-9*]{1,${menu.digits}}$`,
        digitTimeoutMs: 3000,
        promptMs: 30_000,
      });
      option = keys === '' ? null : menu.options.get(keys) ?? null;
      if (!option && attempt < menu.maxRetries) await ctx.play(ctx.playable(menu.invalidPromptId, 'invalid_entry'));
      if (option) ctx.ivrPath.push(keys);
    }
    if (!option) {
      await ctx.announceAndHangup('goodbye', 'NORMAL_CLEARING', 'announced');
      return;
    }
    switch (option.action) {
      case 'menu':
        menuId = option.targetId ?? -1;
        continue;
      case 'repeat':
        continue;
      case 'group':
        await huntGroup(ctx, option.targetId ?? -1);
        return;
      case 'extension':
        if (option.targetId === null) await switchboard(ctx);
        else await ringExtension(ctx, option.targetId);
        return;
      case 'switchboard':
        await switchboard(ctx);
        return;
      case 'voicemail':
        await leaveVoicemail(ctx, option.targetId);
        return;
      case 'operator':
        await operator(ctx);
        return;
      case 'announce':
        await ctx.announceAndHangup(ctx.playable(option.targetId, 'goodbye'), 'NORMAL_CLEARING', 'announced');
        return;
      case 'hangup':
        await ctx.announceAndHangup('goodbye', 'NORMAL_CLEARING', 'announced');
        return;
    }
  }
}

