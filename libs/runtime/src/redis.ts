// Redis clients: one factory for a single node or a cluster, quiet about outages (one line, no stack), and a
// wait for the first connection that keeps retrying.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from './config';

export type RedisClient = Redis | Cluster;
export const START_HINT = 'start one with `docker compose up -d redis postgres`';

export interface RedisRole {
  /** Shows in logs and CLIENT LIST. */
  name: string;
  /**
   * Fail commands at once while disconnected instead of queueing them (the edge: a device must get
   * "event log unavailable" now, not a late ack). Blocking consumers wait instead.
   */
  failFast?: boolean;
  /**
   * Batch the commands of one tick into a pipeline (default true). Off for BullMQ's connection: ioredis builds
   * every pipeline with a copy of each script defined on the connection, and BullMQ defines 64 (75 µs per
   * pipeline here, against 4 µs on a connection with none).
   */
  autoPipelining?: boolean;
}

export function describeRedis(cfg: Config['redis']): string {
  return cfg.clusterNodes.length > 0
    ? `cluster ${cfg.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`
    : cfg.url.replace(/\/\/[^@/]*@/, '//***@');
}

export function createRedis(cfg: Config['redis'], log: Logger, role: RedisRole): RedisClient {
  const options: RedisOptions = {
    connectionName: role.name,
    enableOfflineQueue: !role.failFast,
    maxRetriesPerRequest: role.failFast ? 0 : null,
    commandTimeout: role.failFast ? 3000 : undefined,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    enableAutoPipelining: role.autoPipelining ?? true,
  };
  const client: RedisClient =
    cfg.clusterNodes.length > 0
      ? new Cluster(cfg.clusterNodes, {
          redisOptions: options,
          enableOfflineQueue: !role.failFast,
          clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
          enableAutoPipelining: role.autoPipelining ?? true,
        })
      : new Redis(cfg.url, options);
  watchOutages(client, log, describeRedis(cfg), role.name);
  return client;
}

/**
 * A second connection for blocking reads and subscriptions. It queues commands while disconnected and has no
 * command timeout, whatever the original's role: a blocking read or a SUBSCRIBE must wait for Redis, not fail.
 * `shardedSubscriber`: on a Redis Cluster, SSUBSCRIBE goes to the master of each channel's slot (ioredis opens one
 * subscriber connection per master that has channels).
 */
export function duplicateRedis(
  client: RedisClient,
  log: Logger,
  cfg: Config['redis'],
  name: string,
  { shardedSubscriber = false }: { shardedSubscriber?: boolean } = {},
): RedisClient {
  // No ready check and no auto-pipelining: a SUBSCRIBE issued before the connection is ready would put it in
  // subscriber mode ahead of the ready check's INFO, which Redis then refuses ("Connection in subscriber mode"),
  // leaving an edge that hears nothing. Blocking reads and subscriptions gain nothing from either.
  const patient = {
    connectionName: name,
    enableReadyCheck: false,
    enableAutoPipelining: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
  };
  const copy =
    client instanceof Cluster
      ? client.duplicate(undefined, {
          enableReadyCheck: false,
          enableAutoPipelining: false,
          enableOfflineQueue: true,
          shardedSubscribers: shardedSubscriber,
          redisOptions: { ...client.options.redisOptions, ...patient },
        })
      : client.duplicate(patient);
  watchOutages(copy, log, describeRedis(cfg), name);
  return copy;
}

function watchOutages(client: RedisClient, log: Logger, target: string, name: string): void {
  let isDown = false;
  client.on('error', (err: Error) => {
    if (isDown) return;
    isDown = true;
    log.warn(
      { redis: target, client: name, reason: err.message },
      `redis unreachable; ${START_HINT}; retrying`,
    );
  });
  client.on('ready', () => {
    if (isDown) log.info({ redis: target, client: name }, 'redis reachable again');
    isDown = false;
  });
}

/** Resolves once the client is connected; keeps retrying (and logging once) while Redis is down. */
export async function whenRedisReady(client: RedisClient, signal?: AbortSignal): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted while waiting for redis'));
    signal?.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

export function isRedisReady(client: RedisClient): boolean {
  return client.status === 'ready';
}

/** Closes a client without waiting on a dead server. */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  try {
    await client.quit();
  } catch {
    client.disconnect(); // quit failed because the server went away: drop the socket instead.
  }
}
