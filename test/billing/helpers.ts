// Helpers for billing tests: tenants, CDR rows written straight into the database, usage reads.
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Test } from 'tap';
import { toDbTimestamp } from '../../src/db/connect';
import { parseMoney, formatMoney } from '../../src/domain/money';
import { createKnex } from '../../src/db/connect';
import { dbTargets, TEST_ACQUIRE_TIMEOUT_MS, type TargetName, type TestDb } from '../helpers/db';

export interface DbCtx {
  db: TestDb;
  knex: Knex;
  target: TargetName;
  /** Another connection pool on the same database (another daemon). */
  other(): Knex;
}

/** Runs `fn` on SQLite and on MariaDB, each with a fresh migrated database. */
export function eachDb(t: Test, name: string, fn: (t: Test, ctx: DbCtx) => Promise<void>): void {
  void t.test(name, async (t) => {
    for (const target of dbTargets()) {
      await t.test(target.name, async (t) => {
        const db = await target.create();
        const extra: Knex[] = [];
        t.teardown(async () => {
          for (const k of extra) await k.destroy();
          await db.destroy();
        });
        await fn(t, {
          db,
          knex: db.knex,
          target: target.name,
          other: () => {
            const k = createKnex(db.url, { poolMax: 4, acquireTimeoutMs: TEST_ACQUIRE_TIMEOUT_MS });
            extra.push(k);
            return k;
          },
        });
      });
    }
  });
}

export interface TenantSpec {
  name?: string;
  timezone?: string;
  balance?: string | null;
  status?: string;
  max_calls_day?: number | null;
  max_calls_month?: number | null;
  max_spend_day?: string | null;
  max_spend_month?: string | null;
}

export async function addTenant(knex: Knex, spec: TenantSpec = {}): Promise<number> {
  const [id]: number[] = await knex('tenants').insert({
    name: spec.name ?? '测试公司',
    status: spec.status ?? 'active',
    timezone: spec.timezone ?? 'Asia/Shanghai',
    balance: spec.balance === undefined ? null : spec.balance,
    max_calls_day: spec.max_calls_day ?? null,
    max_calls_month: spec.max_calls_month ?? null,
    max_spend_day: spec.max_spend_day ?? null,
    max_spend_month: spec.max_spend_month ?? null,
  });
  return Number(id);
}

export interface CdrSpec {
  tenant_id: number | null;
  started_at: Date | string;
  outcome?: string;
  billsec?: number;
  cost?: string;
  caller?: string;
  caller_region?: string | null;
  access_number?: string;
  answered_by?: string | null;
  call_type?: string | null;
  admitted?: number | null;
  recording_path?: string | null;
  call_uuid?: string;
}

/** Inserts CDR rows directly (a history with known answers). */
export async function addCdrs(knex: Knex, specs: CdrSpec[]): Promise<void> {
  const rows = specs.map(cdrRow);
  for (let i = 0; i < rows.length; i += 200) await knex('cdrs').insert(rows.slice(i, i + 200));
}

/** The `cdrs` row addCdrs writes for `s`. */
export function cdrRow(s: CdrSpec): Record<string, unknown> {
  const started = typeof s.started_at === 'string' ? new Date(s.started_at) : s.started_at;
  const outcome = s.outcome ?? 'answered';
  const billsec = s.billsec ?? (outcome === 'answered' ? 60 : 0);
  return {
    call_uuid: s.call_uuid ?? crypto.randomUUID(),
    tenant_id: s.tenant_id,
    access_number: s.access_number ?? '4001000001',
    caller: s.caller ?? '13800138000',
    caller_region: s.caller_region ?? null,
    started_at: toDbTimestamp(started),
    answered_at: outcome === 'answered' || outcome === 'voicemail' ? toDbTimestamp(new Date(started.getTime() + 5000)) : null,
    ended_at: toDbTimestamp(new Date(started.getTime() + 5000 + billsec * 1000)),
    duration_s: 5 + billsec,
    billsec,
    outcome,
    hangup_cause: 'NORMAL_CLEARING',
    answered_by: s.answered_by === undefined ? (outcome === 'answered' ? '13900000001' : null) : s.answered_by,
    cost: s.cost ?? '0',
    call_type: s.call_type ?? null,
    admitted: s.admitted === undefined ? null : s.admitted,
    recording_path: s.recording_path ?? null,
    node: 'test',
  };
}

export interface UsageRow {
  calls: number;
  spend: string;
  excess: number;
}

export async function usage(knex: Knex, tenantId: number, kind: 'day' | 'month', start: string): Promise<UsageRow | null> {
  const r = await knex<Record<string, unknown>>('tenant_usage').where({ tenant_id: tenantId, period_kind: kind, period_start: start }).first();
  return r ? { calls: Number(r.calls), spend: formatMoney(parseMoney(r.spend)), excess: Number(r.excess_calls) } : null;
}

export async function balance(knex: Knex, tenantId: number): Promise<string | null> {
  const r: { balance: unknown } | undefined = await knex('tenants').where({ id: tenantId }).first('balance');
  return r?.balance === null || r?.balance === undefined ? null : formatMoney(parseMoney(r.balance));
}

export async function setUsage(knex: Knex, tenantId: number, kind: 'day' | 'month', start: string, calls: number, spend: string): Promise<void> {
  await knex('tenant_usage').insert({ tenant_id: tenantId, period_kind: kind, period_start: start, calls, spend }).onConflict(['tenant_id', 'period_kind', 'period_start']).merge(['calls', 'spend']);
}
