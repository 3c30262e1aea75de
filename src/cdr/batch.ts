/**
 * One batch of CDRs into the database, in one transaction: multi-row INSERTs that skip calls
 * already written (idempotent by call_uuid), then one charge for the rows that are new (one
 * tenant_usage upsert per tenant and period, one balance UPDATE per tenant: chargeNewCdrs), the
 * missed-call notifications of the new rows, and the calls' live_calls rows removed. A batch
 * replayed after a crash finds its rows present, inserts nothing and charges nothing.
 *
 * A batch is split into statements that fit the database's limits: MariaDB's max_allowed_packet
 * (read once per database, the statement's size estimated from its values), SQLite's 32,766
 * bound variables per statement. All statements of a batch share its transaction.
 *
 * Which rows are new is decided by the database, not by a read before the insert:
 *  - SQLite: `INSERT … ON CONFLICT (call_uuid) DO NOTHING RETURNING call_uuid` returns exactly
 *    the rows it inserted.
 *  - MariaDB: `INSERT … ON DUPLICATE KEY UPDATE call_uuid = call_uuid` (not INSERT IGNORE, which
 *    would turn data errors into warnings). Its OK packet says "Records: n  Duplicates: d": with
 *    d = 0 every row of the statement is new. Otherwise every row carries the batch's fresh
 *    `write_batch` token and a duplicate keeps the token of whoever inserted it first, so a
 *    SELECT by token tells ours apart. Two daemons writing the same call at once are serialised
 *    by the unique key on call_uuid; only the one whose insert won sees the row as its own.
 * Rows are sorted by call_uuid so concurrent batches lock keys in the same order.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { escape } from 'mysql2';
import { lateReportPeriods, recordLateMarks } from '../billing/late-cdrs';
import { chargeNewCdrs, costedCdrs, fitCost, readBatchTenants, type CappedCharge } from '../billing/usage';
import { dbKind } from '../db/connect';
import { durableTransaction } from '../db/durable-transaction';
import { withLockRetry } from '../db/lock-retry';
import { itemsThatStayCompiled, repeatableChunks } from '../db/sqlite-statements';
import { parseMoneyCapped } from '../domain/money';
import { missedCallsOf, queueMissedCalls } from '../notify';
import type { Tenant } from '../snapshot/types';
import { liveTenantZone } from '../snapshot/zones';
import type { CdrRecord } from './record';

export { isLockConflict } from '../db/lock-retry';

/** What one batch did: new rows, and the charges cut to what the money columns hold. */
export interface WriteResult {
  fresh: number;
  capped: CappedCharge[];
}

/** What a batch reads of a tenant in force: its zone (charging, lateness) and missed-call address. */
export type BatchTenantFacts = Pick<Tenant, 'id' | 'timezone' | 'missedCallNotify'>;

/** The tenants in force, for missed-call notifications (the configuration snapshot). */
export type TenantsOf = () => ReadonlyMap<number, BatchTenantFacts>;

export type CdrDataErrorCode = 'CDR_NOT_AN_OBJECT' | 'CDR_BAD_CALL_UUID' | 'CDR_BAD_COLUMN' | 'CDR_BAD_VALUE' | 'CDR_BAD_COST';

/** A spooled record that cannot be a cdrs row whatever the database says: it goes to quarantine. */
export class CdrDataError extends Error {
  constructor(
    readonly code: CdrDataErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CdrDataError';
  }
}

const COLUMN = /^[a-z_][a-z0-9_]{0,63}$/;
/** The columns a CdrRecord has (checked without the pattern: most records have only these). */
const KNOWN_COLUMNS: ReadonlySet<string> = new Set([
  'call_uuid', 'tenant_id', 'access_number', 'caller', 'caller_region', 'started_at', 'answered_at', 'ended_at', 'duration_s', 'billsec', 'outcome',
  'hangup_cause', 'answered_by', 'group_id', 'ivr_path', 'cost', 'recording_path', 'node', 'call_type', 'admitted', 'origin', 'widget_id', 'visitor_ring_s', 'visitor_cost',
]);

/**
 * Whether a parsed spool line can be written as a cdrs row: an object with a call_uuid, column
 * names that are plain identifiers, scalar values, a cost that is an amount of money (charging
 * reads it; SQLite would store any text). Unknown but well-formed columns are left to the
 * database, which refuses them as a schema problem (the record waits in the spool).
 */
