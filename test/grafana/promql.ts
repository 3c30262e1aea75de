/**
 * Just enough PromQL reading for the checks in test/grafana: which series names and label names an
 * expression refers to (promtool does the real parsing), Grafana template-variable substitution,
 * and loading the dashboards' and alert rules' expressions.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { GRAFANA_DIR } from './tools';

// ------------------------------------------------------------------ lexer

type Token = { kind: 'ident' | 'string' | 'number' | 'punct'; text: string };

const PUNCT = ['=~', '!~', '!=', '==', '>=', '<=', '{', '}', '(', ')', '[', ']', ',', '=', '>', '<', '+', '-', '*', '/', '%', '^', '@', ':'];

export function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i++;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < expr.length && expr[j] !== c) j += expr[j] === '\\' && c !== '`' ? 2 : 1;
      if (j >= expr.length) throw new Error(`unterminated string in: ${expr}`);
      tokens.push({ kind: 'string', text: expr.slice(i + 1, j) });
      i = j + 1;
    } else if (/[0-9.]/.test(c)) {
      // numbers and durations (5m, 1h30m, 1e3, 0x1f)
      let j = i + 1;
      while (j < expr.length && /[0-9a-zA-Z.]/.test(expr[j])) j++;
      tokens.push({ kind: 'number', text: expr.slice(i, j) });
      i = j;
    } else if (/[a-zA-Z_]/.test(c)) {
      let j = i + 1;
      while (j < expr.length && /[a-zA-Z0-9_:]/.test(expr[j])) j++;
      tokens.push({ kind: 'ident', text: expr.slice(i, j) });
      i = j;
    } else {
      const p = PUNCT.find((op) => expr.startsWith(op, i));
      if (!p) throw new Error(`unexpected character ${JSON.stringify(c)} at ${i} in: ${expr}`);
      tokens.push({ kind: 'punct', text: p });
      i += p.length;
    }
  }
  return tokens;
}

// ------------------------------------------------------------------ selectors

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan', 'start', 'end']);

export interface Selector {
  /** Series name, or undefined for a bare {__name__=…} selector. */
  metric: string | undefined;
  /** Label names in the matchers, with the value and operator. */
  matchers: Array<{ label: string; op: string; value: string }>;
}

export interface ExprRefs {
  selectors: Selector[];
  /** Label names in by/without/on/ignoring/group_left/group_right clauses. */
  groupingLabels: Set<string>;
}

/** The series selectors and grouping labels of a PromQL expression. */
export function references(expr: string): ExprRefs {
  const tokens = tokenize(expr);
  const selectors: Selector[] = [];
  const groupingLabels = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i];
    const next = tokens[i + 1];
    if (tok.kind === 'ident') {
      const word = tok.text.toLowerCase();
      if (GROUPING.has(word)) {
        if (next?.text === '(') i = readLabelList(tokens, i + 2, groupingLabels);
        continue;
      }
      if (AGGREGATIONS.has(word) || KEYWORDS.has(word)) continue;
      if (next?.text === '(') continue; // a function call
      const selector: Selector = { metric: tok.text, matchers: [] };
      if (next?.text === '{') i = readMatchers(tokens, i + 2, selector);
      selectors.push(selector);
    } else if (tok.text === '{') {
      const selector: Selector = { metric: undefined, matchers: [] };
      i = readMatchers(tokens, i + 1, selector);
      const name = selector.matchers.find((m) => m.label === '__name__' && m.op === '=');
      if (name) selector.metric = name.value;
      selectors.push(selector);
    }
  }
  return { selectors, groupingLabels };
}

/** Reads `label op "value", …}` from index i; returns the index of the closing brace. */
function readMatchers(tokens: Token[], i: number, into: Selector): number {
  while (i < tokens.length && tokens[i]?.text !== '}') {
    const label = tokens[i];
    const op = tokens[i + 1];
    const value = tokens[i + 2];
    if (label?.kind !== 'ident' || op?.kind !== 'punct' || value?.kind !== 'string') {
      throw new Error(`cannot read label matcher near ${JSON.stringify(tokens.slice(i, i + 3).map((t) => t.text))}`);
    }
    into.matchers.push({ label: label.text, op: op.text, value: value.text });
    i += 3;
    if (tokens[i]?.text === ',') i++;
  }
  return i;
}

/** Reads `a, b)` from index i into labels; returns the index of the closing parenthesis. */
function readLabelList(tokens: Token[], i: number, into: Set<string>): number {
  while (i < tokens.length && tokens[i]?.text !== ')') {
    const tok = tokens[i];
    if (tok.kind === 'ident') into.add(tok.text);
    i++;
  }
  return i;
}

