// The `broker` command: start services, apply the schema, mint device tokens, and the operators' tools.
// The only place that reads process.env and installs signal handlers.
import { Command, CommanderError } from 'commander';
import { isBrokerError } from '#events';
import { ConfigError } from '#runtime';
import { registerAudit } from './commands/audit';
import { registerDevices } from './commands/devices';
import { registerMigrate } from './commands/migrate';
import { registerRebuild } from './commands/rebuild';
import { registerReplay } from './commands/replay';
import { registerStart } from './commands/start';
import { registerToken } from './commands/token';

const program = new Command()
  .name('broker')
  .description('Shop message broker: event-sourced WebSocket broker on Redis Streams and PostgreSQL')
  .showHelpAfterError()
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
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (err instanceof ConfigError) {
    process.stderr.write(`broker: configuration error: ${err.message}\n`);
    process.exit(2);
  }
  // Expected refusals (a device already registered, invalid input, the log unavailable): one line, an exit code.
  if (isBrokerError(err)) {
    const hint = err.code === 'CONFLICT' ? ' (pick another --client, or revoke the device first)' : '';
    process.stderr.write(`broker: ${err.message}${hint}\n`);
    process.exit(err.code === 'LOG_UNAVAILABLE' ? 3 : 2);
  }
  process.stderr.write(`broker: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
