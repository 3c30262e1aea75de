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

/** Columns left to their default when null: not rated (rating is its own step), not failed. */
const DEFAULT_WHEN_NULL: ReadonlySet<string> = new Set(['cost', 'failure_reason']);

/**
 * The record as its row: text cut to the column's width, `admitted` as 0/1, and the columns a
 * record does not set (undefined; cost and failure_reason when null) left out, so they keep their
 * default (older spool lines and sessions that do not say). Built key by key in the record's
 * order, never with `delete`: a deleted property turns the object into a dictionary, which
 * JSON.stringify (the spool line, every call) walks far more slowly.
 */
export function fitColumns(record: CdrRecord): CdrRecord {
  const source = record as unknown as Readonly<Record<string, unknown>>;
  const widths = WIDTHS as Readonly<Record<string, number | undefined>>;
  const out: Record<string, unknown> = {};
  for (const column of Object.keys(source)) {
    const value = source[column];
    if (value === undefined || (value === null && DEFAULT_WHEN_NULL.has(column))) continue;
    if (typeof value === 'string') {
      const width = widths[column];
      out[column] = width !== undefined && value.length > width ? value.slice(0, width) : value;
    } else if (column === 'admitted' && typeof value === 'boolean') {
      out[column] = value ? 1 : 0;
    } else {
      out[column] = value;
    }
  }
  return out as unknown as CdrRecord;
}
