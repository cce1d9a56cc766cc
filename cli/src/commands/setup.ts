// What every command does first: configuration from the environment (once), the root logger, warnings.
import pino from 'pino';
import { type Config, createLogger, type Logger, loadConfig } from '#runtime';

export interface SetupOptions {
  /**
   * Where logs and warnings go. A command with a result (a token) keeps stdout for it alone (SPEC §7:
   * `TOKEN=$(broker token …)`), so its logs go to stderr; the services log to stdout.
   */
  logsTo?: 'stdout' | 'stderr';
}

export function setup({ logsTo = 'stdout' }: SetupOptions = {}): { config: Config; log: Logger } {
  const { config, warnings } = loadConfig(process.env);
  const log = createLogger(
    config.logLevel,
    logsTo === 'stderr' ? pino.destination({ fd: 2, sync: true }) : undefined,
  );
  for (const warning of warnings) log.warn(warning);
  return { config, log };
}
