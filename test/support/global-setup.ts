// One Redis and one PostgreSQL for the whole run: REDIS_URL / DATABASE_URL when given, otherwise one
// testcontainers pair. Each test file then takes its own database and key prefix (test/support/context.ts):
// a database costs milliseconds, a container seconds.
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    databaseUrl: string;
    /** `host:port,...` when the run targets a Redis Cluster (CI runs the end-to-end suite once that way). */
    redisClusterNodes: string;
  }
}

export default async function setup(project: TestProject) {
  const stops: Array<() => Promise<unknown>> = [];
  let redisUrl = process.env.REDIS_URL;
  let databaseUrl = process.env.DATABASE_URL;
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
