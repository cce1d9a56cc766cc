// One Redis and one PostgreSQL for the whole run, chosen as SPEC §8 says (services.ts): REDIS_URL / DATABASE_URL
// when given, otherwise `npm start`'s local defaults when they answer, otherwise one testcontainers pair. Each test
// file then takes its own database and key prefix (test/support/context.ts): a database costs milliseconds, a
// container seconds.
import { Redis } from 'ioredis';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { chooseServices, NoServicesError, type Probes } from './services';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    databaseUrl: string;
    /** `host:port,...` when the run targets a Redis Cluster (CI runs the end-to-end suite once that way). */
    redisClusterNodes: string;
  }
}

const PROBE_TIMEOUT_MS = 1000;

const probes: Probes = {
  async redis(url) {
    const client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: PROBE_TIMEOUT_MS,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  },
  async postgres(url) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  },
  async containerRuntime() {
    try {
      const { getContainerRuntimeClient } = await import('testcontainers');
      await getContainerRuntimeClient();
      return true;
    } catch {
      return false;
    }
  },
};

export default async function setup(project: TestProject) {
  const stops: Array<() => Promise<unknown>> = [];
  let choice: Awaited<ReturnType<typeof chooseServices>>;
  try {
    choice = await chooseServices(process.env, probes);
  } catch (err) {
    if (!(err instanceof NoServicesError)) throw err;
    // One line, no stack: the run cannot start, and this says how to get one that can.
    process.stderr.write(`\n${err.message}\n\n`);
    process.exit(1);
  }
  let redisUrl = choice.redis.url;
  let databaseUrl = choice.postgres.url;
  if (!redisUrl) {
    const { RedisContainer } = await import('@testcontainers/redis');
    const redis = await new RedisContainer('redis:7-alpine').start();
    stops.push(() => redis.stop());
    redisUrl = redis.getConnectionUrl();
  }
  if (!databaseUrl) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const postgres = await new PostgreSqlContainer('postgres:16-alpine').start();
    stops.push(() => postgres.stop());
    databaseUrl = postgres.getConnectionUri();
  }
  project.provide('redisUrl', redisUrl);
  project.provide('redisClusterNodes', process.env.REDIS_CLUSTER_NODES ?? '');
  project.provide('databaseUrl', databaseUrl);
  return async () => {
    for (const stop of stops) await stop();
  };
}
