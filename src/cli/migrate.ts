/** `npm run migrate`: applies the knex migrations to DATABASE_URL and says which ran. */
import { ConfigError, loadSettings } from '../config';
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

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`migrate: ${err instanceof ConfigError ? err.message : (err as Error).stack ?? String(err)}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
