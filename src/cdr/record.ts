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
}

/** Column widths the migrations declare; text from the network is cut to fit, never rejected. */
const WIDTHS: Partial<Record<keyof CdrRecord, number>> = {
  call_uuid: 64, access_number: 32, caller: 64, caller_region: 64, hangup_cause: 64,
  answered_by: 64, ivr_path: 255, recording_path: 1024, node: 64,
};

export function fitColumns(record: CdrRecord): CdrRecord {
  const out = { ...record } as Record<string, unknown>;
  for (const [column, width] of Object.entries(WIDTHS)) {
    const value = out[column];
    if (typeof value === 'string' && value.length > width) out[column] = value.slice(0, width);
  }
  // Not rated (rating is its own step): leave cost to the column default rather than write NULL.
  if (out.cost === null) delete out.cost;
  return out as unknown as CdrRecord;
}

/** UTC `YYYY-MM-DD HH:MM:SS.mmm`, which MySQL DATETIME(3) and SQLite text both store as is. */
export function sqlTimestamp(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}
