// `broker migrate`: applies db/schema.sql (idempotent, under an advisory lock) and exits. Unlike a service, it
// gives up after a few seconds when PostgreSQL is unreachable, and refuses a database that is another's.
import type { Command } from 'commander';
import { describePostgres } from '#runtime';
import { createPostgres, EXIT, EXIT_HELP, exitingTwoOnBadArguments, runOperator } from './operator';

export function registerMigrate(program: Command): void {
  const command = program
    .command('migrate')
    .description('apply the database schema to DATABASE_URL (creating the database when missing) and exit')
    .addHelpText('after', EXIT_HELP);
  exitingTwoOnBadArguments(command).action(() =>
    runOperator('migrate', async (session) => {
      const { config, log } = session;
      await createPostgres(session, config.databaseUrl, 1);
      log.info({ postgres: describePostgres(config.databaseUrl) }, 'schema applied');
      return EXIT.ok;
    }),
  );
}