export function checkRecord(value: unknown): { ok: true; record: CdrRecord } | { ok: false; error: CdrDataError } {
  const fail = (code: CdrDataErrorCode, message: string): { ok: false; error: CdrDataError } => ({ ok: false, error: new CdrDataError(code, message) });
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail('CDR_NOT_AN_OBJECT', 'a spool line must be a JSON object');
  const r = value as Record<string, unknown>;
  if (typeof r.call_uuid !== 'string' || r.call_uuid === '') return fail('CDR_BAD_CALL_UUID', 'call_uuid must be a non-empty string');
  for (const column of Object.keys(r)) {
    const v = r[column];
    if (!KNOWN_COLUMNS.has(column) && !COLUMN.test(column)) return fail('CDR_BAD_COLUMN', `not a column name: ${JSON.stringify(column.slice(0, 80))}`);
    if (v !== null && v !== undefined && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return fail('CDR_BAD_VALUE', `${column} must be text, a number or null`);
    if (typeof v === 'number' && !Number.isFinite(v)) return fail('CDR_BAD_VALUE', `${column} must be a finite number`);
  }
  if (r.cost !== null && r.cost !== undefined) {
    try {
      parseMoneyCapped(r.cost);
    } catch {
      return fail('CDR_BAD_COST', `cost is not an amount of money: ${JSON.stringify(r.cost).slice(0, 40)}`);
    }
  }
  return { ok: true, record: r as unknown as CdrRecord };
}

/** Writes and charges one batch in its own transaction (retried on lock conflicts); returns the new rows. */
export async function writeCdrs(knex: Knex, records: readonly CdrRecord[], tenants?: TenantsOf): Promise<number> {
  return (await writeCdrBatch(knex, records, tenants)).fresh;
}

export async function writeCdrBatch(knex: Knex, records: readonly CdrRecord[], tenants?: TenantsOf, now?: () => Date): Promise<WriteResult> {
  const limits = await statementLimits(knex);
  try {
    // On disk when it resolves (the spool then deletes the batch's segment), without a sync on the event loop.
    return await withLockRetry(() => durableTransaction(knex, (trx) => insertAndCharge(trx, records, tenants, limits, now?.())), { attempts: 4, sqliteBusy: true });
  } catch (err) {
    // max_allowed_packet lowered since it was read: read it again before the retry.
    if ((err as { code?: string } | null)?.code === 'ER_NET_PACKET_TOO_LARGE') packetOf.delete(configOf(knex));
    throw err;
  }
}

function configOf(db: Knex | Knex.Transaction): object {
  // A transaction's client shares its pool's config object: one read for both.
  return (db as unknown as { client: { config: object } }).client.config;
}

/**
 * One batch inside a transaction: insert (duplicates by call_uuid are no-ops), charge the rows
 * this transaction inserted, mark the report periods they reach late (billing/late-cdrs.ts: their
 * report may be made already), queue their missed-call notifications, drop the calls from
 * live_calls. The batch's tenants are read once, for charging and marks. Throws CdrDataError for
 * a record that cannot be a row (see checkRecord). `now`: when the batch is written (lateness).
 */
export async function insertAndCharge(trx: Knex.Transaction, records: readonly CdrRecord[], tenants?: TenantsOf, limits?: StatementLimits, now: Date = new Date()): Promise<WriteResult> {
  const lim = limits ?? (await statementLimits(trx));
  const batch = randomUUID();
  const byUuid = new Map<string, CdrRecord>();
  const costCapped = new Map<string, CappedCharge>();
  for (const r of records) {
    const checked = checkRecord(r);
    if (!checked.ok) throw checked.error;
    if (byUuid.has(r.call_uuid)) continue;
    // A cost cdrs.cost cannot hold is cut to its maximum: refused, the CDR would be quarantined.
    const { cdr, capped } = fitCost(r);
    byUuid.set(r.call_uuid, cdr);
    if (capped) costCapped.set(r.call_uuid, capped);
  }
  const uuids = [...byUuid.keys()].sort();
  const rows = uuids.map((u) => byUuid.get(u) as unknown as Record<string, unknown>);
  const inserted = await insertNew(trx, rows, batch, lim);
  const fresh = uuids.filter((u) => inserted.has(u)).map((u) => byUuid.get(u) as CdrRecord);
  // The snapshot's tenants once a batch: their zones for charging and marks, their missed-call
  // addresses. With a snapshot in force the zones are its own, so the tenants rows are read only
  // for the balances of the tenants this batch charges; without one (tools), for every tenant's zone.
  const inForce = tenants?.();
  const batchTenants = await readBatchTenants(trx, tenantIdsOf(inForce ? costedCdrs(fresh) : fresh), inForce);
  const charged = await chargeNewCdrs(trx, fresh, batchTenants);
  const zones = inForce ? new Map(tenantIdsOf(fresh).map((id) => [id, liveTenantZone(inForce, id)])) : new Map([...batchTenants].map(([id, t]) => [id, t.zone]));
  const late = lateReportPeriods(fresh, zones, now);
  if (late.length > 0) await recordLateMarks(trx, late, now);
  // Missed calls of new CDRs queue their notification in the same transaction: once per call.
  if (inForce) {
    const missed = missedCallsOf(inForce, fresh);
    // queueMissedCalls is one knex multi-row insert: on SQLite a compound SELECT of at most 500 terms.
    for (let i = 0; i < missed.length; i += 400) await queueMissedCalls(trx, missed.slice(i, i + 400));
  }
  for (let i = 0; i < uuids.length; i += lim.inList) await trx('live_calls').whereIn('call_uuid', uuids.slice(i, i + lim.inList)).delete();
  const costs = fresh.flatMap((r) => costCapped.get(r.call_uuid) ?? []);
  return { fresh: fresh.length, capped: [...costs, ...charged.capped] };
}

/** The tenants of these CDRs, each once, in ascending order (the order rows are locked in). */
function tenantIdsOf(cdrs: ReadonlyArray<{ tenant_id: number | null }>): number[] {
  return [...new Set(cdrs.flatMap((r) => (typeof r.tenant_id === 'number' ? [r.tenant_id] : [])))].sort((a, b) => a - b);
}

/** How big one statement may be on this database. */
export interface StatementLimits {
  kind: 'mysql' | 'sqlite';
  /** Bound variables per statement (SQLite); Infinity where the driver interpolates (mysql2). */
  variables: number;
  /** Bytes of SQL per statement (MariaDB: half of max_allowed_packet); Infinity for SQLite. */
  bytes: number;
  /** call_uuids per IN list. */
  inList: number;
}

/** SQLITE_MAX_VARIABLE_NUMBER as SQLite ≥ 3.32 (and better-sqlite3's build) has it. */
export const SQLITE_MAX_VARIABLES = 32_766;
/** At most this many rows per INSERT, whatever the limits allow: keeps one statement modest. */
const MAX_ROWS_PER_STATEMENT = 5000;

const packetOf = new WeakMap<object, Promise<number>>();

/** The database's limits; MariaDB's max_allowed_packet is read once per connection pool. */
export async function statementLimits(db: Knex | Knex.Transaction): Promise<StatementLimits> {
  if (dbKind(db as Knex) === 'sqlite') return { kind: 'sqlite', variables: SQLITE_MAX_VARIABLES, bytes: Infinity, inList: 10_000 };
  const key = configOf(db);
  let packet = packetOf.get(key);
  if (!packet) {
    packet = (async () => {
      const [rows] = (await db.raw('SELECT @@max_allowed_packet AS p')) as [Array<{ p: number | string }>];
      return Number(rows[0]?.p);
    })();
    packetOf.set(key, packet);
    packet.catch(() => packetOf.delete(key));
  }
  const bytes = await packet;
  return { kind: 'mysql', variables: Infinity, bytes: Number.isFinite(bytes) && bytes > 0 ? Math.floor(bytes / 2) : 1 << 20, inList: 5000 };
}

/** A value as MariaDB SQL text (mysql2's own escaping, as when it fills in bindings). */
function sqlValue(v: unknown): string {
  return typeof v === 'boolean' ? (v ? '1' : '0') : escape(v as string | number | null);
}

/**
 * Inserts rows (one or more statements), skipping call_uuids already present; returns the
 * call_uuids this transaction inserted. Rows with different column sets (a column left to its
 * default) go in separate statements: a multi-row VALUES names the same columns for every row.
 */
async function insertNew(trx: Knex.Transaction, rows: ReadonlyArray<Record<string, unknown>>, batch: string, lim: StatementLimits): Promise<Set<string>> {
  const groups = new Map<string, { columns: string[]; rows: Array<Record<string, unknown>> }>();
  for (const row of rows) {
    // write_batch is added to every row as the statement is built (no copy of the row).
    const columns = Object.keys(row).filter((c) => row[c] !== undefined && c !== 'write_batch');
    const key = columns.join(',');
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { columns, rows: [] }));
    g.rows.push(row);
  }
  const inserted = new Set<string>();
  const toCheck: string[] = [];
  for (const { columns, rows: group } of groups.values()) {
    if (lim.kind === 'sqlite') {
      for (const r of await insertSqlite(trx, columns, group, batch, lim)) inserted.add(r);
    } else {
      const { uuids, allNew } = await insertMysql(trx, columns, group, batch, lim);
      if (allNew) for (const u of uuids) inserted.add(u);
      else toCheck.push(...uuids);
    }
  }
  for (let i = 0; i < toCheck.length; i += lim.inList) {
    const mine: Array<{ call_uuid: string }> = await trx('cdrs').whereIn('call_uuid', toCheck.slice(i, i + lim.inList)).andWhere('write_batch', batch).select('call_uuid');
    for (const r of mine) inserted.add(r.call_uuid);
  }
  return inserted;
}

