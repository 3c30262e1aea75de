/**
 * grafana/dashboards/*.json and grafana/provisioning/: each dashboard is a well-formed Grafana
 * 10/11 model (uid, unique panel ids, the datasource and node variables, panels on the data source
 * variable); every PromQL expression, with its template variables substituted, parses
 * (`promtool check rules` on a throwaway recording-rules file); every series and label it names
 * is exported by a real daemon's /metrics after a real call. Grafana itself is not installed:
 * these checks stand in for loading the files into it.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { catalogueErrors, formatList, promtoolParseErrors } from './checks';
import { scrapeRealDaemon, type DaemonMetrics } from './daemon-metrics';
import {
  allPanels,
  dashboardExprs,
  dashboardFiles,
  loadDashboard,
  references,
  substitute,
  variableQuery,
  variableRefs,
  variableValues,
  type GrafanaDashboard,
  type NamedExpr,
} from './promql';
import { GRAFANA_DIR, requireTool } from './tools';

const DATASOURCE_UID = 'hotline-prometheus';
const DASHBOARD_PATH = '/var/lib/grafana/dashboards/hotline';
/** Sample values for the dashboards' own variables (multi-value ones become a regex alternation). */
const SAMPLE_VALUES = { node: ['127.0.0.1:9464', '127.0.0.1:9465'], tenant: ['1'], group: ['1', '2'], datasource: [DATASOURCE_UID] };
const PANEL_TYPES = new Set(['row', 'timeseries', 'stat', 'bargauge', 'gauge', 'table', 'text']);

const files = dashboardFiles();
const dashboards = files.map((file) => ({ file, name: path.basename(file) }));

t.test('promtool is installed', async (t) => {
  t.doesNotThrow(() => requireTool('promtool'), 'promtool runs (apt-get install prometheus)');
});

t.test('there are dashboards', async (t) => {
  t.same(dashboards.map((d) => d.name), ['noc-overview.json', 'tenant-drilldown.json']);
});

/** Parsed dashboards; a file that does not parse fails its own test and is left out of the rest. */
const parsed = new Map<string, GrafanaDashboard>();
for (const { file, name } of dashboards) {
  try {
    parsed.set(name, loadDashboard(file));
  } catch {
    // reported by the test below
  }
}

