// State shared by every daemon while calls run: PIN lockouts (brute-force guard) and the
// round-robin position of each destination group.
import type { Knex } from 'knex';
import { createTable, dropTable, ref, utcDatetime } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'pin_lockouts', 'callers locked out after repeated wrong PINs', (t) => {
    ref(t, 'tenant_id').notNullable().comment('tenants.id');
    t.string('caller', 64).notNullable().comment('caller number as received');
    t.integer('failures').notNullable().defaultTo(0).comment('failed PIN calls since the last success or lockout');
    utcDatetime(knex, t, 'locked_until').nullable().comment('UTC; NULL = not locked');
    t.unique(['tenant_id', 'caller']);
  });
  await createTable(knex, 'group_rotation', 'round-robin position per destination group', (t) => {
    ref(t, 'group_id').notNullable().unique().comment('destination_groups.id');
    t.bigInteger('next_index').notNullable().defaultTo(0).comment('calls handed out so far; position = next_index mod size');
  });
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'group_rotation');
  await dropTable(knex, 'pin_lockouts');
}
