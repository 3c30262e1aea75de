/**
 * Findings (rejected configuration rows) as people read them: one line per finding for
 * `npm run config:lint`, the findings of one call's tenant for `npm run route -- explain`, and a
 * summary. The words say what is in force instead of the row, which is what a DBA needs to know.
 */
import { dialledNationalNumber } from '../domain/access-number';
import { identify } from '../domain/routing';
import type { ConfigFinding, ConfigSnapshot } from './types';

/** The findings that concern one tenant: its own rows, and the rows of its children. */
export function findingsForTenant(snapshot: Pick<ConfigSnapshot, 'rejected'>, tenantId: number): ConfigFinding[] {
  return snapshot.rejected.filter((f) => f.tenantId === tenantId);
}

/**
 * Lines for `route explain`: the findings of the tenant a dialled number reaches, or, for a
 * number that is not in service, why its row is not in force. Empty when there is nothing to say.
 */
export function explainFindings(snapshot: ConfigSnapshot, dialed: string): string[] {
  const id = identify(snapshot, dialed);
  let findings: ConfigFinding[];
  if (id.kind === 'unknown_number') {
    const key = dialledNationalNumber(dialed);
    const why = key === null ? undefined : snapshot.numbersNotInForce.get(key);
    findings = why ? [why] : [];
  } else {
    findings = findingsForTenant(snapshot, id.tenant.id);
  }
  if (findings.length === 0) return [];
  return [
    `configuration findings for this call (${findings.length}; npm run config:lint lists them all):`,
    ...findings.map((f) => `  ${formatFinding(f)}`),
  ];
}

const OUTCOME: Record<ConfigFinding['status'], string> = {
  last_good: 'its last good version stays in force until the row is fixed',
  skipped: 'skipped (no last good version of it)',
  link_ignored: 'in force without this link',
  missing: 'rows name it',
  doubtful: 'in force; check it is what was meant',
};

/** One line: `table id=N (tenant T) column=value: reason → what is in force [; dependents]`. */
export function formatFinding(f: ConfigFinding): string {
  const dependents = formatDependents(f.dependents);
  let outcome = OUTCOME[f.status];
  if (f.status === 'missing') outcome = dependents ? `${dependents} name it and are not in force` : 'nothing names it';
  // A finding about rows that are not there (no rate for a call type): nothing to keep or skip.
  else if (f.status === 'doubtful' && f.id === null) outcome = 'calls go on so; add the row if that is not what was meant';
  else if (dependents) outcome += `; with it ${dependents} are not in force`;
  return formatFindingLine({ ...f, outcome });
}

/**
 * The parts of every `config:lint` line, rejected rows or not (a prompt file that is missing, a
 * menu without a prompt): where (table, id, tenant), the value at fault (as showValue() shows it),
 * why, and what callers get instead. One format, so a DBA reads every finding the same way.
 */
export interface FindingLine {
  readonly table: string;
  readonly id: number | string | null;
  readonly tenantId: number | null;
  readonly column: string | null;
  readonly value: string | null;
  readonly reason: string;
  readonly outcome: string;
}

export function formatFindingLine(f: FindingLine): string {
  const where = `${f.table} ${f.id === null ? '(no row)' : `id=${f.id}`}${f.tenantId !== null && f.table !== 'tenants' ? ` (tenant ${f.tenantId})` : ''}`;
  const what = f.column === null ? '' : ` ${f.column}=${f.value ?? 'NULL'}`;
  return `${where}${what}: ${f.reason} → ${f.outcome}`;
}

/** "10,000 call_filters rows, 3 routing_rules rows" (largest first). */
export function formatDependents(dependents: Readonly<Record<string, number>>): string {
  return Object.entries(dependents)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([table, n]) => `${n.toLocaleString('en-US')} ${table} row${n === 1 ? '' : 's'}`)
    .join(', ');
}

/** "3 rows rejected: 1 on its last good version, 2 skipped; 10,003 rows of other tables not in force with them". */
export function summarizeFindings(findings: readonly ConfigFinding[]): string {
  if (findings.length === 0) return 'no rejected rows';
  const count = (status: ConfigFinding['status']): number => findings.filter((f) => f.status === status).length;
  const parts = [
    [count('last_good'), 'on the last good version'],
    [count('skipped'), 'skipped'],
    [count('link_ignored'), 'in force without a link'],
    [count('missing'), 'missing rows named by others'],
    [count('doubtful'), 'in force as written but doubtful'],
  ].filter(([n]) => (n as number) > 0).map(([n, text]) => `${n as number} ${text as string}`);
  const dependents = findings.reduce((sum, f) => sum + Object.values(f.dependents).reduce((a, b) => a + b, 0), 0);
  return `${findings.length} finding${findings.length === 1 ? '' : 's'}: ${parts.join(', ')}` +
    (dependents > 0 ? `; ${dependents.toLocaleString('en-US')} rows of other tables not in force with them` : '');
}
