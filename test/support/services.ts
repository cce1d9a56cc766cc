// ◇ Which Redis and PostgreSQL a test run uses (SPEC §8): REDIS_URL / DATABASE_URL when given; otherwise the same
// local defaults `npm start` uses, when they answer; otherwise testcontainers, when a container runtime is there;
// otherwise one clear line naming each way to a green run. The probes are passed in, so the choice itself is
// tested without touching the machine (test/unit/test-services.test.ts).
import { VARIABLES } from '#runtime';

export type Source = 'given' | 'local' | 'container';

export interface Choice {
  redis: { source: Source; url?: string };
  postgres: { source: Source; url?: string };
}

export interface Probes {
  redis(url: string): Promise<boolean>;
  postgres(url: string): Promise<boolean>;
  containerRuntime(): Promise<boolean>;
}

export class NoServicesError extends Error {
  override name = 'NoServicesError';
}

/** `npm start`'s default of a variable (config.ts). */
function defaultOf(name: string): string {
  const value = VARIABLES.find((variable) => variable.name === name)?.default;
  if (value === undefined) throw new Error(`${name} has no default`);
  return value;
}

/** The base URL tests derive their own databases from: `npm start`'s server, its `postgres` database. */
export function localDatabaseUrl(): string {
  const url = new URL(defaultOf('DATABASE_URL'));
  url.pathname = '/postgres';
  return url.toString();
}

export function localRedisUrl(): string {
  return defaultOf('REDIS_URL');
}

export async function chooseServices(env: NodeJS.ProcessEnv, probes: Probes): Promise<Choice> {
  const [redis, postgres] = await Promise.all([
    env.REDIS_URL
      ? { source: 'given' as const, url: env.REDIS_URL }
      : probes
          .redis(localRedisUrl())
          .then((up) => (up ? { source: 'local' as const, url: localRedisUrl() } : null)),
    env.DATABASE_URL
      ? { source: 'given' as const, url: env.DATABASE_URL }
      : probes
          .postgres(localDatabaseUrl())
          .then((up) => (up ? { source: 'local' as const, url: localDatabaseUrl() } : null)),
  ]);
  if (redis && postgres) return { redis, postgres };
  if (!(await probes.containerRuntime())) {
    const missing = [
      redis ? null : `Redis at ${localRedisUrl()}`,
      postgres ? null : `PostgreSQL at ${localDatabaseUrl()}`,
    ]
      .filter(Boolean)
      .join(' and ');
    throw new NoServicesError(
      `tests need Redis and PostgreSQL: ${missing} did not answer and no container runtime was found; ` +
        'start local ones (`docker compose up -d redis postgres`, or the system services), ' +
        'set REDIS_URL and DATABASE_URL, or start Docker so testcontainers can run them',
    );
  }
  return { redis: redis ?? { source: 'container' }, postgres: postgres ?? { source: 'container' } };
}
