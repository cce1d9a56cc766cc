// The `broker` command: start services, apply the schema, mint device tokens, and the operators' tools.
// The only place that reads process.env and installs signal handlers.
import { Command, CommanderError } from 'commander';
import { isBrokerError } from '#events';
import { ConfigError } from '#runtime';
import { registerAudit } from './commands/audit';
import { registerDevices } from './commands/devices';
import { registerMigrate } from './commands/migrate';
import { OperatorError } from './commands/operator';
import { registerRebuild } from './commands/rebuild';
import { registerReplay } from './commands/replay';
import { registerStart } from './commands/start';
import { registerToken } from './commands/token';

// SPEC §7: a bad argument is one line on stderr and exit code 2, never the usage text after it (`--help` shows
// that). The subcommands inherit these settings from the program.
const program = new Command()
  .name('broker')
  .description('Shop message broker: event-sourced WebSocket broker on Redis Streams and PostgreSQL')
  .showHelpAfterError(false)
  .configureOutput({
    outputError: (message, write) =>
      write(message.startsWith('error: ') ? `broker: ${message.slice('error: '.length)}` : message),
  })
  .exitOverride();

registerStart(program);
registerMigrate(program);
registerToken(program);
registerDevices(program);
registerReplay(program);
registerAudit(program);
registerRebuild(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Commander's own refusals (unknown option, missing argument) exit 1; a bad argument is 2 here. Help exits 0.
  if (err instanceof CommanderError) process.exit(err.exitCode === 1 ? 2 : err.exitCode);
  if (err instanceof OperatorError) {
    process.stderr.write(`broker: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`broker: configuration error: ${err.message}\n`);
    process.exit(2);
  }
  // Expected refusals (a device already registered, invalid input, the log unavailable): one line, an exit code.
  if (isBrokerError(err)) {
    const hint =
      err.code === 'CONFLICT'
        ? ' (for a new token of this device add --rotate; or pick another --client)'
        : '';
    process.stderr.write(`broker: ${err.message}${hint}\n`);
    process.exit(err.code === 'LOG_UNAVAILABLE' ? 3 : 2);
  }
  process.stderr.write(`broker: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
