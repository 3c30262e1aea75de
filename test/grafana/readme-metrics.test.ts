/**
 * README "Metrics": its table names every hotline_* metric a real daemon exports, with the type and
 * the label names the daemon gives it, and nothing the daemon does not export. A new metric without
 * its README row (or a row left behind by a removed one) fails here.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { scrapeRealDaemon } from './daemon-metrics';

interface Row {
  name: string;
  type: string;
  labels: string[];
}

const README = path.join(__dirname, '..', '..', 'README.md');

/** The rows of the table under "## Metrics" (up to the next "## " heading). */
export function readmeMetricRows(markdown: string): Row[] {
  const start = markdown.indexOf('\n## Metrics\n');
  if (start < 0) throw new Error('README.md has no "## Metrics" section');
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  const rows: Row[] = [];
  for (const line of section.split('\n')) {
    const m = /^\| `([a-z_:][a-z0-9_:]*)` \| (\w+) \|([^|]*)\|/.exec(line);
    if (!m) continue;
    const labels = [...m[3].matchAll(/`([a-z_][a-z0-9_]*)`/g)].map((l) => l[1]).sort();
    rows.push({ name: m[1], type: m[2], labels });
  }
  return rows;
}

t.test('the README metrics table parses', async (t) => {
  const rows = readmeMetricRows(fs.readFileSync(README, 'utf8'));
  t.ok(rows.length > 30, `${rows.length} rows`);
  t.equal(new Set(rows.map((r) => r.name)).size, rows.length, 'each metric once');
});

t.test('README "Metrics" and a real daemon\'s /metrics agree', async (t) => {
  const rows = readmeMetricRows(fs.readFileSync(README, 'utf8'));
  const metrics = await scrapeRealDaemon();
  const exported = [...metrics.families.values()].filter((f) => f.name.startsWith('hotline_'));
  const byName = new Map(rows.map((r) => [r.name, r]));
  const undocumented = exported.filter((f) => !byName.has(f.name)).map((f) => f.name);
  t.same(undocumented, [], 'every exported hotline_ metric has its README row');
  const gone = rows.filter((r) => !metrics.families.has(r.name)).map((r) => r.name);
  t.same(gone, [], 'every README row is exported');
  for (const f of exported) {
    const row = byName.get(f.name);
    if (!row) continue;
    t.equal(row.type, f.type, `${f.name}: type`);
    t.same(row.labels, [...f.labels].sort(), `${f.name}: label names`);
  }
});
