/** One call detail record, exactly the `cdrs` columns of SCHEMA.md. */
import type { Outcome } from '../metrics';

export interface CdrRecord {
  call_uuid: string;
  tenant_id: number | null;
  access_number: string;
  caller: string;
  caller_region: string | null;
  started_at: string;
  answered_at: string | null;
  ended_at: string;
  duration_s: number;
  billsec: number;
  outcome: Outcome;
  hangup_cause: string | null;
  answered_by: string | null;
  group_id: number | null;
  ivr_path: string | null;
  cost: string | null;
  recording_path: string | null;
  node: string;
  /** How the call was rated (rateCdr): local | long_distance | mobile | international. */
  call_type?: string | null;
  /** True when admission counted the call in tenant_usage.calls (the caps job recounts by it). */
  admitted?: boolean | null;
  /** Click-to-call (src/clicktocall/cdr.ts): 'click_to_call'; undefined = the column default 'dialled'. */
  origin?: 'dialled' | 'click_to_call';
  widget_id?: number | null;
  /** Seconds the visitor's phone rang. */
  visitor_ring_s?: number | null;
  /** The outgoing visitor leg's part of cost (DECIMAL text). */
  visitor_cost?: string | null;
  /** Why the call failed inside the daemon (outcome failed): the CDR could not be built, the call flow broke. */
  failure_reason?: string | null;
}

/** Column widths the migrations declare; text from the network is cut to fit, never rejected. */
const WIDTHS: Partial<Record<keyof CdrRecord, number>> = {
  call_uuid: 64, access_number: 32, caller: 64, caller_region: 64, hangup_cause: 64,
  answered_by: 64, ivr_path: 255, recording_path: 1024, node: 64, call_type: 16, origin: 16, failure_reason: 255,
};

export function fitColumns(record: CdrRecord): CdrRecord {
  const out = { ...record } as Record<string, unknown>;
  for (const [column, width] of Object.entries(WIDTHS)) {
    const value = out[column];
    if (typeof value === 'string' && value.length > width) out[column] = value.slice(0, width);
  }
  // Not rated (rating is its own step): leave cost to the column default rather than write NULL.
  if (out.cost === null) delete out.cost;
  // Older spool lines and sessions that do not say: leave the columns to their default (NULL).
  if (out.call_type === undefined) delete out.call_type;
  for (const column of ['origin', 'widget_id', 'visitor_ring_s', 'visitor_cost']) if (out[column] === undefined) delete out[column];
  if (out.failure_reason === undefined || out.failure_reason === null) delete out.failure_reason;
  if (out.admitted === undefined) delete out.admitted;
  else if (typeof out.admitted === 'boolean') out.admitted = out.admitted ? 1 : 0;
  return out as unknown as CdrRecord;
}
