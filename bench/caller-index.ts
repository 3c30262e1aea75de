/**
 * `npm run bench:caller-index`: what the caller-memory index (src/calls/answered-callers-feed.ts)
 * costs on a carrier-sized `cdrs` in MariaDB. BENCH_CALLER_INDEX_ROWS (1,000,000) CDRs spread
 * evenly over the last CALLER_MEMORY_INDEX_HOURS + 24 hours (the load's margin: every row it
 * reads), two in three answered, of BENCH_CALLER_INDEX_TENANTS (100) tenants and random mobile
 * callers, are inserted into a throw-away database. Then a feed with the daemon's default
 * settings loads them, as a daemon does at start, and reads again as it does every second:
 *  - the load: how long until the index is trusted, rows/s, this process's CPU and mariadbd's,
 *    the longest stall of the event loop meanwhile (calls run on that loop; while the load runs
 *    every lookup asks the database, as without the index), the memory the filters take;
 *  - one read with no new row and one with BENCH_CALLER_INDEX_NEW (1,000) new rows;
 *  - checks that make the run fail: the index is current while it is asked (a copy that is not
 *    says "perhaps" to everything, which would make the next check pass without testing
 *    anything); every answered caller sampled (10,000) from a window of the last
 *    CALLER_MEMORY_INDEX_HOURS - 1 hours, the default lookup's 24, gets "perhaps", never "nobody";
 *    and how often a caller nobody answered gets "perhaps" (a database lookup), for 10,000 such
 *    callers.
 * The machine is stated; mariadbd's CPU is read from /proc when it runs on this machine.
 */
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { AnsweredCallersFeed, ANSWER_MARGIN_MS } from '../src/calls/answered-callers-feed';
import { loadSettings } from '../src/config';
import { createKnex, toDbTimestamp } from '../src/db/connect';
import { migrateLatest } from '../src/db/migrate';
import { createLogger } from '../src/log';
import { cpuSeconds, createDatabase, envNumber, machine, mariadbPid } from './lib';

const ROWS = envNumber('BENCH_CALLER_INDEX_ROWS', 1_000_000);
const TENANTS = Math.max(1, envNumber('BENCH_CALLER_INDEX_TENANTS', 100));
const NEW_ROWS = envNumber('BENCH_CALLER_INDEX_NEW', 1000);
/** Rows a statement of the feed reads (its default when unset). */
const PAGE_ROWS = process.env.BENCH_CALLER_INDEX_PAGE_ROWS ? envNumber('BENCH_CALLER_INDEX_PAGE_ROWS', 0) : undefined;
const SAMPLE = 10_000;
const INSERT_ROWS = 5000;

/** A mobile number that no row of this run holds (the rows' callers start with 13). */
function strangerCaller(i: number): string {
  return `15${String(100_000_000 + i).slice(-9)}`;
}

function randomCaller(): string {
  return `13${String(Math.floor(Math.random() * 1e9)).padStart(9, '0')}`;
}

interface Row {
  tenant: number;
  caller: string;
  startedAt: number;
  answered: boolean;
}

/** The rows, oldest first (ids grow with time, as the daemon writes them). */
function makeRow(i: number, rows: number, spanMs: number, now: number): Row {
  return {
    tenant: 1 + (i % TENANTS),
    caller: randomCaller(),
    startedAt: now - spanMs + Math.floor((i / rows) * (spanMs - 60_000)),
    answered: i % 3 !== 2,
  };
}

function valuesOf(row: Row): string {
  const started = toDbTimestamp(new Date(row.startedAt));
  const answeredAt = row.answered ? `'${toDbTimestamp(new Date(row.startedAt + 8000))}'` : 'NULL';
  const answeredBy = row.answered ? "'13800000001'" : 'NULL';
  const outcome = row.answered ? 'answered' : 'no_answer';
  // Digits, a UUID, timestamps and fixed words only: nothing to escape.
  return `('${randomUUID()}',${row.tenant},'4001012345','${row.caller}','${started}',${answeredAt},${answeredBy},'${outcome}')`;
}