/**
 * Most rows in one SQLite INSERT, and fewer when the text would be too long to stay compiled
 * (`itemsThatStayCompiled`: 32-row statements when every cdrs column is set). A batch is cut into
 * statements of a few fixed row counts (`repeatableChunks`) that src/db/sqlite-statements.ts keeps
 * compiled, instead of SQLite parsing and planning a new text of every batch's size
 * (bench/PROFILE.md, release 8).
 */
const SQLITE_ROWS_PER_STATEMENT = 64;

/** SQLite: bound variables (at most lim.variables a statement); RETURNING names the inserted rows. */
async function insertSqlite(trx: Knex.Transaction, columns: readonly string[], rows: ReadonlyArray<Record<string, unknown>>, batch: string, lim: StatementLimits): Promise<string[]> {
  const head = `INSERT INTO "cdrs" (${columns.map((c) => `"${c}"`).join(', ')}, "write_batch") VALUES `;
  const tuple = `(${columns.map(() => '?').join(', ')}, ?)`;
  const tail = ' ON CONFLICT ("call_uuid") DO NOTHING RETURNING "call_uuid"';
  const perStatement = Math.max(1, Math.min(SQLITE_ROWS_PER_STATEMENT, Math.floor(lim.variables / (columns.length + 1)), itemsThatStayCompiled(head.length + tail.length, tuple.length, 2)));
  const out: string[] = [];
  let start = 0;
  for (const size of repeatableChunks(rows.length, perStatement)) {
    const chunk = rows.slice(start, start + size);
    start += size;
    const bindings: Knex.RawBinding[] = [];
    for (const row of chunk) {
      for (const c of columns) bindings.push(row[c] as Knex.RawBinding);
      bindings.push(batch);
    }
    const returned: Array<{ call_uuid: string }> = await trx.raw(`${head}${chunk.map(() => tuple).join(', ')}${tail}`, bindings);
    for (const r of returned) out.push(r.call_uuid);
  }
  return out;
}