// ------------------------------------------------------------------ Grafana variables

/** Values for Grafana's built-in interval variables, valid PromQL durations. */
export const BUILTIN_VARIABLES: Readonly<Record<string, string>> = {
  __rate_interval: '1m',
  __interval: '15s',
  __interval_ms: '15000',
  __range: '1h',
  __range_s: '3600',
  __range_ms: '3600000',
};

const VARIABLE_REF = /\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]/g;

/** Names of the variables an expression refers to ($x, ${x}, ${x:fmt}, [[x]]). */
export function variableRefs(expr: string): string[] {
  return [...expr.matchAll(VARIABLE_REF)].map((m) => (m[1] ?? m[2] ?? m[3]));
}

/** Replaces every variable reference; throws naming any variable without a value. */
export function substitute(expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(VARIABLE_REF, (whole, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c) as string;
    const value = values[name] ?? BUILTIN_VARIABLES[name];
    if (value === undefined) throw new Error(`no value for template variable ${whole}`);
    return value;
  });
}

// ------------------------------------------------------------------ dashboards

export interface GrafanaTarget {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}

export interface GrafanaPanel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string } | null;
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
}

export interface GrafanaVariable {
  name: string;
  type: string;
  multi?: boolean;
  includeAll?: boolean;
  definition?: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string } | null;
  current?: { value?: unknown };
}

export interface GrafanaDashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  time?: { from: string; to: string };
  refresh?: string;
  id?: number | null;
  panels?: GrafanaPanel[];
  templating?: { list?: GrafanaVariable[] };
}

export const DASHBOARD_DIR = path.join(GRAFANA_DIR, 'dashboards');

export function dashboardFiles(): string[] {
  return fs
    .readdirSync(DASHBOARD_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(DASHBOARD_DIR, f));
}

export function loadDashboard(file: string): GrafanaDashboard {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as GrafanaDashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(d: GrafanaDashboard): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const walk = (panels: GrafanaPanel[] | undefined): void => {
    for (const p of panels ?? []) {
      out.push(p);
      walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

export interface NamedExpr {
  /** Where it comes from, for messages: "noc-overview.json panel 3 “CPS” A". */
  where: string;
  /** A valid recording-rule name for it. */
  record: string;
  expr: string;
}

/** The PromQL of every panel target, as written (variables not substituted). */
export function dashboardExprs(file: string, d: GrafanaDashboard): NamedExpr[] {
  const base = path.basename(file, '.json');
  const out: NamedExpr[] = [];
  for (const p of allPanels(d)) {
    for (const [i, target] of (p.targets ?? []).entries()) {
      if (target.expr === undefined) continue;
      const ref = target.refId ?? String(i);
      out.push({
        where: `${path.basename(file)} panel ${String(p.id)} "${p.title ?? ''}" ${ref}`,
        record: `grafana_check:${base.replace(/[^a-zA-Z0-9_]/g, '_')}:panel_${String(p.id)}_${ref.replace(/[^a-zA-Z0-9_]/g, '_')}`,
        expr: target.expr,
      });
    }
  }
  return out;
}

/** A query variable's PromQL-ish query string (label_values(...), query_result(...), …). */
export function variableQuery(v: GrafanaVariable): string | undefined {
  if (typeof v.query === 'string') return v.query;
  return v.query?.query ?? v.definition;
}

/** Values to substitute for a dashboard's own variables: a regex alternation for multi/all ones. */
export function variableValues(d: GrafanaDashboard, sample: Readonly<Record<string, readonly string[]>>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const v of d.templating?.list ?? []) {
    const candidates = sample[v.name] ?? ['x'];
    values[v.name] = v.multi || v.includeAll ? candidates.join('|') : (candidates[0]);
  }
  return values;
}

// ------------------------------------------------------------------ alert rules

export const ALERTS_FILE = path.join(GRAFANA_DIR, 'prometheus', 'alerts.yml');

export interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function loadAlertRules(file = ALERTS_FILE): AlertRule[] {
  const doc = parseYaml(fs.readFileSync(file, 'utf8')) as { groups: Array<{ name: string; rules: AlertRule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

/** A rules file (JSON is YAML) with one recording rule per expression, for `promtool check rules`. */
export function recordingRulesFile(group: string, exprs: readonly { record: string; expr: string }[]): string {
  return JSON.stringify({ groups: [{ name: group, rules: exprs.map((e) => ({ record: e.record, expr: e.expr })) }] }, null, 2);
}
