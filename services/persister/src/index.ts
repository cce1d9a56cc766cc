// The persister: reads every shard in the 'persister' consumer group and projects the log into PostgreSQL
// (devices, connections, messages, and the events archive), then trims what is archived from the streams.
// start() is its one entry point; the CLI's audit and rebuild use the exports below and nothing deeper.
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { isTransientFailure, ShardConsumer } from '#eventlog';
import { Keys } from '#events';
import {
  type Config,
  checkPostgres,
  checkRedis,
  closeRedis,
  closeServer,
  connectPostgres,
  createRedis,
  isRedisReady,
  type Logger,
  once,
  type Pool,
  type ReadinessProbe,
  type RedisClient,
  readinessOf,
  runSteps,
  type ServiceHandle,
  serveHealth,
} from '#runtime';
import { groupCommittedProjector } from './consumer';
import { lagDetail, measureLag, PERSISTER_GROUP } from './lag';
import { retentionIntervalMs, trimShard } from './retention';

export {
  type BatchHandler,
  batchProjector,
  groupCommittedProjector,
  projectBatches,
  type ShardBatch,
} from './consumer';
export { PERSISTER_GROUP, type ShardLag } from './lag';
export * from './projection';
export { keepFrom, type TrimBounds } from './retention';
export { readCheckpoints, readProjection } from './store';

export interface PersisterDeps {
  log: Logger;
  /** Serve /healthz, /readyz and /metrics on config.healthPort (default true; `start all` serves them once). */
  healthServer?: boolean;
}

export interface PersisterHandle extends ServiceHandle {
  /** The health port actually bound, or null without a health server. */
  readonly port: number | null;
  readonly readiness: ReadinessProbe;
  /** Resolves once every event appended so far is projected and acknowledged. */
  whenCaughtUp(timeoutMs?: number): Promise<void>;
  /** Shards this process reads now. */
  shards(): number[];
  /** One retention round over every shard now (the timer trims only the shards this process reads). */
  trimStreams(): Promise<number>;
}

const LAG_INTERVAL_MS = 2000;

export async function start(config: Config, deps: PersisterDeps): Promise<PersisterHandle> {
  const log = deps.log.child({ svc: 'persister' });
  const consumerName = `persister-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const keys = new Keys(config.redis.prefix, config.shards);
  const redis = createRedis(config.redis, log, { name: 'persister' });
  let pool: Pool | undefined;
  let server: Server | null = null;
  let isDraining = false;
  let isStopping = false;
  try {
    // One connection per shard this process may read at once, plus the probes'.
    pool = await connectPostgres(config.databaseUrl, log, { max: Math.min(config.shards, 16) + 2 });
    const db = pool;
    const readiness = readinessOf(
      { redis: () => checkRedis(redis), postgres: () => checkPostgres(db) },
      () => isDraining,
      () => lagOrReason(redis, keys),
    );
    if (deps.healthServer !== false) server = await serveHealth('0.0.0.0', config.healthPort, readiness);
    const port = server ? (server.address() as AddressInfo).port : null; // a TCP server's address is an object

    const consumer = new ShardConsumer({
      redis,
      redisConfig: config.redis,
      keys,
      log,
      group: PERSISTER_GROUP,
      consumer: consumerName,
      batch: config.consumer.batch,
      leaseMs: config.consumer.leaseMs,
      readIntervalMs: config.persister.readIntervalMs,
      handle: groupCommittedProjector(db, log),
    });
    await consumer.start();

    // Every shard gets its round (and its gauges) even when one fails; the first failure is reported after.
    const trimShards = async (shards: number[]) => {
      let trimmed = 0;
      let failure: unknown;
      for (const shard of shards) {
        try {
          trimmed += await trimShard(
            { redis, pool: db, keys },
            shard,
            Date.now(),
            config.consumer.retentionMs,
          );
        } catch (err) {
          failure ??= err;
        }
      }
      if (failure !== undefined) throw failure;
      return trimmed;
    };
    const timers = [
      every('projection lag', LAG_INTERVAL_MS, () => measureLag(redis, keys, Date.now())),
      every('stream retention', retentionIntervalMs(config.consumer.retentionMs), () =>
        trimShards(consumer.shards()),
      ),
    ];
    log.info({ consumer: consumerName, health_port: port }, 'persister started');

    const drain = once(async () => {
      isDraining = true;
      await consumer.stop(); // finishes the batch in flight; what is not acknowledged stays pending for another
    });
    const stop = once(() => {
      isStopping = true;
      return runSteps(log, [
        ['drain', drain],
        ['timers', () => timers.forEach(clearInterval)],
        ['health server', () => server && closeServer(server)],
        ['postgres', () => db.end()],
        ['redis', () => closeRedis(redis)],
      ]);
    });
    return {
      name: 'persister',
      port,
      readiness,
      whenCaughtUp: (timeoutMs) => consumer.whenCaughtUp(timeoutMs),
      shards: () => consumer.shards(),
      trimStreams: () => trimShards(keys.allShards()),
      drain,
      stop,
    };
  } catch (err) {
    await runSteps(log, [
      ['health server', () => server && closeServer(server)],
      ['postgres', () => pool?.end()],
      ['redis', () => closeRedis(redis)],
    ]);
    throw err;
  }

  /**
   * Runs a periodic task, one round at a time, while Redis is reachable. A failed round is one quiet line and the
   * next round tries again; a round still running at stop fails when the clients close, quietly.
   */
  function every(name: string, periodMs: number, task: () => Promise<unknown>): NodeJS.Timeout {
    let isRunning = false;
    const timer = setInterval(() => {
      if (isRunning || isDraining || !isRedisReady(redis)) return;
      isRunning = true;
      task()
        .catch((err: Error) => {
          if (isStopping || isTransientFailure(err))
            log.debug({ task: name, reason: err.message }, 'periodic task deferred');
          else log.warn({ task: name, reason: err.message }, 'periodic task failed; retrying');
        })
        .finally(() => {
          isRunning = false;
        });
    }, periodMs);
    timer.unref();
    return timer;
  }
}

async function lagOrReason(redis: RedisClient, keys: Keys): Promise<Record<string, unknown>> {
  if (!isRedisReady(redis)) return { projection_lag: 'unknown: redis unreachable' };
  return lagDetail(await measureLag(redis, keys, Date.now()));
}