/**
 * MariaDB: the values escaped into the statement (knex's handling of tens of thousands of
 * bindings cost more than the insert), each statement at most lim.bytes long. allNew: every
 * statement's OK packet said "Duplicates: 0".
 */
async function insertMysql(trx: Knex.Transaction, columns: readonly string[], rows: ReadonlyArray<Record<string, unknown>>, batch: string, lim: StatementLimits): Promise<{ uuids: string[]; allNew: boolean }> {
  const head = `INSERT INTO \`cdrs\` (${columns.map((c) => `\`${c}\``).join(', ')}, \`write_batch\`) VALUES `;
  const token = `, ${sqlValue(batch)})`;
  const tail = ' ON DUPLICATE KEY UPDATE `call_uuid` = `call_uuid`';
  const uuids: string[] = [];
  let allNew = true;
  let tuples: string[] = [];
  let bytes = head.length + tail.length;
  const send = async (): Promise<void> => {
    const header = await queryOnTransaction(trx, `${head}${tuples.join(', ')}${tail}`);
    if (duplicatesOf(header) !== 0) allNew = false;
    tuples = [];
    bytes = head.length + tail.length;
  };
  for (const row of rows) {
    let tuple = '(';
    for (let i = 0; i < columns.length; i++) tuple += (i === 0 ? '' : ', ') + sqlValue(row[columns[i]]);
    tuple += token;
    const size = Buffer.byteLength(tuple) + 2;
    if (tuples.length > 0 && (bytes + size > lim.bytes || tuples.length >= MAX_ROWS_PER_STATEMENT)) await send();
    tuples.push(tuple);
    bytes += size;
    uuids.push(String(row.call_uuid));
  }
  if (tuples.length > 0) await send();
  return { uuids, allNew };
}

