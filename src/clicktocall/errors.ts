/**
 * The click-to-call API's error codes, one registry (as fastify's FST_ERR_*): a code never
 * changes meaning, so web pages, logs and the refusal metric can rely on it. Every refusal the API
 * sends is one of these, as `{ "error": { "code", "message", "reason"? } }`; never a stack trace.
 * `metric` is the `reason` label of hotline_click_to_call_requests_total.
 */
export const CTC_ERRORS = {
  CTC_ERR_VALIDATION: { status: 400, metric: 'invalid_request', message: '请求格式不正确 (the request does not match the API schema)' },
  CTC_ERR_INVALID_NUMBER: { status: 400, metric: 'invalid_number', message: '请输入正确的手机或固定电话号码 (not a phone number)' },
  CTC_ERR_NUMBER_NOT_CALLABLE: { status: 400, metric: 'number_not_callable', message: '该号码不能回拨 (premium, service, short or foreign numbers are not called)' },
  CTC_ERR_UNKNOWN_WIDGET: { status: 403, metric: 'unknown_widget', message: '未知的挂件 (no widget has this key)' },
  CTC_ERR_WIDGET_DISABLED: { status: 403, metric: 'widget_disabled', message: '该挂件已停用 (this widget is disabled)' },
  CTC_ERR_ORIGIN_NOT_ALLOWED: { status: 403, metric: 'origin_not_allowed', message: '该网站未获授权 (this web site may not use the widget)' },
  CTC_ERR_NUMBER_BLOCKED: { status: 403, metric: 'number_blocked', message: '该号码无法接通 (the number is blocked by the company)' },
  CTC_ERR_UNAVAILABLE: { status: 403, metric: 'tenant_unavailable', message: '该企业暂时无法接听 (the company cannot take calls now)' },
  CTC_ERR_NOT_FOUND: { status: 404, metric: 'not_found', message: '没有这个请求 (no such request for this widget)' },
  CTC_ERR_RATE_LIMITED: { status: 429, metric: 'rate_limited', message: '请求过于频繁，请稍后再试 (too many requests; try again later)' },
  CTC_ERR_FREESWITCH_UNAVAILABLE: { status: 503, metric: 'freeswitch_unavailable', message: '系统暂时无法外呼，请稍后再试 (the switch cannot place calls now)' },
  CTC_ERR_DATABASE: { status: 503, metric: 'database_unavailable', message: '系统繁忙，请稍后再试 (the database did not answer)' },
  CTC_ERR_INTERNAL: { status: 500, metric: 'internal_error', message: '系统错误 (internal error)' },
} as const;

export type CtcErrorCode = keyof typeof CTC_ERRORS;

/**
 * What a request named that does not exist (hotline_click_to_call_not_found_total{what}): a
 * widget key no widget has, a request id that is not one of the widget's, a widget whose tenant's
 * access number is not in service, a path that is no route. A fixed set: never a key or a number.
 */
export const NOT_FOUND_WHAT = ['widget', 'request', 'tenant', 'route'] as const;
export type NotFoundWhat = (typeof NOT_FOUND_WHAT)[number];

/** The thing a refusal says does not exist, or null for every other refusal. */
export function notFoundWhat(e: Pick<ClickToCallError, 'code' | 'reason'>): NotFoundWhat | null {
  switch (e.code) {
    case 'CTC_ERR_UNKNOWN_WIDGET':
      return 'widget';
    case 'CTC_ERR_NOT_FOUND':
      return e.reason === 'route' || e.reason === 'widget' ? e.reason : 'request';
    case 'CTC_ERR_UNAVAILABLE':
      return e.reason === 'unknown_number' ? 'tenant' : null;
    default:
      return null;
  }
}

/** Every `reason` label value of the refusal metric, known in advance (created at 0). */
export const REFUSAL_REASONS = [...new Set(Object.values(CTC_ERRORS).map((e) => e.metric))];

export class ClickToCallError extends Error {
  readonly status: number;
  constructor(
    readonly code: CtcErrorCode,
    /** A short machine-readable detail (e.g. which limit, why the number is refused). */
    readonly reason?: string,
    /** Seconds until a rate-limited request may be tried again (Retry-After). */
    readonly retryAfterS?: number,
  ) {
    super(CTC_ERRORS[code].message);
    this.name = 'ClickToCallError';
    this.status = CTC_ERRORS[code].status;
  }

  body(): { error: { code: CtcErrorCode; message: string; reason?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.reason ? { reason: this.reason } : {}) } };
  }
}
