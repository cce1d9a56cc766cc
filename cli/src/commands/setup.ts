// What every command does first: configuration from the environment (once), the root logger, warnings.
import { type Config, createLogger, type Logger, loadConfig } from '#runtime';

export function setup(): { config: Config; log: Logger } {
  const { config, warnings } = loadConfig(process.env);
  const log = createLogger(config.logLevel);
  for (const warning of warnings) log.warn(warning);
  return { config, log };
}