/**
 * One statement on the transaction's own mysql2 connection (knex hands it out for the
 * transaction: `client.acquireConnection`), past knex's query runner: that runner copies every
 * statement to escape it for its debug log (10 % of the writer's CPU with 1 MB statements,
 * bench/PROFILE.md) and, on an error, puts the whole statement in front of the message, which then
 * reaches the log and the quarantine file.
 */
function queryOnTransaction(trx: Knex.Transaction, sql: string): Promise<{ info?: string } | undefined> {
  const client = trx.client as Knex.Client;
  // knex's own 'query' event still fires, as for every other statement (observers, tests).
  client.emit('query', { method: 'raw', sql, bindings: [] });
  return Promise.resolve(client.acquireConnection() as unknown).then(
    (conn) =>
      new Promise((resolve, reject) => {
        (conn as MysqlConnection).query(sql, (err, result) => (err ? reject(err) : resolve(result as { info?: string } | undefined)));
      }),
  );
}

interface MysqlConnection {
  query(sql: string, callback: (err: Error | null, result: unknown) => void): void;
}

/** "Records: 3  Duplicates: 0  Warnings: 0" of a multi-row INSERT's OK packet; null when it does not say. */
function duplicatesOf(header: { info?: string } | undefined): number | null {
  const m = /Duplicates:\s*(\d+)/.exec(header?.info ?? '');
  return m ? Number(m[1]) : null;
}

/**
 * The cdrs column a refusal says must have a value, when no record of the batch writes it: a DBA
 * added a NOT NULL column without a default (MariaDB ER_NO_DEFAULT_FOR_FIELD; SQLite's NOT NULL
 * constraint, on a table rebuilt with such a column). Every record is refused that way, so it is
 * the table's fault, not a record's: the writer keeps them in the spool, as in an outage, rather
 * than quarantine the whole stream. A refused NULL the record itself carries stays a data error.
 */
export function requiredColumnNotWritten(err: unknown, records: readonly CdrRecord[]): string | null {
  if (!err || typeof err !== 'object') return null;
  const e = err as { code?: string; message?: string; sqlMessage?: string };
  const text = e.sqlMessage ?? e.message ?? '';
  const column =
    e.code === 'ER_NO_DEFAULT_FOR_FIELD' ? /Field '([^']+)'/.exec(text)?.[1]
    : e.code === 'SQLITE_CONSTRAINT_NOTNULL' ? /NOT NULL constraint failed: (?:[^.\s]+\.)?([^\s.]+)/.exec(text)?.[1]
    : undefined;
  if (column === undefined || column === 'write_batch') return null;
  return records.some((r) => (r as unknown as Record<string, unknown>)[column] !== undefined) ? null : column;
}

/** Errors that are about the data (retrying will not help) rather than the connection. */
export function isDataError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  if (err instanceof CdrDataError) return true;
  const e = err as { code?: string; sqlState?: string };
  if (typeof e.sqlState === 'string' && /^2[23]/.test(e.sqlState)) return true;
  if (typeof e.code === 'string') {
    if (/^ER_(DATA_|TRUNCATED|BAD_NULL|WARN_DATA|WRONG_VALUE|INVALID|NO_DEFAULT|DUP_ENTRY|CHECK_CONSTRAINT)/.test(e.code)) return true;
    if (/^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG)/.test(e.code)) return true;
  }
  return false;
}

/**
 * The error as logged and filed with a quarantined record. knex puts the whole statement in front
 * of the database's message (`<sql> - <reason>`), up to megabytes for a batch: only the end, where
 * the reason is, is kept.
 */
export function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  return `${e.code ?? 'ERROR'}: ${message.length > MAX_ERROR_TEXT ? `…${message.slice(-MAX_ERROR_TEXT)}` : message}`;
}

const MAX_ERROR_TEXT = 500;
