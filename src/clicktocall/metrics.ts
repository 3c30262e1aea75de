/**
 * Click-to-call metrics, on the daemon's registry (created whether or not this daemon runs the
 * API: sessions of visitor legs report too). Label values come from fixed sets; never a number,
 * a widget key or a UUID.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { NOT_FOUND_WHAT, REFUSAL_REASONS } from './errors';
import { VISITOR_RESULTS } from './requests';

export const REQUEST_RESULTS = ['accepted', ...REFUSAL_REASONS] as const;

export class ClickToCallMetrics {
  readonly requests: Counter<'result'>;
  readonly notFound: Counter<'what'>;
  readonly visitorLegs: Counter<'result'>;
  readonly visitorAnswerSeconds: Histogram;
  readonly agentAnswerSeconds: Histogram;
  readonly originatorConnected: Gauge;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'hotline_click_to_call_requests_total',
      help: 'Click-to-call API requests (POST /v1/click-to-call) by result: accepted, or the refusal reason (invalid_number, number_not_callable, unknown_widget, widget_disabled, origin_not_allowed, number_blocked, tenant_unavailable, rate_limited, freeswitch_unavailable, …).',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.notFound = new Counter({
      name: 'hotline_click_to_call_not_found_total',
      help: 'Click-to-call API requests naming something that does not exist, by what: widget (no widget has the key), request (no such request for the widget), tenant (the widget\'s access number is not in service), route (no such path). Scanners and stale snippets show here.',
      labelNames: ['what'] as const,
      registers: [registry],
    });
    this.visitorLegs = new Counter({
      name: 'hotline_click_to_call_visitor_legs_total',
      help: 'Visitor legs originated, by result: answered, busy, no_answer, unreachable, failed.',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.visitorAnswerSeconds = new Histogram({
      name: 'hotline_click_to_call_visitor_answer_seconds',
      help: 'From the click (request accepted) to the visitor answering.',
      buckets: [1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60],
      registers: [registry],
    });
    this.agentAnswerSeconds = new Histogram({
      name: 'hotline_click_to_call_agent_answer_seconds',
      help: 'From the click (request accepted) to an agent of the tenant answering.',
      buckets: [2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300],
      registers: [registry],
    });
    this.originatorConnected = new Gauge({
      name: 'hotline_click_to_call_originator_connected',
      help: '1 when this daemon\'s inbound event socket for click-to-call originates is connected and authenticated, 0 when not (API off: 0).',
      registers: [registry],
    });
    // Known series at 0 from the start: increase() then sees the first refusal after a restart.
    for (const result of REQUEST_RESULTS) this.requests.inc({ result }, 0);
    for (const result of VISITOR_RESULTS) this.visitorLegs.inc({ result }, 0);
    for (const what of NOT_FOUND_WHAT) this.notFound.inc({ what }, 0);
  }
}
