// Helpers for CDR tests: records shaped like src/cdr/record.ts, temp spool dirs, spool inspection.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import type { Test } from 'tap';
import type { CdrRecord } from '../../src/cdr/record';
import { toDbTimestamp as sqlTimestamp } from '../../src/db/connect';
import type { Metrics } from '../../src/metrics';

const BASE = Date.parse('2026-11-21T02:00:00.000Z');

/** A complete answered call; `i` makes the UUID and times distinct. */
export function cdr(i: number, extra: Partial<CdrRecord> = {}): CdrRecord {
  const started = new Date(BASE + i * 1000);
  return {
    call_uuid: `${crypto.randomUUID()}-${i}`.slice(0, 64),
    tenant_id: 1,
    access_number: '4001000001',
    caller: `1390000${String(i).padStart(4, '0')}`,
    caller_region: '广东省广州市',
    started_at: sqlTimestamp(started),
    answered_at: sqlTimestamp(new Date(started.getTime() + 5_000)),
    ended_at: sqlTimestamp(new Date(started.getTime() + 65_000)),
    duration_s: 65,
    billsec: 60,
    outcome: 'answered',
    hangup_cause: 'NORMAL_CLEARING',
    answered_by: '13800000100',
    group_id: 10,
    ivr_path: '1',
    cost: '0.1500',
    recording_path: null,
    node: 'test-node',
    ...extra,
  };
}

/** A fresh spool directory, removed after the test. */
export function spoolDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-cdr-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function segments(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.startsWith('segment-') && n.endsWith('.jsonl')).sort();
}

export function quarantined(dir: string): Array<{ reason: string; line: string }> {
  const file = path.join(dir, 'quarantine.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { reason: string; line: string });
}

export async function cdrRows(knex: Knex): Promise<Array<Record<string, unknown>>> {
  return (await knex('cdrs').select('*').orderBy('id')) as Array<Record<string, unknown>>;
}

export async function gauge(metric: Metrics['cdrSpoolDepth']): Promise<number> {
  return (await metric.get()).values[0]?.value ?? 0;
}

export async function counter(metric: Metrics['cdrsWritten']  ): Promise<number> {
  return (await metric.get()).values[0]?.value ?? 0;
}
