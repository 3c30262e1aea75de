/** `npm run migrate`: applies the knex migrations to DATABASE_URL and says which ran. */
import { loadSettings } from '../config';
import { runCommand } from './run';
import { createKnex } from '../db/connect';
import { migrateLatest } from '../db/migrate';

async function main(): Promise<number> {
  const settings = loadSettings();
  const knex = createKnex(settings.database.url);
  try {
    const applied = await migrateLatest(knex);
    process.stdout.write(applied.length > 0 ? `applied ${applied.length} migration(s):\n${applied.map((m) => `  ${m}`).join('\n')}\n` : 'database is up to date\n');
    return 0;
  } finally {
    await knex.destroy();
  }
}

runCommand('migrate', main);
