/**
 * grafana/prometheus/: the alert rules pass `promtool check rules`, their unit tests pass
 * `promtool test rules` (firing and not firing for every alert), every series and label an alert
 * uses is exported by a real daemon, and the example prometheus.yml passes `promtool check config`.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { catalogueErrors, formatList } from './checks';
import { scrapeRealDaemon } from './daemon-metrics';
import { ALERTS_FILE, loadAlertRules, type AlertRule } from './promql';
import { GRAFANA_DIR, promtool, requireTool } from './tools';

const PROM_DIR = path.join(GRAFANA_DIR, 'prometheus');

t.test('promtool is installed', async (t) => {
  t.doesNotThrow(() => requireTool('promtool'), 'promtool runs (apt-get install prometheus)');
});

t.test('promtool check rules alerts.yml', async (t) => {
  const r = await promtool(['check', 'rules', ALERTS_FILE]);
  t.equal(r.code, 0, r.output);
});

t.test('promtool test rules alerts.test.yml', async (t) => {
  // Run from the folder: rule_files in the test file are relative to it.
  const r = await promtool(['test', 'rules', 'alerts.test.yml'], PROM_DIR);
  t.equal(r.code, 0, r.output);
  t.match(r.output, /SUCCESS/);
});

t.test('promtool check config prometheus.yml', async (t) => {
  const r = await promtool(['check', 'config', 'prometheus.yml'], PROM_DIR);
  t.equal(r.code, 0, r.output);
  t.match(r.output, /1 rule files found/, 'it loads alerts.yml');
});

t.test('every alert has a severity, a summary, a description, and tests that fire and that do not', async (t) => {
  const rules = loadAlertRules();
  const alerts = rules.filter((r): r is AlertRule & { alert: string } => typeof r.alert === 'string');
  t.equal(alerts.length, rules.length, 'only alerting rules in alerts.yml');
  t.equal(new Set(alerts.map((a) => a.alert)).size, alerts.length, 'alert names are unique');
  const tests = loadUnitTests();
  for (const a of alerts) {
    t.match(a.labels?.severity, /^(critical|warning)$/, `${a.alert}: severity critical or warning`);
    t.ok(a.annotations?.summary, `${a.alert}: has a summary`);
    t.match(a.annotations?.description, /First check:/, `${a.alert}: its description says what to check first`);
    const cases = tests.filter((c) => c.alertname === a.alert);
    t.ok(cases.some((c) => c.exp_alerts.length > 0), `${a.alert}: a unit test where it fires`);
    t.ok(cases.some((c) => c.exp_alerts.length === 0), `${a.alert}: a unit test where it does not fire`);
  }
});

t.test('every series and label an alert uses is exported by the real daemon', async (t) => {
  const metrics = await scrapeRealDaemon();
  const errors = loadAlertRules().flatMap((r) => catalogueErrors(metrics, { where: `alert ${r.alert ?? r.record ?? '?'}`, record: 'unused', expr: r.expr }));
  t.same(errors, [], errors.length ? `not in /metrics:\n${formatList(errors)}` : 'all exported');
});

interface UnitCase {
  alertname: string;
  exp_alerts: unknown[];
}

function loadUnitTests(): UnitCase[] {
  const doc = parseYaml(fs.readFileSync(path.join(PROM_DIR, 'alerts.test.yml'), 'utf8')) as {
    tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
  };
  return doc.tests.flatMap((c) => (c.alert_rule_test ?? []).map((a) => ({ alertname: a.alertname, exp_alerts: a.exp_alerts ?? [] })));
}
