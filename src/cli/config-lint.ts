/**
 * `npm run config:lint`: reads the configuration tables from DATABASE_URL exactly as the daemon
 * does and prints one line per rejected row (table, id, column, value, reason, and what is in
 * force instead: its last good version, nothing, or the row without a link), the prompts callers
 * would not hear (menus without a prompt, prompt files missing where the daemon sees them), the
 * routing levels whose percentages do not add up to 100, and a summary. The children of a skipped row are counted
 * in its line, not listed. Exit 0 when clean, 1 when something needs a DBA's attention.
 */
import { loadSettings, type Settings } from '../config';
import { runCommand } from './run';
import { commandSnapshot } from './command-snapshot';
import { createKnex } from '../db/connect';
import { formatFinding, summarizeFindings } from '../snapshot/findings';
import { promptFindings } from '../prompts/lint';
import type { ConfigSnapshot, RoutingRule } from '../snapshot/types';

/** Routing levels whose percentages do not add up to 100 (they still work, as relative weights). */
export function lintWarnings(snapshot: ConfigSnapshot): string[] {
  const warnings: string[] = [];
  for (const [tenantId, rules] of snapshot.rulesByTenant) {
    const levels = new Map<string, RoutingRule[]>();
    for (const rule of rules) {
      const key = `${rule.priority}/${rule.accessNumberId ?? 'all'}/${rule.regions?.join(',') ?? ''}/${rule.scheduleId ?? ''}`;
      levels.set(key, [...(levels.get(key) ?? []), rule]);
    }
    for (const [, level] of levels) {
      const total = level.reduce((s, r) => s + r.percent, 0);
      if (level.length > 1 && total !== 100) {
        warnings.push(`routing_rules ids=${level.map((r) => r.id).join(',')} (tenant ${tenantId}, priority ${level[0].priority}): percents add up to ${total}, not 100; they are used as relative weights`);
      }
    }
  }
  return warnings;
}

export async function lint(settings: Settings, out: { write(text: string): unknown }): Promise<number> {
  const knex = createKnex(settings.database.url);
  try {
    const { snapshot, lastGoodNote } = await commandSnapshot(settings, knex);
    const warnings = lintWarnings(snapshot);
    const prompts = await promptFindings(settings, snapshot);
    out.write(`${snapshot.tenants.size} tenants, ${snapshot.accessNumbers.size} access numbers, ${snapshot.groups.size} groups in force\n`);
    out.write(`(${lastGoodNote})\n`);
    for (const f of snapshot.rejected) out.write(`${formatFinding(f)}\n`);
    for (const line of [...prompts, ...warnings]) out.write(`${line}\n`);
    const clean = snapshot.rejected.length === 0 && warnings.length === 0 && prompts.length === 0;
    const extra = [
      prompts.length > 0 ? `${prompts.length} prompt problem(s)` : '',
      warnings.length > 0 ? `${warnings.length} routing level(s) not adding up to 100%` : '',
    ].filter((e) => e !== '');
    out.write(clean ? 'no problems found\n' : `${[summarizeFindings(snapshot.rejected), ...extra].join('; ')}\n`);
    return clean ? 0 : 1;
  } finally {
    await knex.destroy();
  }
}

if (require.main === module) runCommand('config:lint', () => lint(loadSettings(), process.stdout));
