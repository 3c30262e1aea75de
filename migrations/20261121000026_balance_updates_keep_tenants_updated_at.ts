// The daemon takes every answered call's cost off tenants.balance. That must not look like a
// configuration edit: the snapshot reloads every table when a MAX(updated_at) moves, which would
// be once per poll on a busy system. MySQL: the daemon's UPDATE sets updated_at = updated_at,
// which suppresses ON UPDATE CURRENT_TIMESTAMP. SQLite: the updated_at trigger skips updates that
// change balance and nothing else. (On SQLite a top-up that changes only the balance is then seen
// at the next full reload; the admission check and the cron jobs read balance live anyway.)
import type { Knex } from 'knex';
import { dbKind } from '../src/db/connect';

const TRIGGER = 'tenants_touch_updated_at';
const SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f','now')";

async function createTrigger(knex: Knex, balanceOnlyExempt: boolean): Promise<void> {
  let when = 'NEW.updated_at IS OLD.updated_at';
  if (balanceOnlyExempt) {
    const info: Array<{ name: string }> = await knex.raw('PRAGMA table_info(tenants)');
    const columns = info
      .map((c) => c.name)
      .filter((name) => !['id', 'balance', 'updated_at'].includes(name));
    const unchanged = columns.map((c) => `NEW.${c} IS OLD.${c}`).join(' AND ');
    when += ` AND NOT (NEW.balance IS NOT OLD.balance AND ${unchanged})`;
  }
  await knex.raw(`DROP TRIGGER IF EXISTS ${TRIGGER}`);
  await knex.raw(
    `CREATE TRIGGER ${TRIGGER} AFTER UPDATE ON tenants FOR EACH ROW WHEN ${when} ` +
      `BEGIN UPDATE tenants SET updated_at = ${SQLITE_NOW} WHERE id = NEW.id; END`,
  );
}

export async function up(knex: Knex): Promise<void> {
  if (dbKind(knex) === 'sqlite') await createTrigger(knex, true);
}

export async function down(knex: Knex): Promise<void> {
  if (dbKind(knex) === 'sqlite') await createTrigger(knex, false);
}
