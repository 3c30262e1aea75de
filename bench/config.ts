/**
 * `npm run bench:config`: what the configuration store (src/snapshot/store.ts) costs the calls at
 * a carrier's size. BENCH_CONFIG_TENANTS (10,000) tenants, each with an access number, a group of
 * three phones, a routing rule and four rates, are written into a throw-away SQLite file and a
 * throw-away MariaDB database (skipped when the server does not answer). On each, a store set up
 * as the daemon's (on SQLite with its own read-only connection) then:
 *  - starts: the first load, in all and the longest wait of the event loop meanwhile;
 *  - polls BENCH_CONFIG_POLLS (30) times with nothing changed, as it does every
 *    CONFIG_POLL_INTERVAL_MS: the poll in all and the longest wait of the loop, p50 and p90;
 *  - polls after a DBA's edit (one destination's number): the reload, the same two figures.
 * The calls run on that event loop: its longest wait is what a call arriving meanwhile waits.
 * Checks that make the run fail: every tenant in force and no row rejected; a poll with nothing
 * changed reloads nothing; the poll after the edit reloads and the new number is in force.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { createKnex } from '../src/db/connect';
import { migrateLatest } from '../src/db/migrate';
import { openSqliteReader } from '../src/db/sqlite-reader';
import { createLogger } from '../src/log';
import { Metrics } from '../src/metrics';
import { ConfigStore } from '../src/snapshot/store';
import { percentiles } from '../src/warmup/load';
import { createDatabase, envNumber, machine } from './lib';

const TENANTS = Math.max(1, envNumber('BENCH_CONFIG_TENANTS', 10_000));
const POLLS = Math.max(1, envNumber('BENCH_CONFIG_POLLS', 30));
/** Rows an INSERT writes: knex writes a batch on SQLite as one compound SELECT, of at most 500 terms. */
const INSERT_ROWS = 400;
const CALL_TYPES = ['local', 'long_distance', 'mobile', 'international'] as const;

type Row = Record<string, unknown>;

/** The rows of `count` tenants of the demo's shape, table by table (parents first). */
export function carrierRows(count: number): Array<[string, Row[]]> {
  const tenants: Row[] = [];
  const numbers: Row[] = [];
  const groups: Row[] = [];
  const destinations: Row[] = [];
  const rules: Row[] = [];
  const rates: Row[] = [];
  for (let id = 1; id <= count; id++) {
    tenants.push({ id, name: `Tenant ${id}`, status: 'active', timezone: 'Asia/Shanghai' });
    numbers.push({ id, tenant_id: id, number: String(4_000_000_000 + id), kind: 'hotline' });
    groups.push({ id, tenant_id: id, name: 'Sales', strategy: 'sequential' });
    for (let k = 0; k < 3; k++) destinations.push({ id: id * 3 + k, group_id: id, number: String(13_800_000_000 + id * 3 + k), position: k + 1 });
    rules.push({ id, tenant_id: id, priority: 10, action: 'group', target_id: id });
    for (const [k, callType] of CALL_TYPES.entries()) rates.push({ id: id * 4 + k, tenant_id: id, call_type: callType, per_minute: '0.1000' });
  }
  return [['tenants', tenants], ['access_numbers', numbers], ['destination_groups', groups], ['destinations', destinations], ['routing_rules', rules], ['rates', rates]];
}

/** How long `work` takes and the longest wait of the event loop meanwhile (a setImmediate loop beside it), in ms. */
async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number; longestWaitMs: number }> {
  let last = performance.now();
  let longest = 0;
  let on = true;
  const tick = (): void => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  const started = performance.now();
  try {
    const result = await work();
    const ms = performance.now() - started;
    // The wait that ends with the work (its last synchronous stretch) is counted too.
    await new Promise((resolve) => setImmediate(resolve));
    return { result, ms, longestWaitMs: longest };
  } finally {
    on = false;
  }
}

const f = (ms: number): string => ms.toFixed(ms < 10 ? 2 : 1);

export interface ConfigBenchResult {
  db: string;
  start: { ms: number; longestWaitMs: number };
  polls: Array<{ ms: number; longestWaitMs: number }>;
  reload: { ms: number; longestWaitMs: number };
}

