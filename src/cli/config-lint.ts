/**
 * `npm run config:lint`: reads the configuration tables from DATABASE_URL exactly as the daemon
 * does and lists every row it would skip, and why, plus routing levels whose percentages do not
 * add up to 100. Exit 0 when clean, 1 when something needs a DBA's attention.
 */
import { loadSettings } from '../config';
import { runCommand } from './run';
import { createKnex } from '../db/connect';
import { promptFindings } from '../prompts/lint';
import { loadSnapshot } from '../snapshot/store';
import type { ConfigSnapshot, RoutingRule } from '../snapshot/types';

export function lintFindings(snapshot: ConfigSnapshot): string[] {
  const findings = snapshot.rejected.map((r) => `${r.table} id=${r.id ?? '?'}: ${r.reason}`);
  for (const [tenantId, rules] of snapshot.rulesByTenant) {
    const levels = new Map<string, RoutingRule[]>();
    for (const rule of rules) {
      const key = `${rule.priority}/${rule.accessNumberId ?? 'all'}/${rule.regions?.join(',') ?? ''}/${rule.scheduleId ?? ''}`;
      levels.set(key, [...(levels.get(key) ?? []), rule]);
    }
    for (const [, level] of levels) {
      const total = level.reduce((s, r) => s + r.percent, 0);
      if (level.length > 1 && total !== 100) {
        findings.push(`routing_rules ids=${level.map((r) => r.id).join(',')} (tenant ${tenantId}, priority ${level[0].priority}): percents add up to ${total}, not 100; they are used as relative weights`);
      }
    }
  }
  return findings;
}

async function main(): Promise<number> {
  const settings = loadSettings();
  const knex = createKnex(settings.database.url);
  try {
    const snapshot = await loadSnapshot(knex);
    const findings = [...lintFindings(snapshot), ...(await promptFindings(settings, snapshot))];
    process.stdout.write(`${snapshot.tenants.size} tenants, ${snapshot.accessNumbers.size} access numbers, ${snapshot.groups.size} groups loaded\n`);
    for (const f of findings) process.stdout.write(`${f}\n`);
    process.stdout.write(findings.length === 0 ? 'no problems found\n' : `${findings.length} problem(s)\n`);
    return findings.length === 0 ? 0 : 1;
  } finally {
    await knex.destroy();
  }
}

if (require.main === module) runCommand('config:lint', main);
