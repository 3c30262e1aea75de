/** `npm run migrate`: applies the knex migrations to DATABASE_URL and says which ran. */
import { loadSettings } from '../config';
import { runCommand } from './run';
import { createKnex } from '../db/connect';
import { MigrationLockWaitError, migrateWithLockWait } from '../db/migrate';

async function main(): Promise<number> {
  const settings = loadSettings();
  const knex = createKnex(settings.database.url);
  try {
    let applied: string[];
    try {
      applied = await migrateWithLockWait(knex, settings.database.url, settings.database.migrationLockWaitS, (message) => process.stderr.write(`migrate: ${message}\n`));
    } catch (err) {
      if (!(err instanceof MigrationLockWaitError)) throw err;
      // The operator's answer is in the message (who holds the table): no stack.
      process.stderr.write(`migrate: ${err.message}; run it again once that transaction has ended\n`);
      return 1;
    }
    process.stdout.write(applied.length > 0 ? `applied ${applied.length} migration(s):\n${applied.map((m) => `  ${m}`).join('\n')}\n` : 'database is up to date\n');
    return 0;
  } finally {
    await knex.destroy();
  }
}

runCommand('migrate', main);