/**
 * Writes `tenants` tenants into the empty database at `url` (migrated here), then starts a store
 * on it, polls `polls` times and once after an edit; throws when a check fails.
 */
export async function measure(db: 'sqlite' | 'mariadb', url: string, tenants: number, polls: number): Promise<ConfigBenchResult> {
  const knex: Knex = createKnex(url);
  try {
    await migrateLatest(knex);
    for (const [table, rows] of carrierRows(tenants)) await knex.batchInsert(table, rows, INSERT_ROWS);
    const store = new ConfigStore(knex, { pollIntervalMs: 3_600_000, fullReloadIntervalS: 86_400 }, createLogger('silent'), new Metrics(), undefined, db === 'sqlite' ? { reader: () => openSqliteReader(url) } : {});
    try {
      const start = await timed(() => store.start());
      const s = store.current;
      if (s.tenants.size !== tenants || s.rejected.length > 0) throw new Error(`${db}: ${s.tenants.size} of ${tenants} tenants in force, ${s.rejected.length} finding(s): ${JSON.stringify(s.rejected.slice(0, 3))}`);
      const quiet: Array<{ ms: number; longestWaitMs: number }> = [];
      for (let i = 0; i < polls; i++) {
        const poll = await timed(() => store.poll());
        if (poll.result) throw new Error(`${db}: a poll with nothing changed reloaded`);
        quiet.push(poll);
        // Apart, as the daemon's polls are: the loop's check does not straddle two polls.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      // A second later, so that updated_at moves on any precision.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const edited = tenants * 3 + 1;
      await knex.raw('UPDATE destinations SET number = ? WHERE id = ?', ['13999999999', edited]);
      const reload = await timed(() => store.poll());
      const group = store.current.groups.get(tenants);
      if (!reload.result || !group?.destinations.some((d) => d.number === '13999999999')) throw new Error(`${db}: the edit was not in force after the poll`);
      return { db, start, polls: quiet, reload };
    } finally {
      await store.stop();
    }
  } finally {
    await knex.destroy();
  }
}

async function main(): Promise<void> {
  process.stdout.write(`machine: ${machine()}\n${TENANTS} tenants (${TENANTS * 11} configuration rows), ${POLLS} polls with nothing changed\n\n`);
  const results: ConfigBenchResult[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-bench-config-'));
  try {
    results.push(await measure('sqlite', `sqlite:${path.join(dir, 'config.db')}`, TENANTS, POLLS));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  let mariadb: { url: string; drop(): Promise<void> } | null = null;
  try {
    mariadb = await createDatabase('hotline_bench_config');
  } catch (err) {
    process.stdout.write(`MariaDB skipped: ${(err as Error).message}\n\n`);
  }
  if (mariadb) {
    try {
      results.push(await measure('mariadb', mariadb.url, TENANTS, POLLS));
    } finally {
      await mariadb.drop();
    }
  }
  process.stdout.write('| database | first load | its longest loop wait | poll, nothing changed: p50 (p90) | its longest loop wait: p50 (p90) | reload after an edit | its longest loop wait |\n');
  process.stdout.write('|---|---|---|---|---|---|---|\n');
  for (const r of results) {
    const pollMs = percentiles(r.polls.map((p) => p.ms));
    const pollWait = percentiles(r.polls.map((p) => p.longestWaitMs));
    process.stdout.write(
      `| ${r.db} | ${f(r.start.ms)} ms | ${f(r.start.longestWaitMs)} ms | ${f(pollMs.p50)} (${f(pollMs.p90)}) ms | ` +
        `${f(pollWait.p50)} (${f(pollWait.p90)}) ms | ${f(r.reload.ms)} ms | ${f(r.reload.longestWaitMs)} ms |\n`,
    );
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    // A failed INSERT's message carries its whole statement: the start of it says enough.
    const text = err instanceof Error ? err.stack ?? err.message : String(err);
    process.stderr.write(`bench:config failed: ${text.length > 2000 ? `${text.slice(0, 2000)}…` : text}\n`);
    process.exit(1);
  });
}