async function insertRows(knex: ReturnType<typeof createKnex>, rows: Row[]): Promise<void> {
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < rows.length; i += INSERT_ROWS) {
    const values = rows.slice(i, i + INSERT_ROWS).map(valuesOf).join(',');
    pending.push(knex.raw(`INSERT INTO cdrs (call_uuid, tenant_id, access_number, caller, started_at, answered_at, answered_by, outcome) VALUES ${values}`));
    if (pending.length >= 4) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

function fmt(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function main(): Promise<void> {
  process.stdout.write(`machine: ${machine()}\n`);
  const settings = loadSettings({ env: {} });
  const { indexHours, indexBitsPerHour, indexPollMs } = settings.callerMemory;
  const spanMs = indexHours * 3_600_000 + ANSWER_MARGIN_MS;
  const db = await createDatabase('hotline_bench_caller_index');
  const knex = createKnex(db.url, { poolMax: 4 });
  const failures: string[] = [];
  try {
    await migrateLatest(knex);
    const now = Date.now();
    const rows = Array.from({ length: ROWS }, (_, i) => makeRow(i, ROWS, spanMs, now));
    const fillStart = process.hrtime.bigint();
    await insertRows(knex, rows);
    const fillS = Number(process.hrtime.bigint() - fillStart) / 1e9;
    const answeredInWindow = rows.filter((r) => r.answered && r.startedAt + 8000 >= now - indexHours * 3_600_000).length;
    process.stdout.write(
      `cdrs: ${ROWS.toLocaleString('en-US')} rows over the last ${indexHours} + 24 hours, ${TENANTS} tenants, ` +
        `${answeredInWindow.toLocaleString('en-US')} answered within ${indexHours} hours (inserted in ${fmt(fillS)} s)\n`,
    );
    await knex.raw('ANALYZE TABLE cdrs');

    const feed = new AnsweredCallersFeed(knex, { hours: indexHours, bitsPerHour: indexBitsPerHour, pollMs: indexPollMs, pageRows: PAGE_ROWS }, createLogger('warn'));
    const maria = mariadbPid();
    const delay = monitorEventLoopDelay({ resolution: 1 });
    const cpu0 = process.cpuUsage();
    const maria0 = maria === null ? Number.NaN : cpuSeconds(maria);
    delay.enable();
    const t0 = process.hrtime.bigint();
    await feed.readNow();
    const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
    delay.disable();
    const cpu = process.cpuUsage(cpu0);
    const mariaS = maria === null ? Number.NaN : cpuSeconds(maria) - maria0;
    if (!feed.current()) failures.push('the index is not current after its load');
    const loadRows = feed.loadedRows;

    const timedRead = async (): Promise<number> => {
      const start = process.hrtime.bigint();
      await feed.readNow();
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    await timedRead(); // the first after the load, untimed: a warm-up of the statement
    const idleMs = await timedRead();
    const fresh = Array.from({ length: NEW_ROWS }, () => ({ tenant: 1 + Math.floor(Math.random() * TENANTS), caller: randomCaller(), startedAt: Date.now() - 20_000, answered: true }));
    await insertRows(knex, fresh);
    const rowsBefore = feed.stats.rows;
    const newMs = await timedRead();
    const newAdded = feed.stats.rows - rowsBefore;

    // Checks: a "nobody" for an answered caller would ring the wrong phone.
    const since = new Date(Date.now() - indexHours * 3_600_000 + 3_600_000);
    const answered = [...rows.filter((r) => r.answered && r.startedAt + 8000 >= since.getTime()), ...fresh];
    if (!feed.current()) failures.push('the index was not current when the checks began: they would test nothing');
    let wrongNobody = 0;
    const step = Math.max(1, Math.floor(answered.length / SAMPLE));
    let sampled = 0;
    for (let i = 0; i < answered.length; i += step) {
      sampled++;
      if (feed.answeredNone(answered[i].tenant, answered[i].caller, since)) wrongNobody++;
    }
    let perhaps = 0;
    for (let i = 0; i < SAMPLE; i++) if (!feed.answeredNone(1 + (i % TENANTS), strangerCaller(i), since)) perhaps++;
    if (!feed.current()) failures.push('the index was not current when the checks ended: they tested nothing');
    if (wrongNobody > 0) failures.push(`the index said "nobody" for ${wrongNobody} answered callers`);

    const filtersMb = (feed.index.hoursHeld * Math.ceil(indexBitsPerHour / 32) * 4) / 2 ** 20;
    // The load reads the answered rows that started at most hours + 24 h before it began: all
    // but those of the first seconds of the span (the fill took that long).
    const answeredRead = rows.filter((r) => r.answered).length;
    process.stdout.write(
      [
        '',
        '| measure | value |',
        '|---|---|',
        `| load: until the index is trusted | ${fmt(loadS, 2)} s |`,
        `| load: CPU of this process | ${fmt(cpu.user / 1e6 + cpu.system / 1e6, 2)} s (${fmt(((cpu.user + cpu.system) / Math.max(1, answeredRead)) * 1000, 0)} ns an answered row) |`,
        `| load: CPU of mariadbd | ${Number.isNaN(mariaS) ? 'not on this machine' : `${fmt(mariaS, 2)} s`} |`,
        `| load: longest event-loop stall | ${fmt(delay.max / 1e6)} ms (p99 ${fmt(delay.percentile(99) / 1e6)} ms) |`,
        `| load: answered rows in cdrs | ${answeredRead.toLocaleString('en-US')} (the load reads those that started within the last ${indexHours} + 24 hours); it added ${loadRows.toLocaleString('en-US')}, answered within the last ${indexHours} + 1 hours |`,
        `| filters' memory | ${fmt(filtersMb)} MB (${feed.index.hoursHeld} filters of ${indexBitsPerHour.toLocaleString('en-US')} bits) |`,
        `| a read with no new row | ${fmt(idleMs, 2)} ms |`,
        `| a read with ${NEW_ROWS.toLocaleString('en-US')} new rows | ${fmt(newMs, 2)} ms (${newAdded.toLocaleString('en-US')} added) |`,
        `| answered callers sampled that got "nobody" (must be 0) | ${wrongNobody} of ${sampled.toLocaleString('en-US')} |`,
        `| callers nobody answered that got "perhaps" (a database lookup) | ${fmt((100 * perhaps) / SAMPLE, 2)} % of ${SAMPLE.toLocaleString('en-US')} |`,
        '',
      ].join('\n'),
    );
    await feed.stop();
  } finally {
    await knex.destroy();
    await db.drop();
  }
  for (const failure of failures) process.stdout.write(`FAIL: ${failure}\n`);
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
