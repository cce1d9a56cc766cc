// Each test file's own world: a fresh PostgreSQL database, a fresh Redis key prefix, a quiet logger and a
// configuration built with loadConfig from a plain object (never process.env).
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { inject } from 'vitest';
import { Keys } from '#events';
import {
  type Config,
  closeRedis,
  createLogger,
  createRedis,
  dropDatabase,
  type Env,
  type Logger,
  loadConfig,
  type RedisClient,
} from '#runtime';

export interface TestContext {
  config: Config;
  env: Env;
  log: Logger;
  redis: RedisClient;
  keys: Keys;
  databaseUrl: string;
  /** Drops the database and the keys. */
  cleanup(): Promise<void>;
}

export function testName(): string {
  return `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

export function databaseUrlFor(base: string, name: string): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Settings that make a test run fast: short timers, few shards. Override any variable per test. */
export async function createTestContext(overrides: Env = {}): Promise<TestContext> {
  const name = testName();
  const databaseUrl = databaseUrlFor(inject('databaseUrl'), name);
  const env: Env = {
    REDIS_URL: inject('redisUrl'),
    REDIS_CLUSTER_NODES: inject('redisClusterNodes'),
    DATABASE_URL: databaseUrl,
    REDIS_PREFIX: name,
    SHARDS: '4',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    EDGE_PORT: '0',
    API_PORT: '0',
    HEALTH_PORT: '0',
    EDGE_HOST: '127.0.0.1',
    API_HOST: '127.0.0.1',
    EDGE_ID: `edge-${name}`,
    API_KEYS: 'test-key',
    DEVICE_TOKEN_SECRET: 'test-secret-test-secret-test-secret-42',
    CONSUMER_LEASE_MS: '1000',
    EDGE_DRAIN_MS: '200',
    ...overrides,
  };
  const { config } = loadConfig(env);
  const log = createLogger(config.logLevel);
  const redis = createRedis(config.redis, log, { name: 'test' });
  const keys = new Keys(config.redis.prefix, config.shards);
  return {
    config,
    env,
    log,
    redis,
    keys,
    databaseUrl,
    async cleanup() {
      await deleteKeys(redis, `${name}:*`);
      await closeRedis(redis);
      await dropDatabase(databaseUrl);
    },
  };
}

async function deleteKeys(redis: RedisClient, pattern: string): Promise<void> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    for await (const batch of node.scanStream({ match: pattern, count: 1000 })) {
      // One UNLINK per key: in a cluster, the keys of a batch may sit in different slots.
      await Promise.all((batch as string[]).map((key) => node.unlink(key)));
    }
  }
}

export { dropDatabase };