for (const { file, name } of dashboards) {
  t.test(`${name} is a complete dashboard model`, async (t) => {
    let d: GrafanaDashboard;
    try {
      d = loadDashboard(file);
    } catch (err) {
      t.fail(`${name} is not valid JSON: ${(err as Error).message}`);
      return;
    }
    t.match(d.uid, /^[a-zA-Z0-9_-]{1,40}$/, 'uid: at most 40 of [a-zA-Z0-9_-] (Grafana limit)');
    t.ok(d.title, 'has a title');
    t.equal(d.schemaVersion, 39, 'schemaVersion 39 (Grafana 10.4 / 11.x)');
    t.equal(d.id, null, 'id null: provisioning assigns it');
    t.ok(d.time?.from && d.time.to, 'has a default time range');
    t.match(d.refresh, /^\d+[smh]$/, 'has a refresh interval');

    const vars = d.templating?.list ?? [];
    const ds = vars.find((v) => v.name === 'datasource');
    t.equal(ds?.type, 'datasource', 'a "datasource" variable of type datasource');
    t.equal(ds?.query, 'prometheus', 'the datasource variable lists Prometheus data sources');
    t.equal(ds?.current?.value, DATASOURCE_UID, 'and defaults to the provisioned data source uid');
    const node = vars.find((v) => v.name === 'node');
    t.equal(node?.type, 'query', 'a "node" query variable');
    t.ok(node?.multi && node.includeAll, 'node is multi-value with All');
    t.equal(new Set(vars.map((v) => v.name)).size, vars.length, 'variable names are unique');
    for (const v of vars.filter((x) => x.type === 'query')) {
      t.same(v.datasource, { type: 'prometheus', uid: '${datasource}' }, `variable ${v.name} queries the selected data source`);
    }

    const panels = allPanels(d);
    const ids = panels.map((p) => p.id);
    t.ok(ids.every((id) => Number.isInteger(id) && (id as number) > 0), 'every panel has a positive integer id');
    const dupes = ids.filter((id, i) => ids.indexOf(id) !== i);
    t.same(dupes, [], 'panel ids are unique');
    for (const p of panels) {
      const label = `panel ${String(p.id)} "${p.title ?? ''}"`;
      t.ok(p.type && PANEL_TYPES.has(p.type), `${label}: known panel type (${String(p.type)})`);
      const g = p.gridPos;
      t.ok(g && g.w > 0 && g.h > 0 && g.x >= 0 && g.y >= 0 && g.x + g.w <= 24, `${label}: gridPos inside the 24-column grid`);
      if (!p.targets?.length) {
        t.ok(p.type === 'row' || p.type === 'text', `${label}: only rows and text panels have no queries`);
        continue;
      }
      t.same(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${label}: uses the datasource variable`);
      const refIds = p.targets.map((x) => x.refId);
      t.equal(new Set(refIds).size, refIds.length, `${label}: unique refIds`);
      for (const target of p.targets) {
        t.ok(target.expr?.trim(), `${label} ${String(target.refId)}: has a PromQL expr`);
        t.same(target.datasource, { type: 'prometheus', uid: '${datasource}' }, `${label} ${String(target.refId)}: target on the datasource variable`);
      }
    }

    // Variables: every one an expression uses is defined; multi-value ones only inside regex matchers.
    const defined = new Map(vars.map((v) => [v.name, v]));
    for (const e of dashboardExprs(file, d)) {
      for (const ref of variableRefs(e.expr)) {
        if (ref.startsWith('__')) continue;
        const v = defined.get(ref);
        t.ok(v, `${e.where}: variable $${ref} is defined`);
        if (v && (v.multi || v.includeAll)) {
          const re = new RegExp(`\\$\\{?${ref}\\b`, 'g');
          for (const m of e.expr.matchAll(re)) {
            t.match(e.expr.slice(0, m.index), /[=!]~\s*"[^"]*$/, `${e.where}: multi-value $${ref} is used inside =~ / !~ "…"`);
          }
        }
      }
    }
  });
}

t.test('dashboard uids are unique', async (t) => {
  const uids = [...parsed.values()].map((d) => d.uid);
  t.equal(new Set(uids).size, uids.length);
});

/** Every panel expression with the variables substituted, plus the query variables' selectors. */
function substitutedExprs(): NamedExpr[] {
  const out: NamedExpr[] = [];
  for (const { file, name } of dashboards) {
    const d = parsed.get(name);
    if (!d) continue;
    const values = variableValues(d, SAMPLE_VALUES);
    for (const e of dashboardExprs(file, d)) out.push({ ...e, expr: substitute(e.expr, values) });
  }
  return out;
}

t.test('every panel expression parses (promtool check rules)', async (t) => {
  let exprs: NamedExpr[] = [];
  t.doesNotThrow(() => (exprs = substitutedExprs()), 'every template variable has a value');
  t.ok(exprs.length >= 40, `found the panel expressions (${exprs.length})`);
  const errors = await promtoolParseErrors('grafana-dashboards', exprs);
  t.same(errors, [], errors.length ? `PromQL errors:\n${formatList(errors)}` : 'all parse');
});

t.test('against a real daemon', async (t) => {
  const metrics: DaemonMetrics = await scrapeRealDaemon();
  t.ok(metrics.families.has('hotline_calls_started_total'), 'the scrape has the hotline_ metrics');
  t.match(metrics.text, /hotline_tenant_calls_ended_total\{tenant="1",outcome="answered"\} 1/, 'the call is counted for tenant "1"');
  t.match(metrics.text, /hotline_cron_runs_total\{cron_job="caps",result="ok"\} [1-9]\d*$/m, 'the caps cron run is counted');
  t.match(metrics.text, /hotline_cron_last_success_timestamp_seconds\{cron_job="notifications"\} \d/, 'and the notifications run has a last success');

  t.test('every series and label a panel uses is exported', async (t) => {
    const errors = substitutedExprs().flatMap((e) => catalogueErrors(metrics, e));
    t.same(errors, [], errors.length ? `not in /metrics:\n${formatList(errors)}` : 'all exported');
  });

  t.test('the NOC overview shows every hotline gauge the daemon exports', async (t) => {
    t.ok(parsed.has('noc-overview.json'), 'noc-overview.json parses');
    const shown = new Set(substitutedExprs().filter((e) => e.where.startsWith('noc-overview.json')).flatMap((e) => references(e.expr).selectors.map((s) => s.metric)));
    const gauges = [...metrics.families.values()].filter((f) => f.type === 'gauge' && f.name.startsWith('hotline_')).map((f) => f.name);
    t.ok(gauges.includes('hotline_cdr_spool_oldest_age_seconds'), 'the gauges were found');
    t.same(gauges.filter((g) => !shown.has(g)), [], 'a panel for each (a new gauge needs its panel)');
  });

  t.test('every query variable reads an exported series and label', async (t) => {
    for (const [name, d] of parsed) {
      for (const v of (d.templating?.list ?? []).filter((x) => x.type === 'query')) {
        const query = variableQuery(v) ?? '';
        const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(query.trim());
        if (!m) {
          t.fail(`${name} variable ${v.name}: expected label_values(<selector>, <label>), got ${query}`);
          continue;
        }
        const e = { where: `${name} variable ${v.name}`, record: 'unused', expr: m[1] };
        t.same(catalogueErrors(metrics, e), [], `${name} $${v.name}: ${e.expr} is exported`);
        t.same(catalogueErrors(metrics, { ...e, expr: `sum by (${m[2]}) (${e.expr})` }), [], `${name} $${v.name}: it has label ${m[2]}`);
      }
    }
  });
});

/** Dashboards with a tenant variable: every series with a `tenant` label is read for that tenant alone. */
const TENANT_DASHBOARDS = ['tenant-drilldown.json'];

t.test('tenant dashboards filter every tenant-labelled series by $tenant', async (t) => {
  const metrics: DaemonMetrics = await scrapeRealDaemon();
  const tenantLabelled = new Set([...metrics.families.values()].filter((f) => f.labels.has('tenant')).map((f) => f.name));
  t.ok(tenantLabelled.has('hotline_tenant_calls_ended_total') && tenantLabelled.has('hotline_destination_legs_total'), 'the tenant-labelled series were found');
  for (const name of TENANT_DASHBOARDS) {
    const d = parsed.get(name);
    if (!d) {
      t.fail(`${name} did not parse`);
      continue;
    }
    const file = dashboards.find((x) => x.name === name)?.file ?? name;
    const reads: NamedExpr[] = [...dashboardExprs(file, d)];
    for (const v of (d.templating?.list ?? []).filter((x) => x.type === 'query' && x.name !== 'tenant')) {
      reads.push({ where: `${name} variable ${v.name}`, record: 'unused', expr: variableQuery(v) ?? '' });
    }
    t.ok(reads.length > 10, `${name}: ${reads.length} expressions`);
    // Other variables get any value; $tenant a marker to look for in the matchers.
    const MARK = 'TENANT-VARIABLE';
    const values: Record<string, string> = Object.fromEntries((d.templating?.list ?? []).map((v) => [v.name, v.name === 'tenant' ? MARK : 'x']));
    for (const e of reads) {
      for (const sel of references(substitute(e.expr, values)).selectors) {
        if (!sel.metric || !tenantLabelled.has(sel.metric.replace(/_(bucket|sum|count)$/, ''))) continue;
        const byTenant = sel.matchers.some((m) => m.label === 'tenant' && (m.op === '=' || m.op === '=~') && m.value === MARK);
        t.ok(byTenant, `${e.where}: ${sel.metric} filtered by tenant="$tenant"`);
      }
    }
  }
});

t.test('provisioning files', async (t) => {
  const prov = path.join(GRAFANA_DIR, 'provisioning');
  const env = parseEnvFile(fs.readFileSync(path.join(prov, 'grafana-server.env'), 'utf8'));

  t.test('datasources/prometheus.yaml', async (t) => {
    const doc = parseYaml(fs.readFileSync(path.join(prov, 'datasources', 'prometheus.yaml'), 'utf8')) as {
      apiVersion: number;
      datasources: Array<Record<string, unknown>>;
    };
    t.equal(doc.apiVersion, 1);
    t.equal(doc.datasources.length, 1, 'one data source');
    const ds = doc.datasources[0];
    t.match(ds, { name: String, type: 'prometheus', access: 'proxy', uid: DATASOURCE_UID, orgId: 1 });
    const url = ds.url as string;
    t.match(url, /^\$\{?HOTLINE_PROMETHEUS_URL\}?$/, 'url comes from HOTLINE_PROMETHEUS_URL');
    // Grafana expands with Go's os.ExpandEnv: no default syntax, so the env file must define it.
    const expanded = url.replace(/\$\{?(\w+)\}?/g, (_, v: string) => env[v] ?? '');
    t.equal(expanded, 'http://127.0.0.1:9090', 'grafana-server.env gives the default http://127.0.0.1:9090');
    t.doesNotThrow(() => new URL(expanded), 'a valid URL');
    t.match(ds.jsonData, { httpMethod: 'POST', timeInterval: '15s' }, 'scrape interval matches prometheus.yml');
  });

  t.test('dashboards/hotline.yaml', async (t) => {
    const doc = parseYaml(fs.readFileSync(path.join(prov, 'dashboards', 'hotline.yaml'), 'utf8')) as {
      apiVersion: number;
      providers: Array<Record<string, unknown>>;
    };
    t.equal(doc.apiVersion, 1);
    t.equal(doc.providers.length, 1, 'one provider');
    t.match(doc.providers[0], { name: String, type: 'file', orgId: 1, options: { path: DASHBOARD_PATH } });
    const readme = fs.readFileSync(path.join(GRAFANA_DIR, 'README.md'), 'utf8');
    t.ok(readme.includes(DASHBOARD_PATH), 'grafana/README.md documents the dashboards path');
    t.ok(readme.includes('HOTLINE_PROMETHEUS_URL'), 'and the data source URL variable');
  });
});

/** NAME=value lines (systemd EnvironmentFile), comments and blanks ignored. */
function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}
