/**
 * `npm run usage -- --tenant 12`: one tenant's calls and spend this day and this month (in its
 * timezone) against its caps and balance — as tenant_usage holds them and as recounted from the
 * CDRs and live calls (what the caps job would correct them to) — and whether it is capped.
 * Exit 0 done, 1 failed or no such tenant, 2 bad arguments or configuration.
 */
import { commandSnapshot } from './command-snapshot';
import { zonesOf, type TenantZones } from '../snapshot/zones';
import type { Writable } from 'node:stream';
import type { Knex } from 'knex';
import { cappedReasons, cdrTotals, loadTenantLimits, publishedLiveCalls } from '../billing/caps';
import { liveCost } from '../billing/live-calls';
import { moneyOrNull } from '../billing/usage';
import { createKnex } from '../db/connect';
import { formatMoney, money, type Money } from '../domain/money';
import { periodOf, type PeriodKind } from '../domain/periods';
import { parseFlags, settingsOrNull, tenantIdFlag, UsageError } from './args';
import { runCommand } from './run';

const USAGE = 'usage: npm run usage -- --tenant <id>';

export interface PeriodUsage {
  kind: PeriodKind;
  start: string;
  stored: { calls: number; spend: Money } | null;
  recount: { calls: number; spend: Money; liveCalls: number; liveCost: Money };
  maxCalls: number | null;
  maxSpend: Money | null;
}

export interface TenantUsageReport {
  id: number;
  name: string;
  status: string;
  zone: string;
  balance: Money | null;
  periods: PeriodUsage[];
  capped: Array<{ reason: string; periodStart: string | null; detail: string | null }>;
}

export async function tenantUsageReport(knex: Knex, tenantId: number, now: Date, zoneOf?: TenantZones): Promise<TenantUsageReport | null> {
  const [limits] = await loadTenantLimits(knex, [tenantId], { zoneOf });
  if (!limits) return null;
  const named: { name: string | null } | undefined = await knex('tenants').where({ id: tenantId }).first('name');
  const name = named?.name ?? '';
  const live = (await publishedLiveCalls(knex, now)).filter((c) => c.tenantId === tenantId);
  const periods: PeriodUsage[] = [];
  for (const kind of ['day', 'month'] as const) {
    const p = periodOf(kind, now, limits.zone);
    const row: { calls: unknown; spend: unknown } | undefined = await knex('tenant_usage').where({ tenant_id: tenantId, period_kind: kind, period_start: p.start }).first('calls', 'spend');
    const cdr = (await cdrTotals(knex, p.from, p.to, [tenantId])).get(tenantId) ?? { calls: 0, spend: money(0) };
    const inPeriod = live.filter((c) => c.startedAt >= p.from && c.startedAt < p.to);
    periods.push({
      kind,
      start: p.start,
      stored: row ? { calls: Number(row.calls), spend: moneyOrNull(row.spend) ?? money(0) } : null,
      recount: {
        calls: cdr.calls + inPeriod.filter((c) => c.admitted).length,
        spend: cdr.spend,
        liveCalls: inPeriod.length,
        liveCost: money(inPeriod.reduce((s, c) => s + liveCost(c, now), 0)),
      },
      maxCalls: kind === 'day' ? limits.maxCallsDay : limits.maxCallsMonth,
      maxSpend: kind === 'day' ? limits.maxSpendDay : limits.maxSpendMonth,
    });
  }
  return { id: tenantId, name, status: limits.status, zone: limits.zone, balance: limits.balance, periods, capped: await cappedReasons(knex, tenantId) };
}

export function formatUsageReport(r: TenantUsageReport): string {
  const cap = (v: string | number | null): string => (v === null ? 'no cap' : String(v));
  const lines = [
    `tenant ${r.id} ${r.name} (${r.status}), timezone ${r.zone}`,
    `balance: ${r.balance === null ? 'postpaid (no balance)' : formatMoney(r.balance)}`,
  ];
  for (const p of r.periods) {
    const stored = p.stored ? `calls ${p.stored.calls} / ${cap(p.maxCalls)}, spend ${formatMoney(p.stored.spend)} / ${cap(p.maxSpend === null ? null : formatMoney(p.maxSpend))}` : 'no usage row yet';
    const drift = p.stored && (p.stored.calls !== p.recount.calls || p.stored.spend !== p.recount.spend) ? '  ← differs: the caps job corrects it' : '';
    lines.push(`${p.kind === 'day' ? 'day  ' : 'month'} ${p.start}: ${stored}`);
    lines.push(`      from CDRs + live calls: calls ${p.recount.calls}, spend ${formatMoney(p.recount.spend)}; ${p.recount.liveCalls} live call(s) costing ${formatMoney(p.recount.liveCost)} so far${drift}`);
  }
  lines.push(r.capped.length === 0 ? 'not capped' : `capped: ${r.capped.map((c) => `${c.reason}${c.periodStart ? ` (${c.periodStart})` : ''}${c.detail ? `: ${c.detail}` : ''}`).join('; ')}`);
  return `${lines.join('\n')}\n`;
}

/** `clock` says what "today" is (tests give a fixed one; a real "now" would race local midnight). */
export async function main(argv: readonly string[], out: Writable = process.stdout, err: Writable = process.stderr, env?: NodeJS.ProcessEnv, clock: () => Date = () => new Date()): Promise<number> {
  let tenantId: number;
  try {
    tenantId = tenantIdFlag(parseFlags(argv, ['tenant']));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.write(`usage: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  const settings = settingsOrNull('usage', err, env);
  if (!settings) return 2;
  const knex = createKnex(settings.database.url);
  try {
    // The tenant's zone as the daemon has it (the snapshot's, validated), not the raw column.
    const { snapshot } = await commandSnapshot(settings, knex);
    const report = await tenantUsageReport(knex, tenantId, clock(), zonesOf(() => snapshot.tenants));
    if (!report) {
      err.write(`usage: no tenant with id ${tenantId}\n`);
      return 1;
    }
    out.write(formatUsageReport(report));
    return 0;
  } catch (e) {
    err.write(`usage: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await knex.destroy();
  }
}

if (require.main === module) runCommand('usage', () => main(process.argv.slice(2)));
