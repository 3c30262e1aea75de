/**
 * The texts of the placeholder system prompts: the one list `npm run prompts` (and through it
 * freeswitch/sounds/generate.sh) renders. A carrier replaces the rendered files with recorded
 * announcements of the same names. Chinese first (read in Mandarin by espeak-ng's `cmn` voice),
 * then the English sentence (the same voice reads Latin text as English).
 *
 * Typed by SystemPromptName: adding a name to SYSTEM_PROMPTS without a text here fails to compile.
 */
import type { SystemPromptName } from './names';

export const SYSTEM_PROMPT_TEXTS: Readonly<Record<SystemPromptName, string>> = Object.freeze({
  not_in_service: '您拨打的号码未开通服务，请核对后再拨。 The number you dialed is not in service. Please check the number and call again.',
  service_unavailable: '系统暂时无法接通，请稍后再拨。 We are sorry, the service is temporarily unavailable. Please call again later.',
  nobody_answered: '您拨打的电话暂时无人接听，请稍后再拨。 Nobody is available to answer your call. Please call again later.',
  all_busy: '坐席全忙，请稍后再拨。 All lines are busy. Please call again later.',
  blocked: '对不起，您的呼叫无法接通。 Sorry, your call cannot be connected.',
  capped: '对不起，该号码暂时无法接通。 Sorry, this number cannot take calls at the moment.',
  enter_pin: '请输入密码，以井号键结束。 Please enter your PIN, followed by the hash key.',
  wrong_pin: '密码错误，请重新输入。 The PIN is incorrect. Please try again.',
  pin_failed: '密码错误次数过多，再见。 Too many incorrect attempts. Goodbye.',
  welcome: '您好，欢迎致电，请稍候。 Hello, thank you for calling. Please hold.',
  after_hours: '您好，现在是非工作时间，请在工作时间再拨。 Our office is closed now. Please call again during business hours.',
  leave_message: '请在提示音后留言，按井号键结束。 Please leave a message after the tone, and press the hash key when you are done.',
  suspended: '对不起，该号码已暂停服务。 Sorry, this number has been suspended.',
  ringback: '正在为您接通，请稍候。 Connecting your call, please wait.',
  invalid_entry: '输入有误，请重新输入。 Invalid entry. Please try again.',
  enter_extension: '请拨分机号，以井号键结束，查号请拨零。 Please dial the extension number followed by the hash key, or dial zero for the operator.',
  goodbye: '感谢您的来电，再见。 Thank you for calling. Goodbye.',
  choose_option: '请按键选择。 Please choose an option on your keypad.',
});
