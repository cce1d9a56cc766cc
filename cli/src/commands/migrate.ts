// `broker migrate`: applies db/schema.sql (idempotent, under an advisory lock) and exits.
import type { Command } from 'commander';
import { connectPostgres, describePostgres } from '#runtime';
import { setup } from './setup';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply the database schema to DATABASE_URL (creating the database when missing) and exit')
    .action(async () => {
      const { config, log } = setup({ logsTo: 'stderr' });
      const pool = await connectPostgres(config.databaseUrl, log);
      await pool.end();
      log.info({ postgres: describePostgres(config.databaseUrl) }, 'schema applied');
    });
}
