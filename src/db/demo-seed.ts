// A working demo configuration for a fresh database, so a first call to 4001012345 routes somewhere.
import type { Knex } from 'knex';
import { dbKind } from './connect';
import { withLockRetry } from './lock-retry';

const DEMO_NUMBER = '4001012345';

/**
 * The demo tenant's rows without their ids and links, shared with the start-up warm-up
 * (src/warmup/warm-up.ts), whose in-memory tenant has the same shape.
 */
export const DEMO_TENANT = { name: 'Demo Trading Co.', status: 'active', timezone: 'Asia/Shanghai', balance: null } as const; // balance NULL: postpaid
export const DEMO_GROUP = { name: 'Sales', strategy: 'sequential', ring_timeout_s: 15 } as const;
export const DEMO_PHONES = [
  { number: '13800000001', position: 1, enabled: 1 },
  { number: '13800000002', position: 2, enabled: 1 },
] as const;
export const DEMO_RULE = { priority: 10, percent: 100, action: 'group', enabled: 1 } as const;

// Default rates (tenant_id NULL). Money as strings: exact on MySQL DECIMAL.
export const DEFAULT_RATES = [
  { call_type: 'local', per_minute: '0.1000', increment_s: 60, connect_fee: '0.0000' },
  { call_type: 'long_distance', per_minute: '0.2000', increment_s: 60, connect_fee: '0.0000' },
  { call_type: 'mobile', per_minute: '0.1500', increment_s: 60, connect_fee: '0.0000' },
  { call_type: 'international', per_minute: '1.5000', increment_s: 60, connect_fee: '0.0000' },
] as const;

/** Seed the demo tenant when `tenants` is empty; returns true when it seeded. */
export async function seedDemoIfEmpty(knex: Knex): Promise<boolean> {
  // Daemons starting together on MySQL: each holds the empty range's gap lock, so InnoDB rolls back
  // all but one inserter as deadlock victims, and with three or more a victim's second try can meet
  // another victim's second try. The transaction is undone whole each time; a retry looks again and
  // finds the winner's tenant. A stubborn conflict after every attempt is thrown, not swallowed.
  return withLockRetry(() => seedOnce(knex), { attempts: 10 });
}

async function seedOnce(knex: Knex): Promise<boolean> {
  return knex.transaction(async (trx) => {
    // On MySQL, FOR UPDATE locks the (empty) index range so two daemons starting together
    // cannot both seed: the others wait, then see the winner's tenant. SQLite has one writer.
    const probe = trx('tenants').select('id').limit(1);
    const existing: unknown[] = await (dbKind(knex) === 'mysql' ? probe.forUpdate() : probe);
    if (existing.length > 0) return false;

    const [tenantId] = await trx('tenants').insert({ ...DEMO_TENANT });
    await trx('access_numbers').insert({ number: DEMO_NUMBER, tenant_id: tenantId, kind: 'hotline', enabled: 1 });
    const [groupId] = await trx('destination_groups').insert({ tenant_id: tenantId, ...DEMO_GROUP });
    await trx('destinations').insert(DEMO_PHONES.map((p) => ({ group_id: groupId, ...p })));
    await trx('routing_rules').insert({ tenant_id: tenantId, ...DEMO_RULE, target_id: groupId });
    // Default rates may already exist (a DBA loaded tariffs before any tenant): do not duplicate.
    const defaults: unknown[] = await trx('rates').whereNull('tenant_id').select('id').limit(1);
    if (defaults.length === 0) {
      await trx('rates').insert(
        DEFAULT_RATES.map((r) => ({ tenant_id: null, ...r })),
      );
    }
    return true;
  });
}
