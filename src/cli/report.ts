/**
 * `npm run report -- --tenant 12 --day 2026-11-20` (or `--month 2026-11`): rebuilds one tenant's
 * call analysis report for a day or month of its timezone from the CDRs in DATABASE_URL — the
 * report tables are replaced, the CSV in REPORTS_DIR rewritten — and prints it.
 * Exit 0 done, 1 failed, 2 bad arguments or configuration.
 */
import { commandSnapshot } from './command-snapshot';
import { zonesOf } from '../snapshot/zones';
import type { Writable } from 'node:stream';
import { generateReport } from '../billing/reports';
import { createKnex } from '../db/connect';
import { periodLabel } from '../domain/periods';
import { parseFlags, settingsOrNull, tenantIdFlag, UsageError } from './args';
import { runCommand } from './run';

const USAGE = 'usage: npm run report -- --tenant <id> (--day YYYY-MM-DD | --month YYYY-MM)';

export async function main(argv: readonly string[], out: Writable = process.stdout, err: Writable = process.stderr, env?: NodeJS.ProcessEnv): Promise<number> {
  let tenantId: number;
  let kind: 'day' | 'month';
  let start: string;
  try {
    const flags = parseFlags(argv, ['tenant', 'day', 'month']);
    tenantId = tenantIdFlag(flags);
    const day = flags.get('day');
    const month = flags.get('month');
    if ((day === undefined) === (month === undefined)) throw new UsageError('give exactly one of --day or --month');
    if (day !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new UsageError(`--day must be YYYY-MM-DD, got ${JSON.stringify(day)}`);
    if (month !== undefined && !/^\d{4}-\d{2}$/.test(month)) throw new UsageError(`--month must be YYYY-MM, got ${JSON.stringify(month)}`);
    kind = day !== undefined ? 'day' : 'month';
    start = day ?? `${month!}-01`;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.write(`report: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  const settings = settingsOrNull('report', err, env);
  if (!settings) return 2;
  const knex = createKnex(settings.database.url);
  try {
    // The tenant's zone as the daemon has it (the snapshot's, validated), not the raw column.
    const { snapshot } = await commandSnapshot(settings, knex);
    const { report, csvPath, csv } = await generateReport(knex, tenantId, kind, start, { reportsDir: settings.reports.dir, now: new Date(), zoneOf: zonesOf(() => snapshot.tenants) });
    out.write(`report for tenant ${report.tenantId} (${report.tenantName}), ${kind} ${periodLabel(report.period)} in ${report.period.zone}\n`);
    out.write(`${report.period.from.toISOString()} – ${report.period.to.toISOString()} (UTC): ${report.total.calls} calls, ${report.total.answered} answered\n`);
    out.write(`written to ${csvPath} and the call_reports tables\n\n`);
    out.write(csv.replace(/^\uFEFF/, '').replace(/\r\n/g, '\n'));
    return 0;
  } catch (e) {
    err.write(`report: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await knex.destroy();
  }
}

if (require.main === module) runCommand('report', () => main(process.argv.slice(2)));
