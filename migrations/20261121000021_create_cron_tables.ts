// cron_leases: one row per job; whoever moves last_tick forward runs that tick (once across every
// daemon sharing the database); holder/expires_at say who runs it now. cron_runs: every run.
import type { Knex } from 'knex';
import { createTable, dropTable, utcDatetime } from './lib/timestamps';

export async function up(knex: Knex): Promise<void> {
  await createTable(knex, 'cron_leases', 'which daemon runs each cron job, and up to which tick', (t) => {
    t.string('job', 96).notNullable().unique().comment('job name (node-local jobs: name@node)');
    t.string('holder', 128).nullable().comment('daemon running it now; NULL = nobody');
    utcDatetime(knex, t, 'last_tick').nullable().comment('latest scheduled time claimed (UTC); a tick runs at most once');
    utcDatetime(knex, t, 'expires_at').nullable().comment('the holder must renew before this (UTC), else the lease is free');
  });
  await createTable(
    knex,
    'cron_runs',
    'every cron job run: when, where, how much, and how it ended',
    (t) => {
      t.string('job', 64).notNullable().comment('caps | live_calls | reports | retention');
      t.string('node', 64).notNullable().comment('daemon that ran it');
      utcDatetime(knex, t, 'tick').notNullable().comment('scheduled time of the run (UTC)');
      utcDatetime(knex, t, 'started_at').notNullable().comment('UTC');
      utcDatetime(knex, t, 'ended_at').nullable().comment('UTC; NULL = still running, or the daemon died');
      t.string('status', 8).notNullable().defaultTo('running').comment('running | ok | error');
      t.integer('rows_touched').notNullable().defaultTo(0).comment('rows the run inserted, changed or deleted');
      t.string('error', 1024).nullable().comment('why it failed');
      t.index(['job', 'started_at']);
    },
    { bigId: true },
  );
}

export async function down(knex: Knex): Promise<void> {
  await dropTable(knex, 'cron_runs');
  await dropTable(knex, 'cron_leases');
}
